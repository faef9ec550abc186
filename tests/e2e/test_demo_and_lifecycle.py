"""Test E (the `demo` command against the service process) and the process lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import wave

import grpc
import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc
from tests.e2e.phone import RtpPhone

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("codec", "name"), [("pcmu", "PCMU"), ("opus", "opus")])
def test_demo_command_against_the_service_process(media_service, codec: str, name: str) -> None:
    command = [sys.executable, "-m", "sentiric_media.cli", "demo", "--seconds", "3"]
    command += ["--codec", codec]
    result = subprocess.run(
        [*command, "--grpc", media_service.address],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert re.search(rf"negotiated: {name}/\d+ payload type \d+", output), output
    # The phone pressed 4 and 2 (RFC 4733): StreamEvents reported each once.
    assert re.findall(r"dtmf: digit=(\d)", output) == ["4", "2"], output
    phone_to_service = re.search(rf"phone → service: (\d+) {name} packets", output)
    service_to_phone = re.search(
        r"service → phone: (\d+) packets of prompt audio, (\d+) missing", output
    )
    assert phone_to_service, output
    assert service_to_phone, output
    assert int(phone_to_service.group(1)) == 150  # 3 s of 20 ms packets
    assert int(service_to_phone.group(1)) > 100
    assert int(service_to_phone.group(2)) == 0
    live = re.search(r"live audio \(RecordAudio\): (\d+) messages, (\d+) bytes", output)
    assert live, output
    assert int(live.group(2)) > 0, output
    # The demo's stereo recording landed under the service's recordings folder.
    stored = re.search(r"recording: file://demo/(\S+\.wav)", output)
    assert stored, output
    recording = media_service.recordings / "demo" / stored.group(1)
    assert recording.is_file(), f"no {recording}"
    with wave.open(str(recording)) as handle:
        assert handle.getnchannels() == 2, "the demo records caller left, bot right"
        rate = handle.getframerate()
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    caller, bot = frames.reshape(-1, 2).T
    assert len(caller) >= 3 * rate, "shorter than the 3 s the phone talked"
    assert np.abs(caller).max() > 1000, "the caller's channel is silent"
    assert np.abs(bot).max() > 1000, "the bot's channel is silent"


async def start_busy_call(stub, phone: RtpPhone) -> int:
    """A call whose prompt is playing to `phone` (5 s long: still playing at SIGTERM)."""
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="e2e-term"))).rtp_port
    reply = await stub.PlayAudio(
        pb.PlayAudioRequest(
            audio_uri="file://audio/demo/welcome.wav",
            server_rtp_port=port,
            rtp_target_addr=phone.address,
        )
    )
    assert reply.success, reply.message
    await asyncio.to_thread(phone.wait_for, 10, 5)
    assert len(phone.snapshot()) >= 10, "the prompt is not playing"
    return port


async def terminate_and_check(service, phone: RtpPhone, within: float) -> None:
    code, took = await asyncio.to_thread(service.terminate, 10.0)
    print(f"SIGTERM → exit status {code} after {took:.2f} s")
    assert code == 0, f"exit status {code}\n{service.stderr_text()}"
    assert took < within, f"exit took {took:.2f} s after SIGTERM (< {within} s expected)"
    count = len(phone.snapshot())
    await asyncio.sleep(0.2)
    assert len(phone.snapshot()) == count, "RTP still flowing after the process exited"
    stderr = service.stderr_text()
    assert "shutting down" in stderr, stderr
    assert "sentiric-media stopped" in stderr, stderr
    assert "Traceback" not in stderr, stderr


async def test_sigterm_while_a_prompt_plays_exits_0_quickly(service_factory) -> None:
    service = service_factory()
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = media_pb2_grpc.MediaServiceStub(channel)
        with RtpPhone() as phone:
            await start_busy_call(stub, phone)
            await terminate_and_check(service, phone, within=3.0)
            played = len(phone.snapshot())
    assert played < 200, f"the 256-packet prompt played on to {played} packets after SIGTERM"


async def test_sigterm_with_an_open_live_stream_exits_0_quickly(service_factory) -> None:
    service = service_factory()
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = media_pb2_grpc.MediaServiceStub(channel)
        with RtpPhone() as phone:
            port = await start_busy_call(stub, phone)
            live = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))
            first = await asyncio.wait_for(live.read(), 5)
            assert first.media_type == "audio/L16;rate=16000"
            await terminate_and_check(service, phone, within=3.0)
            # The live stream ended with the process (it does not hang).
            with contextlib.suppress(grpc.aio.AioRpcError):
                while await asyncio.wait_for(live.read(), 2) is not grpc.aio.EOF:
                    pass
