"""Crash safety: the service as a real process, killed while recording, started again.

SIGKILL: what reached the spool is finished, stored at its target and announced
by the next process, and the spool is empty afterwards. SIGTERM: the process
stores the running recording itself before it exits with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2_grpc
from tests.recording.conftest import (
    RECORDING_KEY,
    PhoneCall,
    TapFactory,
    free_tcp_port,
    wait_until,
)
from tests.service_env import SERVE_COMMAND, service_env
from tests.support import UdpPeer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_SECONDS = 0.5  # the in-memory window the processes run with
FLUSH_BLOCK_SECONDS = 1.0  # the spool is appended in blocks of one second (Recordings.start)


class ServiceProcess:
    """`python -m sentiric_media.cli serve` with its own ports and the shared folders."""

    def __init__(self, tmp_path: Path, assets: Path, rabbitmq_url: str, exchange: str) -> None:
        self.grpc_port = free_tcp_port()
        self.log_path = tmp_path / f"service-{self.grpc_port}.log"
        self.env = service_env(
            tmp_path,
            assets,
            self.grpc_port,
            free_tcp_port(),
            MEDIA_SERVICE_RECORDING_WINDOW_SECONDS=str(WINDOW_SECONDS),
            RABBITMQ_URL=rabbitmq_url,
            RABBITMQ_EXCHANGE=exchange,
        )
        self.cwd = tmp_path
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.aio.Channel | None = None
        self.stub: media_pb2_grpc.MediaServiceStub | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                SERVE_COMMAND,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self) -> ServiceProcess:
        self.process = self._spawn()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout=30)
        except TimeoutError:
            self.process.kill()
            pytest.fail(f"the service did not start; its log:\n{self.log}")
        self.stub = media_pb2_grpc.MediaServiceStub(self.channel)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def signal_and_wait(self, signum: int, within: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        try:
            await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the service did not exit within {within} s; its log:\n{self.log}")
        await self.close_channel()
        return self.process.returncode

    async def close_channel(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None

    async def shutdown(self) -> None:
        await self.close_channel()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
async def processes(tmp_path: Path, assets: Path, rabbitmq_url: str):
    started: list[ServiceProcess] = []

    async def start(exchange: str) -> ServiceProcess:
        service = ServiceProcess(tmp_path, assets, rabbitmq_url, exchange)
        started.append(service)
        return await service.start()

    try:
        yield start
    finally:
        for service in started:
            with contextlib.suppress(Exception):
                await service.shutdown()


def read_stereo(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getnchannels() == 2
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return data.reshape(-1, 2), handle.getframerate()


def spool_leftovers(tmp_path: Path) -> list[Path]:
    root = tmp_path / "recordings" / ".spool"
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.name != "outbox"]
    messages = list((root / "outbox").glob("*.json")) if (root / "outbox").is_dir() else []
    return folders + messages


async def test_sigkill_while_recording_then_restart_stores_and_announces_it(
    processes, peer: UdpPeer, broker: TapFactory, tmp_path: Path
) -> None:
    tap = await broker()
    first = await processes(tap.exchange)
    call = await PhoneCall.begin(first.stub, peer)
    uri = "file://crash/killed.wav"
    await call.start(uri, channels=2, trace_id="trace-kill")
    started = time.monotonic()
    await asyncio.sleep(3.0)
    # What a killed process leaves: the spool entry, still marked as recording.
    [entry] = [p for p in (tmp_path / "recordings" / ".spool").iterdir() if p.name != "outbox"]
    assert json.loads((entry / "meta.json").read_text())["state"] == "recording"
    assert await first.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    recorded_s = time.monotonic() - started
    await call.hang_up_phone()
    spooled_bytes = (entry / "audio.s16").stat().st_size
    target = tmp_path / "recordings" / "crash" / "killed.wav"
    assert not target.exists()

    second = await processes(tap.exchange)
    message = await tap.wait_for(RECORDING_KEY, 20, callId=call.call_id)
    assert message, f"no announcement; the log:\n{second.log}"
    await asyncio.sleep(0.5)
    [message] = tap.of(RECORDING_KEY, callId=call.call_id)
    assert message.body["recordingUri"] == uri
    assert message.body["traceId"] == "trace-kill"
    assert message.delivery_mode == 2

    frames, rate = read_stereo(target)
    assert rate == 8000
    seconds = len(frames) / rate
    assert seconds == pytest.approx(spooled_bytes / 4 / 8000, abs=0.001)
    # All of it but the open part: at most the window plus one flush block is lost.
    assert recorded_s - WINDOW_SECONDS - FLUSH_BLOCK_SECONDS - 0.1 <= seconds <= recorded_s
    if "durationMs" in message.body:
        assert abs(message.body["durationMs"] - seconds * 1000) <= 1
    # The phone's speech (left) and the prompt (right) are in what was recovered.
    assert np.sqrt(np.mean(frames[:, 0].astype(float) ** 2)) > 100
    assert np.sqrt(np.mean(frames[:, 1].astype(float) ** 2)) > 100
    assert "recovering recording file://crash/killed.wav" in second.log
    assert await wait_until(lambda: not spool_leftovers(tmp_path), within=5)


async def test_sigterm_while_recording_stores_it_before_a_clean_exit(
    processes, peer: UdpPeer, broker: TapFactory, tmp_path: Path
) -> None:
    tap = await broker()
    service = await processes(tap.exchange)
    call = await PhoneCall.begin(service.stub, peer)
    uri = "file://term/graceful.wav"
    await call.start(uri, channels=2, trace_id="trace-term")
    started = time.monotonic()
    await asyncio.sleep(1.2)
    signalled = time.monotonic()
    assert await service.signal_and_wait(signal.SIGTERM) == 0, service.log
    await call.hang_up_phone()
    frames, rate = read_stereo(tmp_path / "recordings" / "term" / "graceful.wav")
    # Everything up to the signal is in it (the whole window too, not just the spool).
    assert len(frames) / rate >= signalled - started - 0.1
    assert np.sqrt(np.mean(frames[:, 0].astype(float) ** 2)) > 100
    assert not [p for p in spool_leftovers(tmp_path) if p.suffix != ".json"]
    # Announced: on the broker already, or waiting in the outbox for the next start.
    waiting = [
        json.loads(p.read_text())
        for p in (tmp_path / "recordings" / ".spool" / "outbox").glob("*.json")
    ]
    waiting = [m["body"]["recordingUri"] for m in waiting if m["routing_key"] == RECORDING_KEY]
    if not tap.of(RECORDING_KEY, callId=call.call_id):
        assert waiting == [uri]
        await processes(tap.exchange)
    [message] = await tap.wait_for(RECORDING_KEY, 20, callId=call.call_id)
    assert message.body["recordingUri"] == uri
    assert message.body["traceId"] == "trace-term"


async def test_only_the_configured_window_is_at_risk_in_a_crash(
    make_service, peer: UdpPeer, spool_entries
) -> None:
    service = await make_service(recording_window_seconds=WINDOW_SECONDS)
    call = await PhoneCall.begin(service.stub, peer)
    await call.start("file://window.wav")
    started = time.monotonic()
    await asyncio.sleep(2.0)
    elapsed = time.monotonic() - started
    [entry] = spool_entries()
    spooled = (entry / "audio.s16").stat().st_size / 4 / 8000
    await call.hang_up_phone()
    # What a kill -9 now would leave: everything but the last WINDOW_SECONDS.
    assert spooled >= elapsed - WINDOW_SECONDS - 0.1
