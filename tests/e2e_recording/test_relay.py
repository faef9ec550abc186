"""The impairment relay itself: its delays, losses and reordering, and how exact it is.

The recording tests trust the relay to delay each packet by what it drew; here
that is measured where it matters, at the receiving socket (kernel timestamps):
the error of the actual delay against the drawn one.
"""

from __future__ import annotations

import itertools
import socket
import struct
import time

import numpy as np
import pytest

from tests.e2e_recording.relay import SO_TIMESTAMPNS, ImpairmentRelay

pytestmark = pytest.mark.e2e

COUNT = 1000
INTERVAL = 0.002


def _receive_all(sink: socket.socket, quiet: float) -> list[tuple[float, bytes, tuple]]:
    """(monotonic kernel arrival, bytes, source) of everything until `quiet` s of silence."""
    sink.settimeout(quiet)
    got = []
    while True:
        try:
            data, ancillary, _, source = sink.recvmsg(2048, 64)
        except TimeoutError:
            return got
        now_mono, now_real = time.monotonic(), time.time()
        arrival = now_mono
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = struct.unpack("qq", payload[:16])
                arrival = now_mono - max(0.0, now_real - (seconds + nanos * 1e-9))
        got.append((arrival, data, source))


def _packet(index: int) -> bytes:
    # An RTP header (PCMU, sequence = index) and the index in the payload.
    return struct.pack("!BBHII", 0x80, 0, index & 0xFFFF, index * 160, 0xABCD) + struct.pack(
        "!I", index
    )


def test_relay_delays_drops_reorders_accurately() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sink.bind(("127.0.0.1", 0))
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    relay = ImpairmentRelay(
        sink.getsockname(), seed=7, phone_address=phone.getsockname()[:2]
    ).start()
    try:
        start = time.monotonic()
        for index in range(COUNT):
            delay = start + index * INTERVAL - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            phone.sendto(_packet(index), ("127.0.0.1", relay.port))
        received = _receive_all(sink, quiet=0.5)
        # The way back: what the "service" sends to the forwarding socket reaches the phone.
        sink.sendto(b"\x80\x00\x00\x01" + bytes(12), relay.forward_address)
        phone.settimeout(2)
        back, _ = phone.recvfrom(2048)
    finally:
        relay.close()
        sink.close()
        phone.close()

    stats = relay.stats
    assert back == b"\x80\x00\x00\x01" + bytes(12)
    assert relay.from_service
    assert relay.from_service[0].data == back
    assert {source[:2] for _, _, source in received} == {relay.forward_address}, (
        "everything must come from the one forwarding socket"
    )
    assert stats.received == COUNT
    assert len(received) == COUNT - stats.dropped == stats.forwarded
    assert 0.025 * COUNT <= stats.dropped <= 0.075 * COUNT
    assert 0.07 * COUNT <= stats.reordered <= 0.13 * COUNT

    sent_at = {d.data: d.arrival for d in relay.from_phone}
    due = {forwarded.data: forwarded.due for forwarded in stats.sent}
    errors = np.array([arrival - due[data] for arrival, data, _ in received]) * 1000
    delays = [arrival - sent_at[data] for arrival, data, _ in received]
    order = [struct.unpack_from("!I", data, 12)[0] for _, data, _ in received]
    inversions = sum(1 for a, b in itertools.pairwise(order) if b < a)
    print(
        f"\nrelay{' (SCHED_FIFO)' if relay.realtime else ''}: {COUNT} packets, "
        f"{stats.dropped} dropped, {stats.reordered} held back, {inversions} order "
        f"inversions at the receiver; delay {min(delays) * 1000:.2f}–{max(delays) * 1000:.2f} ms; "
        f"error of the delay at the receiver: median {np.median(errors):.3f}, "
        f"p99 {np.percentile(errors, 99):.3f}, max {errors.max():.3f} ms"
    )
    assert min(delays) >= 0
    assert inversions >= stats.reordered
    assert np.median(errors) < 1.0
    # Measured: p99 0.1 ms at real-time priority, also with both cores busy. Without
    # it (not root, no CAP_SYS_NICE) 0.6 ms on an idle machine, but 19 ms with both
    # cores busy: the woken thread waits for a core. Late packets only make the
    # network look worse to the service; the recording tests measure each packet's
    # real times, so they stay valid either way.
    limit = 5.0 if relay.realtime else 25.0
    assert np.percentile(errors, 99) < limit, "the relay's delays are not exact enough"
