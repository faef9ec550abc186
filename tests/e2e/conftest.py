"""End-to-end fixtures: the service as a real `sentiric-media serve` subprocess, FFmpeg.

One service process serves the whole e2e session (start-up costs about a second).
Its stderr goes to a file that is attached to the report of any failing test.
Stopping it with SIGTERM must end it with exit status 0 within a few seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sentiric_media.api.v1 import media_pb2_grpc
from tests.conftest import PROMPT_WAV, SPEECH_WAV
from tests.service_env import SERVE_COMMAND, free_tcp_port, service_env

STOP_TIMEOUT = 5.0
READY_TIMEOUT = 20.0


@dataclass
class ServiceProcess:
    """A `sentiric-media serve` child process on free loopback ports."""

    root: Path
    grpc_port: int
    metrics_port: int
    rtp_range: tuple[int, int]
    process: subprocess.Popen[bytes]
    stderr_path: Path
    stdout_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def assets(self) -> Path:
        return self.root / "assets"

    @property
    def recordings(self) -> Path:
        return self.root / "recordings"

    @classmethod
    def start(cls, root: Path, **extra_env: str) -> ServiceProcess:
        assets = root / "assets" / "audio" / "demo"
        assets.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROMPT_WAV, assets / "welcome.wav")
        grpc_port, metrics_port = free_tcp_port(), free_tcp_port()
        env = service_env(
            root,
            root / "assets",
            grpc_port,
            metrics_port,
            RTP_SERVICE_PORT_QUARANTINE_SECONDS="1",
            **extra_env,
        )
        low, high = int(env["RTP_SERVICE_PORT_MIN"]), int(env["RTP_SERVICE_PORT_MAX"])
        stderr_path, stdout_path = root / "service.stderr", root / "service.stdout"
        with stderr_path.open("wb") as stderr, stdout_path.open("wb") as stdout:
            process = subprocess.Popen(
                SERVE_COMMAND,
                env=env,
                cwd=root,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        service = cls(root, grpc_port, metrics_port, (low, high), process, stderr_path, stdout_path)
        try:
            service.wait_ready(READY_TIMEOUT)
        except BaseException:
            service.kill()
            raise
        return service

    def wait_ready(self, timeout: float) -> None:
        """Poll the standard gRPC health service until the media service is SERVING."""
        deadline = time.monotonic() + timeout
        request = health_pb2.HealthCheckRequest(service="sentiric.media.v1.MediaService")
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"sentiric-media serve exited with {self.process.returncode} "
                        f"before it was ready:\n{self.stderr_text()}"
                    )
                try:
                    reply = health.Check(request, timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"sentiric-media serve not ready within {timeout} s:\n{self.stderr_text()}"
                    )
                time.sleep(0.05)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> tuple[int | None, float]:
        """SIGTERM; returns the exit status (None if still running after `timeout`) and time."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stderr_text(self, offset: int = 0, limit: int = 20000) -> str:
        try:
            with self.stderr_path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no stderr file)"
        return text if len(text) <= limit else "...\n" + text[-limit:]


def require_tool(name: str, why: str, package: str) -> str:
    """The path of the program `name`: missing is a failure under CI, a skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{why}: apt-get install -y {package}"
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found (CI is set): {message}")
        pytest.skip(f"{name} not found: {message}")
    return path


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return require_tool("ffmpeg", "FFmpeg is the phone of the end-to-end tests", "ffmpeg")


@pytest.fixture(scope="session")
def sox() -> str:
    return require_tool("sox", "sox makes the DTMF test tones", "sox")


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def media_service(e2e_root: Path) -> Iterator[ServiceProcess]:
    """The shared service subprocess; its SIGTERM shutdown is checked at the end."""
    service = ServiceProcess.start(e2e_root / "service")
    yield service
    code, took = service.terminate()
    if code is None:
        service.kill()
    assert code == 0, (
        f"sentiric-media serve: exit status {code} {took:.1f} s after SIGTERM "
        f"(0 within {STOP_TIMEOUT} s expected)\n{service.stderr_text()}"
    )


@dataclass
class ServiceFactory:
    """Starts extra service processes for one test; kills any the test left running."""

    root: Path
    started: list[ServiceProcess]

    def __call__(self, **extra_env: str) -> ServiceProcess:
        service = ServiceProcess.start(self.root / f"service{len(self.started)}", **extra_env)
        self.started.append(service)
        return service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[ServiceFactory]:
    factory = ServiceFactory(tmp_path, [])
    yield factory
    for service in factory.started:
        service.kill()


@pytest.fixture
async def stub(media_service: ServiceProcess) -> AsyncIterator[media_pb2_grpc.MediaServiceStub]:
    async with grpc.aio.insecure_channel(media_service.address) as channel:
        yield media_pb2_grpc.MediaServiceStub(channel)


@pytest.fixture(scope="session")
def speech_wav(e2e_root: Path) -> Path:
    """The bundled speech at a path lavfi can read without escaping."""
    target = e2e_root / "speech8k.wav"
    if not target.exists():
        shutil.copy(SPEECH_WAV, target)
    return target


_LOG_START = pytest.StashKey[dict[Path, int]]()


def _services_of(item: pytest.Item) -> list[ServiceProcess]:
    values = getattr(item, "funcargs", {})
    services = [values["media_service"]] if "media_service" in values else []
    factory = values.get("service_factory")
    return services + (factory.started if factory is not None else [])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach what the service process(es) of a failing test wrote to stderr meanwhile."""
    report = yield
    services = _services_of(item)
    if call.when == "setup":
        item.stash[_LOG_START] = {s.stderr_path: _size(s.stderr_path) for s in services}
    if report.failed:
        start = item.stash.get(_LOG_START, {})
        for service in services:
            offset = start.get(service.stderr_path, 0)
            title = f"sentiric-media serve stderr ({service.stderr_path}, from byte {offset})"
            report.sections.append((title, service.stderr_text(offset)))
    return report


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
