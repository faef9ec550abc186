"""Fixtures of the integration tests: services with custom settings, UDP peers, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sentiric_media.api.v1 import media_pb2_grpc
from sentiric_media.app import MediaApp
from sentiric_media.events.bus import MediaEvent
from tests.conftest import make_settings
from tests.support import UdpPeer

ServiceFactory = Callable[..., Awaitable[tuple[MediaApp, media_pb2_grpc.MediaServiceStub]]]


@pytest.fixture
async def make_service(tmp_path: Path, assets: Path) -> AsyncIterator[ServiceFactory]:
    """Start a service with settings overrides (`make_settings` names); stopped at the end."""
    started: list[tuple[MediaApp, grpc.aio.Channel]] = []

    async def factory(**overrides: Any) -> tuple[MediaApp, media_pb2_grpc.MediaServiceStub]:
        app = MediaApp(make_settings(tmp_path, assets, **overrides))
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
        started.append((app, channel))
        return app, media_pb2_grpc.MediaServiceStub(channel)

    try:
        yield factory
    finally:
        for app, channel in reversed(started):
            await channel.close()
            await app.stop(grace=0.5)


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[], Awaitable[UdpPeer]]]:
    """Open loopback UDP peers (the phone); all closed at the end."""
    opened: list[UdpPeer] = []

    async def open_peer() -> UdpPeer:
        peer = await UdpPeer.open()
        opened.append(peer)
        return peer

    try:
        yield open_peer
    finally:
        for peer in opened:
            peer.close()


@pytest.fixture
async def peer(peers: Callable[[], Awaitable[UdpPeer]]) -> UdpPeer:
    return await peers()


@pytest.fixture
def events(service: MediaApp) -> Iterator[list[MediaEvent]]:
    """Every event published on the default service's bus during the test."""
    received: list[MediaEvent] = []
    unsubscribe = service.bus.subscribe(received.append)
    yield received
    unsubscribe()
