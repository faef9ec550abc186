"""Malformed datagrams on a session port: counted by reason, never fatal, audio flows on."""

from __future__ import annotations

import asyncio
import struct
import time

import grpc
import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.media.codecs import PCMU
from sentiric_media.media.rtp import build_rtp
from tests.integration.helpers import (
    allocate,
    http_get,
    metric,
    parse_metrics,
    play,
    read_messages,
    resample,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
    wav_uri,
)
from tests.support import best_alignment

PAYLOAD = bytes(160)

# (datagram, drop reason)
BAD_DATAGRAMS = [
    (b"\x80", "too_short"),
    (b"\x80\x00\x00\x01\x00\x00", "too_short"),
    (bytes(172), "bad_version"),  # version 0
    (b"hello, this is not RTP at all", "bad_version"),  # 'h' = version 1
    (bytes([0x40, 0x00]) + bytes(10) + PAYLOAD, "bad_version"),  # version 1
    (bytes([0xC0, 0x00]) + bytes(10) + PAYLOAD, "bad_version"),  # version 3
    (bytes([0xA0, 0x00]) + bytes(10) + PAYLOAD[:-1] + b"\x00", "bad_padding"),  # padding 0
    (bytes([0xA0, 0x00]) + bytes(10) + PAYLOAD[:-1] + b"\xff", "bad_padding"),  # > payload
    (bytes([0x90, 0x00]) + bytes(10), "truncated_extension"),
    (bytes([0x8F, 0x00]) + bytes(10) + bytes(8), "truncated_header"),  # 15 CSRCs, 20 bytes
]


def _rtcp_sender_report(ssrc: int = 0x1234ABCD) -> bytes:
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 0, 0, 0, 0, 0)


def _expected_drops() -> dict[str, int]:
    expected: dict[str, int] = {}
    for _, reason in BAD_DATAGRAMS:
        expected[reason] = expected.get(reason, 0) + 1
    return expected


async def test_malformed_datagrams_are_counted_and_audio_still_flows(service, stub, peer):
    port = await allocate(stub, "rtp-malformed")
    session = service.manager.by_port[port]
    call = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))
    await read_messages(call, 1)
    collected: list[bytes] = []

    async def collect() -> None:
        while (message := await call.read()) is not grpc.aio.EOF:
            collected.append(message.audio_data)

    reader = asyncio.create_task(collect())
    # Garbage before any valid packet: counted, and it latches nothing.
    for datagram, _ in BAD_DATAGRAMS:
        peer.send(datagram, port)
    peer.send(b"", port)  # an empty datagram (may not even be delivered)
    peer.send(_rtcp_sender_report(), port)
    expected = _expected_drops()
    assert await wait_until(lambda: dict(session.stats.drops) == expected, 1.0), dict(
        session.stats.drops
    )
    assert session.source is None
    assert session.stats.rtcp_in == 1

    # Valid speech, paced, with garbage and RTCP interleaved after latching.
    source = speech()[8000:16000]
    packets = rtp_packets(source)
    await _send_paced_with_extras(peer, port, packets, every=10)
    await asyncio.sleep(0.3)
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)

    assert session.source == peer.address
    assert session.stats.drops["too_short"] > expected["too_short"]
    assert session.stats.drops["bad_version"] > expected["bad_version"]
    assert session.stats.rtcp_in > 1
    assert service.clock.member_errors == 0
    live = np.frombuffer(b"".join(collected), dtype="<i2")
    score, _ = best_alignment(resample(source[800:7200], 8000, 16000), live)
    assert score > 0.9
    # The session still works both ways.
    assert port in service.manager.by_port
    assert (await play(stub, port, wav_uri(speech()[:1600]))).success
    await peer.wait_for_packets(5, timeout=2)
    assert peer.packets


async def _send_paced_with_extras(peer, port, packets, every: int) -> None:
    extras = [datagram for datagram, _ in BAD_DATAGRAMS[:4]] + [_rtcp_sender_report()]
    start = time.monotonic()
    for index, packet in enumerate(packets):
        delay = start + index * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        peer.send(packet, port)
        if index % every == every // 2:
            for extra in extras:
                peer.send(extra, port)


async def test_duplicates_are_counted_and_dropped(service, stub, peer):
    port = await allocate(stub, "rtp-duplicates")
    session = service.manager.by_port[port]
    call = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))
    await read_messages(call, 1)
    source = speech()[16000:20000]
    packets = rtp_packets(source)
    doubled: list[bytes] = []
    for index, packet in enumerate(packets):
        doubled.append(packet)
        if index % 5 == 0:
            doubled.append(packet)  # an immediate duplicate
    await send_paced(peer, port, doubled)
    duplicates = len(doubled) - len(packets)
    assert await wait_until(lambda: session.stats.drops["duplicate"] == duplicates, 1.0), dict(
        session.stats.drops
    )
    assert await wait_until(lambda: session.stats.packets_received == len(packets), 1.0)
    assert session.stats.packets_lost == 0
    call.cancel()
    _, text = await http_get(service.metrics_port, "/metrics")
    samples = parse_metrics(text)
    dropped = metric(samples, "sentiric_media_rtp_packets_dropped_total", reason="duplicate")
    assert dropped == duplicates


async def test_unsupported_payload_types_are_dropped_and_comfort_noise_is_received(
    service, stub, peer
):
    port = await allocate(stub, "rtp-payload-types")
    session = service.manager.by_port[port]
    call = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))
    await read_messages(call, 1)
    for index in range(5):
        peer.send(build_rtp(13, 100 + index, 800 * index, 7, b"\x40", marker=False), port)
    for index in range(5):
        peer.send(build_rtp(99, 200 + index, 160 * index, 8, PAYLOAD, marker=False), port)
    stats = session.stats
    # Comfort noise (RFC 3389) is part of the caller's stream: received, not lost.
    assert await wait_until(
        lambda: stats.drops["unsupported_payload_type"] == 5 and stats.packets_received == 5, 1.0
    ), dict(stats.drops)
    assert "comfort_noise" not in stats.drops
    # PCMU still decodes afterwards.
    source = speech()[24000:28000]
    await send_paced(peer, port, rtp_packets(source, ssrc=9, first_sequence=300))
    assert await wait_until(lambda: stats.packets_received == 5 + len(source) // 160, 1.0)
    assert stats.packets_lost == 0
    assert session.send_format.codec is PCMU
    call.cancel()


async def test_rtcp_is_not_an_error(service, stub, peer):
    port = await allocate(stub, "rtp-rtcp")
    session = service.manager.by_port[port]
    for _ in range(3):
        peer.send(_rtcp_sender_report(), port)
    assert await wait_until(lambda: session.stats.rtcp_in == 3, 1.0)
    assert not session.stats.drops


async def test_reordering_and_sequence_wrap_are_not_loss(service, stub, peer):
    port = await allocate(stub, "rtp-reorder-wrap")
    session = service.manager.by_port[port]
    call = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))
    await read_messages(call, 1)
    collected: list[bytes] = []

    async def collect() -> None:
        while (message := await call.read()) is not grpc.aio.EOF:
            collected.append(message.audio_data)

    reader = asyncio.create_task(collect())
    source = speech()[48000:52800]
    packets = rtp_packets(source, first_sequence=65520, first_timestamp=2**32 - 1600)
    for index in range(1, len(packets) - 1, 4):  # swap neighbours: 20 ms out of order
        packets[index], packets[index + 1] = packets[index + 1], packets[index]
    await send_paced(peer, port, packets)
    assert await wait_until(lambda: session.stats.packets_received == len(packets), 1.0)
    await asyncio.sleep(0.2)
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert session.stats.packets_lost == 0
    assert not session.stats.drops, dict(session.stats.drops)
    live = np.frombuffer(b"".join(collected), dtype="<i2")
    score, _ = best_alignment(resample(source[400:4400], 8000, 16000), live)
    assert score > 0.9
