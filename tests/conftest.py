"""Fixtures shared by the integration and end-to-end tests: a real service, real stubs."""

from __future__ import annotations

import random
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import uvloop

from sentiric_media.api.v1 import media_pb2_grpc
from sentiric_media.app import MediaApp
from sentiric_media.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SPEECH_WAV = REPO / "src" / "sentiric_media" / "data" / "speech8k.wav"
PROMPT_WAV = REPO / "assets" / "audio" / "demo" / "welcome.wav"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async test runs on uvloop, like the service in production."""
    return {"uvloop": uvloop.new_event_loop}


def free_rtp_range(count: int = 40) -> tuple[int, int]:
    """A run of `count` ports that are free right now (random, to keep parallel runs apart)."""
    for _ in range(200):
        first = random.randrange(20000, 60000, 2)
        taken = False
        for port in range(first, first + count, 2):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return first, first + count - 1
    raise RuntimeError("no free UDP port range found")


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    (folder / "audio" / "demo").mkdir(parents=True)
    shutil.copy(PROMPT_WAV, folder / "audio" / "demo" / "welcome.wav")
    (tmp_path / "secret.wav").write_bytes(PROMPT_WAV.read_bytes())
    return folder


def make_settings(tmp_path: Path, assets: Path, **overrides: object) -> Settings:
    low, high = free_rtp_range()
    values: dict[str, object] = {
        "grpc_port": 0,
        "metrics_port": 0,
        "listen_address": "127.0.0.1",
        "rtp_listen_address": "127.0.0.1",
        "rtp_port_min": low,
        "rtp_port_max": high,
        "assets_base_path": assets,
        "recordings_path": tmp_path / "recordings",
        "port_quarantine_seconds": 0.5,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
async def service(tmp_path: Path, assets: Path) -> AsyncIterator[MediaApp]:
    app = MediaApp(make_settings(tmp_path, assets))
    await app.start()
    try:
        yield app
    finally:
        await app.stop(grace=0.5)


@pytest.fixture
async def stub(service: MediaApp) -> AsyncIterator[media_pb2_grpc.MediaServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        yield media_pb2_grpc.MediaServiceStub(channel)
