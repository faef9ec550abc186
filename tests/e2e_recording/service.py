"""The service under test as a subprocess: `python -m sentiric_media.cli serve`.

It runs in its own process so that the test's own Python work (the relay
threads, starting FFmpeg, analysing recordings) cannot delay its media clock,
and so that its timing is what production sees.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from sentiric_media.api.v1 import media_pb2_grpc
from tests.service_env import SERVE_COMMAND, free_tcp_port, service_env


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    grpc_address: str
    metrics_url: str
    recordings: Path
    log_path: Path
    channel: grpc.Channel
    stub: media_pb2_grpc.MediaServiceStub

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        self.channel.close()
        stop_process(self.process)


def start_service(folder: Path, assets: Path) -> ServiceProcess:
    """Start the service on free loopback ports; raises RuntimeError with its log if it fails."""
    grpc_port, metrics_port = free_tcp_port(), free_tcp_port()
    env = service_env(
        folder,
        assets,
        grpc_port,
        metrics_port,
        RTP_SERVICE_PORT_QUARANTINE_SECONDS="0.5",
        MEDIA_SERVICE_SPOOL_PATH=str(folder / "spool"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            SERVE_COMMAND,
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{grpc_port}"
    channel = grpc.insecure_channel(address)
    deadline = time.monotonic() + 20
    while True:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
            break
        except grpc.FutureTimeoutError:
            if process.poll() is not None or time.monotonic() > deadline:
                channel.close()
                stop_process(process)
                text = log_path.read_text(errors="replace")
                raise RuntimeError(f"the service did not start:\n{text[-3000:]}") from None
    return ServiceProcess(
        process,
        address,
        f"http://127.0.0.1:{metrics_port}/metrics",
        folder / "recordings",
        log_path,
        channel,
        media_pb2_grpc.MediaServiceStub(channel),
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
