"""AllocatePort and ReleasePort: the port pool, quarantine, idempotence, real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
import types

import grpc
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.control import manager as manager_module
from tests.conftest import free_rtp_range
from tests.integration.helpers import PROMPT_URI, allocate, play, rpc_error, wait_until


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _can_bind(port: int) -> bool:
    try:
        _bind(port).close()
    except OSError:
        return False
    return True


async def _small_pool(make_service, ports: int, **overrides):
    """A service whose pool holds exactly `ports` even ports."""
    low, _ = free_rtp_range(2 * ports)
    return await make_service(rtp_port_min=low, rtp_port_max=low + 2 * ports - 1, **overrides)


# ---- AllocatePort ---------------------------------------------------------------------


async def test_allocate_gives_an_even_port_in_range_that_is_bound(service, stub):
    port = await allocate(stub, "call-range")
    settings = service.settings
    assert port % 2 == 0
    assert settings.rtp_port_min <= port <= settings.rtp_port_max
    assert service.manager.by_port[port].call_id == "call-range"
    # The service really holds the UDP port.
    assert not _can_bind(port)


async def test_allocate_gives_distinct_ports_to_distinct_calls(service, stub):
    ports = [await allocate(stub, f"call-{index}") for index in range(6)]
    assert len(set(ports)) == 6
    assert all(port % 2 == 0 for port in ports)
    assert len(service.manager.by_port) == 6


async def test_allocate_twice_for_the_same_call_returns_the_same_port(service, stub):
    first = await allocate(stub, "call-same")
    other = await allocate(stub, "call-other")
    again = await allocate(stub, "call-same")
    assert again == first
    assert other != first
    assert len(service.manager.by_port) == 2
    assert service.manager.pool.in_use_count == 2


@pytest.mark.parametrize("call_id", ["", "   "])
async def test_allocate_without_call_id_is_invalid_argument(service, stub, call_id):
    details = await rpc_error(allocate(stub, call_id), grpc.StatusCode.INVALID_ARGUMENT)
    assert "call_id" in details
    assert not service.manager.by_port


async def test_pool_exhaustion_is_resource_exhausted(make_service):
    app, stub = await _small_pool(make_service, 2)
    ports = {await allocate(stub, "a"), await allocate(stub, "b")}
    assert ports == set(app.settings.even_ports())
    details = await rpc_error(allocate(stub, "c"), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "port" in details
    assert "2" in details  # the pool size is named
    # A call that already has its port still gets it.
    assert await allocate(stub, "a") in ports


async def test_released_port_is_quarantined_then_handed_out_again(make_service):
    app, stub = await _small_pool(make_service, 1, port_quarantine_seconds=0.5)
    port = await allocate(stub, "first")
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))).success
    released_at = time.monotonic()
    assert app.manager.pool.quarantined_count == 1
    # Still in quarantine: the only port of the pool is not handed out.
    await rpc_error(allocate(stub, "second"), grpc.StatusCode.RESOURCE_EXHAUSTED)
    await asyncio.sleep(max(0.0, released_at + 0.6 - time.monotonic()))
    assert await allocate(stub, "second") == port
    assert app.manager.pool.quarantined_count == 0


async def test_released_port_is_not_reused_while_others_are_free(make_service):
    _, stub = await _small_pool(make_service, 2, port_quarantine_seconds=0.5)
    first = await allocate(stub, "one")
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=first))
    second = await allocate(stub, "two")
    assert second != first


async def test_port_bound_by_another_socket_is_skipped_and_quarantined(make_service):
    low, _ = free_rtp_range(4)
    squatter = _bind(low)  # the first port the pool would hand out
    try:
        app, stub = await make_service(rtp_port_min=low, rtp_port_max=low + 3)
        port = await allocate(stub, "call-skip")
        assert port == low + 2
        assert app.manager.bind_failures == 1
        assert app.manager.pool.quarantined_count == 1
        # The taken port is not offered again while quarantined: the pool is now empty.
        await rpc_error(allocate(stub, "call-next"), grpc.StatusCode.RESOURCE_EXHAUSTED)
    finally:
        squatter.close()


async def test_all_ports_taken_by_others_is_resource_exhausted(make_service):
    low, _ = free_rtp_range(2)
    squatter = _bind(low)
    try:
        app, stub = await make_service(rtp_port_min=low, rtp_port_max=low + 1)
        await rpc_error(allocate(stub, "call-none"), grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert app.manager.bind_failures == 1
        assert not app.manager.by_port
    finally:
        squatter.close()


# ---- ReleasePort ----------------------------------------------------------------------


async def test_release_ends_the_session_and_frees_the_socket(service, stub, peer):
    port = await allocate(stub, "call-release")
    reply = await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert reply.success
    assert port not in service.manager.by_port
    assert "call-release" not in service.manager.by_call
    # The UDP port is really closed.
    assert await wait_until(lambda: _can_bind(port), 1.0)
    details = await rpc_error(
        play(stub, port, PROMPT_URI, peer.address_text), grpc.StatusCode.NOT_FOUND
    )
    assert str(port) in details


async def test_release_is_idempotent(service, stub):
    port = await allocate(stub, "call-twice")
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))).success
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))).success
    # A port that was never allocated (inside and outside the range).
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port + 2))).success
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=1))).success
    assert service.manager.pool.in_use_count == 0


async def test_call_id_can_allocate_again_after_release(service, stub):
    port = await allocate(stub, "call-again")
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    again = await allocate(stub, "call-again")
    assert again != port  # the old one is in quarantine
    assert service.manager.by_call["call-again"].port == again


async def test_release_stops_a_playing_prompt(service, stub, peer, events):
    port = await allocate(stub, "call-release-playing")
    await play(stub, port, PROMPT_URI, peer.address_text)
    await peer.wait_for_packets(10, timeout=3)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    released = time.monotonic()
    await asyncio.sleep(0.3)
    assert len(peer.packets) < 100
    assert all(p.arrival < released + 0.1 for p in peer.packets)
    finished = [e for e in events if e.kind == "playback_finished"]
    assert len(finished) == 1
    assert finished[0].data["interrupted"] is True


class _SlowEndpointLoop:
    """The running loop, but creating a datagram endpoint takes 50 ms (a loaded loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str):
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, *args, **kwargs):
        await asyncio.sleep(0.05)
        return await self._loop.create_datagram_endpoint(*args, **kwargs)


class _AsyncioWithSlowEndpoints(types.ModuleType):
    def __getattr__(self, name: str):
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop():
        return _SlowEndpointLoop(asyncio.get_running_loop())


async def test_concurrent_allocations_for_one_call_share_a_port(service, stub, monkeypatch):
    # A signaling service retrying AllocatePort on a timeout must not get a second port.
    monkeypatch.setattr(manager_module, "asyncio", _AsyncioWithSlowEndpoints("asyncio"))
    ports = await asyncio.gather(*(allocate(stub, "call-retry") for _ in range(4)))
    assert len(set(ports)) == 1, ports
    assert len(service.manager.by_port) == 1
    assert service.manager.pool.in_use_count == 1


async def test_sequential_allocations_with_slow_endpoints_share_a_port(service, stub, monkeypatch):
    monkeypatch.setattr(manager_module, "asyncio", _AsyncioWithSlowEndpoints("asyncio"))
    ports = [await allocate(stub, "call-slow") for _ in range(3)]
    assert len(set(ports)) == 1
    assert len(service.manager.by_port) == 1
