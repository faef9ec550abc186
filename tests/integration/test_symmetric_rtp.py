"""Symmetric RTP: the send target latches to the caller's real source unless locked."""

from __future__ import annotations

import asyncio

from tests.integration.helpers import (
    PROMPT_URI,
    allocate,
    http_get,
    metric,
    parse_metrics,
    play,
    rtp_packets,
    speech,
    wait_until,
)


async def test_target_latches_to_the_callers_source(service, stub, peers):
    a, b, c = await peers(), await peers(), await peers()
    port = await allocate(stub, "sym-latch")
    assert (await play(stub, port, PROMPT_URI, a.address_text)).success
    await a.wait_for_packets(10, timeout=3)
    assert not b.packets

    # The caller's RTP comes from B (behind a NAT): the audio follows it.
    for packet in rtp_packets(speech()[:800]):
        b.send(packet, port)
    session = service.manager.by_port[port]
    assert await wait_until(lambda: session.source == b.address, 1.0)
    await b.wait_for_packets(10, timeout=2)
    count_a = len(a.packets)
    await asyncio.sleep(0.3)
    assert len(a.packets) <= count_a + 1  # at most one packet in flight at the switch
    assert len(b.packets) >= 20

    # A third socket is not the caller: its packets are dropped and move nothing.
    for packet in rtp_packets(speech()[:800], ssrc=0x55, first_sequence=7):
        c.send(packet, port)
    assert await wait_until(lambda: session.stats.drops["foreign_source"] == 5, 1.0)
    assert service.snapshot().drops["foreign_source"] == 5
    count_b = len(b.packets)
    await asyncio.sleep(0.2)
    assert session.source == b.address
    assert len(b.packets) > count_b
    assert not c.packets
    assert session.stats.packets_received == 5  # only B's packets were accepted

    _, text = await http_get(service.metrics_port, "/metrics")
    assert (
        metric(
            parse_metrics(text), "sentiric_media_rtp_packets_dropped_total", reason="foreign_source"
        )
        == 5
    )


async def test_set_target_locks_the_target(service, stub, peers):
    a, b = await peers(), await peers()
    port = await allocate(stub, "sym-lock")
    reply = await play(stub, port, "control://set_target", a.address_text)
    assert reply.success
    for packet in rtp_packets(speech()[:800]):
        b.send(packet, port)
    session = service.manager.by_port[port]
    assert await wait_until(lambda: session.source == b.address, 1.0)
    # A prompt without a target goes to the locked address, not to the source.
    assert (await play(stub, port, PROMPT_URI)).success
    await a.wait_for_packets(20, timeout=3)
    assert len(a.packets) >= 20
    assert not b.packets
    # More RTP from B still does not move the target.
    for packet in rtp_packets(speech()[800:1600], first_sequence=1005, first_timestamp=5800):
        b.send(packet, port)
    await asyncio.sleep(0.2)
    count_a = len(a.packets)
    await asyncio.sleep(0.2)
    assert len(a.packets) > count_a
    assert not b.packets


async def test_target_given_before_rtp_is_used_until_rtp_arrives(service, stub, peers):
    a, b = await peers(), await peers()
    port = await allocate(stub, "sym-before")
    assert (await play(stub, port, PROMPT_URI, a.address_text)).success
    await a.wait_for_packets(15, timeout=3)
    assert len(a.packets) >= 15
    assert not b.packets
    assert service.manager.by_port[port].target == a.address
