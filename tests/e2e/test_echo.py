"""Test D: `control://enable_echo` loops the caller's RTP audio back to the caller."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.e2e.phone import ULAW, RtpPhone, decode_packets, encode_g711
from tests.support import best_alignment

pytestmark = pytest.mark.e2e

ECHO_SECONDS = 3.0
AFTER_DISABLE_SECONDS = 1.0


async def test_echo_loops_the_callers_voice_back(
    ffmpeg: str, stub, speech_wav: Path, tmp_path: Path
) -> None:
    # The speech as μ-law by FFmpeg's encoder; the phone sends it from the socket it listens on.
    ulaw = encode_g711(ffmpeg, speech_wav, "PCMU", tmp_path / "speech.ul")[8000:]
    echo_part = ulaw[: int(ECHO_SECONDS * 8000)]
    after_part = ulaw[len(echo_part) : len(echo_part) + int(AFTER_DISABLE_SECONDS * 8000)]
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-echo"))).rtp_port
    try:
        with RtpPhone() as phone:
            reply = await stub.PlayAudio(
                pb.PlayAudioRequest(
                    audio_uri="control://enable_echo",
                    server_rtp_port=port,
                    rtp_target_addr=phone.address,
                )
            )
            assert reply.success, reply.message
            frames = await asyncio.to_thread(phone.send_paced, echo_part, port)
            await asyncio.sleep(0.3)  # the jitter buffer's delay: the tail comes back too
            reply = await stub.PlayAudio(
                pb.PlayAudioRequest(audio_uri="control://disable_echo", server_rtp_port=port)
            )
            assert reply.success, reply.message
            disabled_at = time.time()
            await asyncio.to_thread(
                phone.send_paced,
                after_part,
                port,
                first_sequence=40000 + frames,
                first_timestamp=123456 + 160 * frames,
            )
            await asyncio.sleep(0.3)
            packets = phone.snapshot()
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))

    assert packets, "nothing echoed"
    assert {p.payload_type for p in packets} == {0}, "the echo answers in the caller's codec"
    assert {p.ssrc for p in packets} != {0x5EED1234}, "the echo has the service's own SSRC"
    late = [p for p in packets if p.kernel_time > disabled_at + 0.1]
    assert not late, f"{len(late)} packets echoed after control://disable_echo"
    echoed = decode_packets(packets)
    sent = ULAW[np.frombuffer(echo_part, dtype=np.uint8)].astype(np.float64)
    middle = sent[8000 : 8000 * 2 + 4000]  # 1.0 s to 2.5 s of what was sent
    score, lag = best_alignment(middle, echoed)
    print(f"echo: {len(packets)} packets back for {frames} sent, correlation {score:.4f} at {lag}")
    assert score >= 0.9
    after = ULAW[np.frombuffer(after_part, dtype=np.uint8)].astype(np.float64)
    stray, _ = best_alignment(after[:4000], echoed)
    assert stray < 0.5, "audio sent after control://disable_echo was echoed"
