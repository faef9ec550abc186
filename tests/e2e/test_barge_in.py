"""Barge-in end to end: FFmpeg is the caller, talking into a prompt the service plays.

The prompt goes to a test socket (the target locked with `control://set_target`,
so the caller's RTP from FFmpeg does not move it); FFmpeg sends speech as PCMU
from its own port a second into the prompt. An interruptible prompt stops
(`barge_in`, then `playback_finished` interrupted, and no more packets); a
prompt that is not interruptible plays to its end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.e2e.phone import RtpPhone, ffmpeg_rtp_sender, finish, lavfi_source, spawn

pytestmark = pytest.mark.e2e

PROMPT_URI = "file://audio/demo/welcome.wav"  # 5.1 s


async def _events(stub, port: int, into: list[pb.MediaEvent]) -> None:
    async for event in stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port)):
        into.append(event)


async def _call(
    ffmpeg: str, stub, speech_wav: Path, interruptible: bool
) -> tuple[list, list, float]:
    """Play the prompt, let FFmpeg talk into it; the events, the prompt packets, talk start."""
    port = (
        await stub.AllocatePort(pb.AllocatePortRequest(call_id=f"e2e-barge-{interruptible}"))
    ).rtp_port
    events: list[pb.MediaEvent] = []
    reader = asyncio.get_running_loop().create_task(_events(stub, port, events))
    with RtpPhone() as listener:
        try:
            lock = pb.PlayAudioRequest(
                audio_uri="control://set_target", server_rtp_port=port,
                rtp_target_addr=listener.address,
            )  # fmt: skip
            assert (await stub.PlayAudio(lock)).success
            play = pb.PlayAudioRequest(audio_uri=PROMPT_URI, server_rtp_port=port)
            play.interruptible = interruptible
            assert (await stub.PlayAudio(play)).success
            await asyncio.sleep(1.0)
            talk_started = time.time()
            sender = spawn(
                ffmpeg_rtp_sender(ffmpeg, lavfi_source(speech_wav, 1.0, 3.0), port, "PCMU")
            )
            status, errors = await finish(sender, 20)
            assert status == 0, f"FFmpeg sender: exit status {status}\n{errors}"
            await asyncio.to_thread(listener.wait_quiet, 0.5, 8)
        finally:
            await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
            await asyncio.wait_for(reader, 5)
        return events, listener.snapshot(), talk_started


async def test_ffmpeg_talking_into_an_interruptible_prompt_stops_it(
    ffmpeg: str, stub, speech_wav: Path
) -> None:
    events, packets, talk_started = await _call(ffmpeg, stub, speech_wav, interruptible=True)
    kinds = [e.WhichOneof("event") for e in events]
    assert "barge_in" in kinds, kinds
    assert kinds.index("barge_in") < kinds.index("playback_finished")
    barge = events[kinds.index("barge_in")].barge_in
    finished = events[kinds.index("playback_finished")].playback_finished
    assert finished.interrupted
    assert 800 <= barge.played_ms <= 2500, barge
    last = packets[-1].kernel_time
    print(
        f"barge-in: reaction {barge.reaction_ms} ms, prompt's last packet "
        f"{1000 * (last - talk_started):.0f} ms after FFmpeg began, {len(packets)} packets"
    )
    assert last - talk_started < 1.5
    assert len(packets) < 5.1 * 50 * 0.6


async def test_ffmpeg_talking_into_a_prompt_that_is_not_interruptible_does_not_stop_it(
    ffmpeg: str, stub, speech_wav: Path
) -> None:
    events, packets, _ = await _call(ffmpeg, stub, speech_wav, interruptible=False)
    kinds = [e.WhichOneof("event") for e in events]
    assert "speech_started" in kinds  # the caller was heard ...
    assert "barge_in" not in kinds  # ... and the prompt played on
    finished = [e.playback_finished for e in events if e.WhichOneof("event") == "playback_finished"]
    assert [f.interrupted for f in finished] == [False]
    assert len(packets) >= 5.0 * 50
