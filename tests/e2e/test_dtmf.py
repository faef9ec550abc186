"""DTMF end to end with FFmpeg as the phone.

(a) Tones made by `sox synth`, sent by FFmpeg in PCMU and in G.722, are `dtmf`
    events (source `inband`) on StreamEvents, in order, once each.
(b) SendDtmf to a phone that did not negotiate telephone-event: FFmpeg receives
    the tones in PCMU, and this test's own detector (an FFT, independent of the
    service's filter bank) finds the digits in what it heard.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.e2e.phone import (
    CODECS,
    ffmpeg_rtp_receiver,
    ffmpeg_rtp_sender,
    finish,
    free_udp_port,
    lavfi_source,
    read_wav,
    sdp_text,
    spawn,
    wait_udp_bound,
)
from tests.e2e.test_codecs import negotiate, with_port

pytestmark = pytest.mark.e2e

# ITU-T Q.23, written out independently of the service.
ROWS, COLUMNS = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
KEYPAD = ("123A", "456B", "789C", "*0#D")


def frequencies(key: str) -> tuple[int, int]:
    row = next(r for r, keys in enumerate(KEYPAD) if key in keys)
    return ROWS[row], COLUMNS[KEYPAD[row].index(key)]


def sox_digits(sox: str, folder: Path, keys: str, rate: int, tone_s: float, gap_s: float) -> Path:
    """A WAV of `keys` as `sox synth` tones (each about -12 dBm0 per tone) between silences."""
    parts = []
    for index, key in enumerate(keys):
        low, high = frequencies(key)
        silence = folder / f"gap{index}.wav"
        tone = folder / f"key{index}.wav"
        subprocess.run(
            [sox, "-n", "-r", str(rate), "-b", "16", "-c", "1", str(silence), "trim", "0",
             str(gap_s)], check=True, timeout=10,
        )  # fmt: skip
        subprocess.run(
            [sox, "-n", "-r", str(rate), "-b", "16", "-c", "1", str(tone), "synth",
             str(tone_s), "sine", str(low), "sine", str(high), "vol", "0.5"],
            check=True, timeout=10,
        )  # fmt: skip
        parts += [silence, tone]
    out = folder / "digits.wav"
    # Ends with a silence too, so the last press has its pause.
    subprocess.run([sox, *map(str, parts), str(parts[0]), str(out)], check=True, timeout=10)
    return out


def heard_digits(samples: np.ndarray, rate: int) -> str:
    """The keys in `samples`: 20 ms frames whose energy is two Q.23 tones, in runs of two.

    A plain FFT per frame (zero-padded to 5 Hz bins); a tone's band is ±35 Hz, so
    no two bands of a group overlap.
    """
    frame, size = rate // 50, rate // 5
    hz = np.fft.rfftfreq(size, 1 / rate)
    bands = [np.abs(hz - f) <= 35 for f in ROWS + COLUMNS]
    keys: list[str | None] = []
    for start in range(0, len(samples) - frame + 1, frame):
        chunk = samples[start : start + frame].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(chunk, size)) ** 2
        energy = np.array([spectrum[band].sum() for band in bands])
        row, column = int(np.argmax(energy[:4])), 4 + int(np.argmax(energy[4:]))
        dominant = all(energy[row] > 4 * e for i, e in enumerate(energy[:4]) if i != row) and all(
            energy[column] > 4 * e for i, e in enumerate(energy[4:], 4) if i != column
        )
        share = (energy[row] + energy[column]) / (spectrum.sum() + 1e-9)
        loud = float(np.sqrt(np.mean(chunk**2))) > 300
        keys.append(KEYPAD[row][column - 4] if loud and dominant and share > 0.5 else None)
    digits, previous, run = [], None, 0
    for key in keys:
        run = run + 1 if key == previous else 1
        if key is not None and run == 2:
            digits.append(key)
        previous = key
    return "".join(digits)


async def _collect_dtmf(stub, port: int, events: list[pb.MediaEvent]) -> None:
    async for event in stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port)):
        if event.WhichOneof("event") == "dtmf":
            events.append(event)


@pytest.mark.parametrize("codec", ["PCMU", "G722"])
async def test_sox_tones_sent_by_ffmpeg_are_inband_digits(
    ffmpeg: str, sox: str, stub, tmp_path: Path, codec: str
) -> None:
    spec = CODECS[codec]
    keys = "159#0*"
    digits = sox_digits(sox, tmp_path, keys, 16000 if codec == "G722" else 8000, 0.1, 0.15)
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id=f"e2e-inband-{codec}"))).rtp_port
    phone_port = free_udp_port(even=True)
    events: list[pb.MediaEvent] = []
    reader = None
    try:
        if codec == "G722":
            offer = sdp_text(phone_port, spec.payload_type, spec.rtpmap)
            assert (await negotiate(stub, port, offer)).codec == "G722"
        reader = asyncio.get_running_loop().create_task(_collect_dtmf(stub, port, events))
        await asyncio.sleep(0.2)
        command = ffmpeg_rtp_sender(
            ffmpeg, lavfi_source(digits), port, codec, local_port=phone_port
        )
        status, errors = await finish(spawn(command), 30)
        assert status == 0, f"FFmpeg sender: exit status {status}\n{errors}"
        await asyncio.sleep(0.5)
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
        if reader is not None:
            await asyncio.wait_for(reader, 5)
    print(f"{codec}: {[(e.dtmf.digit, e.dtmf.duration_ms) for e in events]}")
    assert "".join(e.dtmf.digit for e in events) == keys
    assert {e.dtmf.source for e in events} == {"inband"}
    assert all(abs(e.dtmf.duration_ms - 100) <= 10 for e in events)  # to the block
    gaps = np.diff([e.media_time_ms for e in events])
    assert all(abs(gap - 250) <= 30 for gap in gaps), gaps


async def test_send_dtmf_inband_is_heard_by_ffmpeg_as_the_digits(
    ffmpeg: str, stub, tmp_path: Path
) -> None:
    listen = free_udp_port(even=True)
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-send-dtmf"))).rtp_port
    receiver = None
    try:
        reply = await negotiate(stub, port, sdp_text(listen, 0, "PCMU"))  # no telephone-event
        assert reply.dtmf_payload_type == 0
        answer = tmp_path / "answer.sdp"
        answer.write_text(with_port(reply.local_sdp, listen))
        out = tmp_path / "heard.wav"
        receiver = spawn(ffmpeg_rtp_receiver(ffmpeg, answer, out, seconds=4))
        await asyncio.to_thread(wait_udp_bound, listen, 10)
        sent = await stub.SendDtmf(
            pb.SendDtmfRequest(server_rtp_port=port, digits="24#,9", duration_ms=80)
        )
        assert sent.success
        status, errors = await finish(receiver, 20)
    finally:
        if receiver is not None and receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert status == 0, f"FFmpeg receiver: exit status {status}\n{errors}"
    heard, rate = read_wav(out)
    assert heard_digits(heard, rate) == "24#9"
