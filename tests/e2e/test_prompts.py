"""Tests B and C: prompts go out as RTP, paced at 20 ms, to a Python socket and to FFmpeg."""

from __future__ import annotations

import asyncio
import base64
import math
import re
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.conftest import PROMPT_WAV
from tests.e2e.phone import (
    Pacing,
    Packet,
    RtpPhone,
    decode_packets,
    ffmpeg_rtp_receiver,
    finish,
    free_udp_port,
    pacing,
    read_wav,
    resample,
    spawn,
    wait_udp_bound,
    wav_bytes,
    write_sdp,
)
from tests.support import best_alignment

pytestmark = pytest.mark.e2e

PROMPT_URI = "file://audio/demo/welcome.wav"


def prompt_at_8k() -> np.ndarray:
    samples, rate = read_wav(PROMPT_WAV)
    return resample(samples, rate, 8000)


def check_stream(packets: Sequence[Packet], payload_type: int = 0) -> None:
    """One RTP stream, nothing missing: contiguous sequence, +160 timestamps, marker first."""
    assert packets, "no RTP arrived"
    assert {p.version for p in packets} == {2}
    assert {p.ssrc for p in packets} == {packets[0].ssrc}, "more than one SSRC"
    assert {p.payload_type for p in packets} == {payload_type}
    assert {len(p.payload) for p in packets} == {160}, "not 20 ms G.711 packets"
    sequences = np.array([p.sequence for p in packets], dtype=np.int64)
    steps = np.diff(sequences) % 65536
    assert (steps == 1).all(), f"sequence gaps or reordering at {np.flatnonzero(steps != 1)}"
    stamps = np.array([p.timestamp for p in packets], dtype=np.int64)
    ts_steps = np.diff(stamps) % (1 << 32)
    assert (ts_steps == 160).all(), f"timestamp steps {sorted(set(ts_steps.tolist()))}"
    assert packets[0].marker, "the first packet of a talk spurt must carry the marker bit"
    assert not any(p.marker for p in packets[1:]), "marker bit inside one talk spurt"


async def play(stub, port: int, uri: str, target: str) -> pb.PlayAudioResponse:
    reply = await stub.PlayAudio(
        pb.PlayAudioRequest(audio_uri=uri, server_rtp_port=port, rtp_target_addr=target)
    )
    assert reply.success, reply.message
    return reply


def scrape(metrics_port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match.group(1))


def pacing_ok(timing: Pacing) -> bool:
    """20 ms pacing: p50 and p99 of the intervals within 20 ± 2 ms, the mean within ± 0.2 ms."""
    return (
        18.0 <= timing.p50_ms <= 22.0
        and 18.0 <= timing.p99_ms <= 22.0
        and 19.8 <= timing.mean_ms <= 20.2
    )


async def test_file_prompt_is_complete_in_order_and_paced(stub, media_service) -> None:
    """The whole prompt arrives, in order, as one paced stream (kernel receive timestamps).

    The pacing bound is tight for a shared 2-vCPU box: when another process steals the
    CPU for a few ms during the first playback, the prompt is played once more on the
    same call and that playback must meet it. Every playback is checked in full.
    """
    sent_before = scrape(media_service.metrics_port, "sentiric_media_rtp_packets_sent_total")
    prompt = prompt_at_8k()
    expected_packets = math.ceil(len(prompt) / 160)
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-prompt"))).rtp_port
    timings: list[Pacing] = []
    try:
        with RtpPhone() as phone:
            for attempt in range(2):
                await play(stub, port, PROMPT_URI, phone.address)
                await asyncio.to_thread(phone.wait_for, expected_packets * (attempt + 1), 20)
                packets = (await asyncio.to_thread(phone.wait_quiet, 0.3, 5))[
                    attempt * expected_packets :
                ]
                check_stream(packets, payload_type=0)
                assert len(packets) == expected_packets, "prompt length in packets"
                score, lag = best_alignment(prompt, decode_packets(packets))
                timing = pacing([p.kernel_time for p in packets])
                timings.append(timing)
                print(f"file prompt #{attempt + 1}: correlation {score:.4f} lag {lag}; {timing}")
                assert score >= 0.95
                assert lag <= 1, "the prompt must start with the first packet"
                if pacing_ok(timing):
                    break
            received = len(phone.snapshot())
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert pacing_ok(timings[-1]), "; ".join(str(t) for t in timings)
    sent_after = scrape(media_service.metrics_port, "sentiric_media_rtp_packets_sent_total")
    assert sent_after - sent_before >= received


def stereo_44k() -> tuple[bytes, np.ndarray]:
    """A 2 s 44.1 kHz stereo WAV (speech left, a sweep right) and its mono mix at 8 kHz."""
    speech, rate = read_wav(PROMPT_WAV)
    left = resample(speech[rate : 3 * rate], rate, 44100)
    t = np.arange(len(left)) / 44100
    right = 6000 * np.sin(2 * np.pi * (300 * t + 400 * t**2))  # 300 → 1900 Hz sweep
    channels = np.stack([left, right], axis=1)
    wav = wav_bytes(np.rint(channels).astype(np.int16), 44100)
    return wav, resample(np.rint(channels.mean(axis=1)), 44100, 8000)


async def test_data_uri_stereo_44k_wav(stub) -> None:
    wav, reference = stereo_44k()
    uri = "data:audio/wav;base64," + base64.b64encode(wav).decode()
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-data"))).rtp_port
    try:
        with RtpPhone() as phone:
            await play(stub, port, uri, phone.address)
            packets = await asyncio.to_thread(phone.wait_quiet, 0.5, 15)
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    check_stream(packets, payload_type=0)
    assert len(packets) == math.ceil(len(reference) / 160)
    score, lag = best_alignment(reference, decode_packets(packets))
    print(f"data: 44.1 kHz stereo WAV: {len(packets)} packets, correlation {score:.4f} lag {lag}")
    assert score >= 0.95


async def test_two_prompts_play_back_to_back_in_order(stub) -> None:
    speech, rate = read_wav(PROMPT_WAV)
    first = resample(speech[: int(1.5 * rate)], rate, 8000)  # an 8 kHz WAV: played as is
    first_wav = wav_bytes(np.rint(first).astype(np.int16), 8000)
    second_16k = speech[int(3.0 * rate) : int(4.5 * rate)]  # a 16 kHz WAV: resampled
    second = resample(second_16k, rate, 8000)
    assert len(first) % 160 == 0, "the first prompt fills whole packets"
    uris = [
        "data:audio/wav;base64," + base64.b64encode(first_wav).decode(),
        "data:audio/wav;base64," + base64.b64encode(wav_bytes(second_16k, rate)).decode(),
    ]
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-queue"))).rtp_port
    try:
        with RtpPhone() as phone:
            for uri in uris:
                await play(stub, port, uri, phone.address)
            packets = await asyncio.to_thread(phone.wait_quiet, 0.5, 15)
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))

    # One talk spurt: sequence numbers and timestamps run on across the prompt boundary.
    check_stream(packets, payload_type=0)
    assert len(packets) == len(first) // 160 + math.ceil(len(second) / 160)
    audio = decode_packets(packets)
    score_1, lag_1 = best_alignment(first, audio)
    score_2, lag_2 = best_alignment(second, audio)
    print(f"queued prompts: first {score_1:.4f} at {lag_1}, second {score_2:.4f} at {lag_2}")
    assert score_1 >= 0.95
    assert score_2 >= 0.95
    assert lag_1 == 0
    assert lag_2 == len(first), "the second prompt must follow the first with no gap"


async def test_ffmpeg_receives_the_prompt(ffmpeg: str, stub, tmp_path: Path) -> None:
    listen = free_udp_port(even=True)
    sdp = write_sdp(tmp_path / "phone.sdp", listen)
    out = tmp_path / "heard.wav"
    receiver = spawn(ffmpeg_rtp_receiver(ffmpeg, sdp, out, seconds=6))
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-ffmpeg-rx"))).rtp_port
    try:
        await asyncio.to_thread(wait_udp_bound, listen, 10)
        await play(stub, port, PROMPT_URI, f"127.0.0.1:{listen}")
        status, errors = await finish(receiver, 20)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert status == 0, f"FFmpeg receiver: exit status {status}\n{errors}"
    heard, heard_rate = read_wav(out)
    assert heard_rate == 8000
    prompt = prompt_at_8k()
    score, lag = best_alignment(prompt, heard)
    print(f"FFmpeg heard {len(heard) / 8000:.2f} s: correlation {score:.4f} at lag {lag}")
    assert score >= 0.9
