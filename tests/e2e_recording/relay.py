"""A UDP impairment relay between the test phone (FFmpeg) and the service's RTP port.

The phone sends to `relay.port`. Every datagram is forwarded to the service from
ONE socket (the service latches to the source of the first packet, so the relay's
forwarding socket is the only caller address it ever sees), after a random delay
of 0..`max_delay` seconds; `loss` of them are dropped and `reorder` of them are
held back until the next datagram has been forwarded. The random choices come
from a seeded RNG, so a run is repeatable.

Times are taken from the kernel (`SO_TIMESTAMPNS`, the moment the datagram was
queued on the socket), converted to `time.monotonic()`, the clock the service
also uses. So thread wake-up latency does not blur them. Forwarding runs on a
dedicated thread with a heap of (due time, packet); how late each packet actually
left (`lateness`) is recorded, it is the relay's own delay error.

What the service sends back to the forwarding socket (the bot's RTP) is recorded
with its kernel arrival time too, and passed on to `phone_address` if one is set.

`onset_delays` gives the delays of the first packets of every talkspurt (a new
SSRC, or after 100 ms without packets) instead of random ones: a delay spike
that drains, as when a radio link wakes up for a talkspurt.

`rewrite="dtx"` turns the segments of several FFmpeg runs (each with its own SSRC,
sequence and timestamp origin) into ONE continuous stream as a phone with
discontinuous transmission sends it: one SSRC, consecutive sequence numbers,
timestamps that advance across the pauses by the pause's real length (measured
at the relay), and a marker bit on the first packet of each talkspurt.
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

# Linux: SO_TIMESTAMPNS (the control message type is the same number).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_RTP_RATE = 8000


@dataclass(frozen=True)
class Datagram:
    """One datagram seen by the relay: monotonic arrival time, source, bytes."""

    arrival: float
    source: tuple[str, int]
    data: bytes

    @property
    def is_rtp(self) -> bool:
        return len(self.data) >= 12 and self.data[0] >> 6 == 2 and not 72 <= self.data[1] <= 76

    @property
    def ssrc(self) -> int:
        return struct.unpack_from("!I", self.data, 8)[0]

    @property
    def sequence(self) -> int:
        return struct.unpack_from("!H", self.data, 2)[0]

    @property
    def timestamp(self) -> int:
        return struct.unpack_from("!I", self.data, 4)[0]

    @property
    def marker(self) -> bool:
        return bool(self.data[1] & 0x80)


@dataclass(eq=False)
class _Entry:
    due: float
    order: int
    data: bytes
    origin: Datagram | None = None  # what the phone sent
    alive: bool = True
    natural_due: float = 0.0  # for a held packet: when it was due before it was held

    def __lt__(self, other: _Entry) -> bool:
        return (self.due, self.order) < (other.due, other.order)


@dataclass(frozen=True)
class Forwarded:
    """One datagram the relay passed on: when it was due, when it left, what the phone sent."""

    due: float
    sent: float
    data: bytes
    origin: Datagram


@dataclass
class RelayStats:
    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    reordered: int = 0
    delays: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    sent: list[Forwarded] = field(default_factory=list)

    def lateness_summary(self) -> dict[str, float]:
        """The relay's own delay error (actual send − due), in ms."""
        if not self.lateness:
            return {"n": 0, "mean_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        ordered = sorted(self.lateness)
        return {
            "n": len(ordered),
            "mean_ms": 1000 * sum(ordered) / len(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_ms": 1000 * ordered[-1],
        }


class ImpairmentRelay:
    def __init__(
        self,
        target: tuple[str, int],
        *,
        max_delay: float = 0.060,
        loss: float = 0.05,
        reorder: float = 0.10,
        seed: int = 1,
        rewrite: str | None = None,
        phone_address: tuple[str, int] | None = None,
        hold_timeout: float = 0.2,
        onset_delays: tuple[float, ...] = (),
    ) -> None:
        if rewrite not in (None, "dtx"):
            raise ValueError(f"unknown rewrite {rewrite!r}")
        self.target = target
        self.max_delay = max_delay
        self.loss = loss
        self.reorder = reorder
        self.rewrite = rewrite
        self.phone_address = phone_address
        self.hold_timeout = hold_timeout
        self.onset_delays = onset_delays
        self._spurt: tuple[int, int] = (-1, 0)  # (SSRC, packets so far) of the talkspurt
        self._last_arrival = 0.0
        self._rng = random.Random(seed)
        self.listen = self._socket()
        self.forward = self._socket()
        self.port: int = self.listen.getsockname()[1]
        self.forward_address: tuple[str, int] = self.forward.getsockname()[:2]
        # What the phone sent (arrival at the relay, original bytes), and what the
        # service sent back to the forwarding socket.
        self.from_phone: list[Datagram] = []
        self.from_service: list[Datagram] = []
        self.stats = RelayStats()
        self._heap: list[_Entry] = []
        self._held: list[_Entry] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._switch_interval: float | None = None
        self.realtime = False
        # dtx rewrite state
        self._dtx_ssrc = 0x5EC0DE01
        self._dtx_sequence = 4242
        self._dtx_origin: float | None = None
        self._dtx_segment: tuple[int, int, int] | None = None  # (orig ssrc, orig ts0, new ts0)

    @staticmethod
    def _socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(("127.0.0.1", 0))
        return sock

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> ImpairmentRelay:
        # A finer GIL switch interval while the relay runs: a thread woken for a
        # due packet gets the interpreter within ~0.5 ms instead of up to 5 ms.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        for target, name in ((self._receive_loop, "relay-rx"), (self._send_loop, "relay-tx")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()
        self.listen.close()
        self.forward.close()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def __enter__(self) -> ImpairmentRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- receiving -------------------------------------------------------------------

    @staticmethod
    def _recv(sock: socket.socket) -> Datagram:
        data, ancillary, _flags, source = sock.recvmsg(4096, 64)
        now_mono = time.monotonic()
        now_real = time.time()
        arrival = now_mono
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                seconds, nanos = struct.unpack("qq", payload[:16])
                # Kernel time is CLOCK_REALTIME; the wait since then is the same on
                # both clocks, so subtract it from the monotonic "now".
                arrival = now_mono - max(0.0, now_real - (seconds + nanos * 1e-9))
        return Datagram(arrival, source, data)

    def _boost(self) -> None:
        """Run this thread at real-time priority when allowed (root or CAP_SYS_NICE).

        Other test suites may keep both cores busy; a woken relay thread then
        waits for a core, and its packets leave late. Without the privilege the
        relay still works, with larger delay errors under load (measured anyway).
        """
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            self.realtime = True
        except (AttributeError, OSError):
            pass

    def _receive_loop(self) -> None:
        self._boost()
        sockets = [self.listen, self.forward]
        while not self._stopping:
            try:
                ready, _, _ = select.select(sockets, [], [], 0.05)
            except (OSError, ValueError):
                return
            for sock in ready:
                try:
                    datagram = self._recv(sock)
                except OSError:
                    continue
                if sock is self.listen:
                    self._from_phone(datagram)
                else:
                    self.from_service.append(datagram)
                    if self.phone_address is not None:
                        self.listen.sendto(datagram.data, self.phone_address)

    def _from_phone(self, datagram: Datagram) -> None:
        self.from_phone.append(datagram)
        self.stats.received += 1
        data = datagram.data
        if self.rewrite == "dtx" and datagram.is_rtp:
            data = self._dtx(datagram)
        rng = self._rng
        if rng.random() < self.loss:
            self.stats.dropped += 1
            return
        delay = rng.uniform(0.0, self.max_delay)
        if self.onset_delays and datagram.is_rtp:
            ssrc, index = self._spurt
            if datagram.ssrc != ssrc or datagram.arrival - self._last_arrival > 0.1:
                ssrc, index = datagram.ssrc, 0
            self._spurt = (ssrc, index + 1)
            self._last_arrival = datagram.arrival
            if index < len(self.onset_delays):
                delay = self.onset_delays[index]
        self.stats.delays.append(delay)
        due = datagram.arrival + delay
        entry = _Entry(due, next(self._order), data, datagram)
        with self._wake:
            # Packets held back go right after this one (or later if their own delay is longer).
            for held in self._held:
                if held.alive:
                    held.alive = False
                    heapq.heappush(
                        self._heap,
                        _Entry(
                            max(held.natural_due, due + 0.0002),
                            next(self._order),
                            held.data,
                            held.origin,
                        ),
                    )
            self._held.clear()
            if self.reorder and rng.random() < self.reorder:
                self.stats.reordered += 1
                # Held until the next datagram; sent anyway after `hold_timeout`.
                entry.natural_due = due
                entry.due = due + self.hold_timeout
                self._held.append(entry)
            heapq.heappush(self._heap, entry)
            self._wake.notify()

    def _dtx(self, datagram: Datagram) -> bytes:
        ssrc, timestamp = datagram.ssrc, datagram.timestamp
        if self._dtx_origin is None:
            self._dtx_origin = datagram.arrival
        marker = False
        if self._dtx_segment is None or self._dtx_segment[0] != ssrc:
            # A new talkspurt: its timestamps start where the real pause says.
            elapsed = round((datagram.arrival - self._dtx_origin) * _RTP_RATE)
            self._dtx_segment = (ssrc, timestamp, (1000 + elapsed) % (1 << 32))
            marker = True
        _, first_ts, new_first = self._dtx_segment
        new_ts = (new_first + (timestamp - first_ts)) % (1 << 32)
        data = bytearray(datagram.data)
        if marker:
            data[1] |= 0x80
        struct.pack_into("!HII", data, 2, self._dtx_sequence, new_ts, self._dtx_ssrc)
        self._dtx_sequence = (self._dtx_sequence + 1) & 0xFFFF
        return bytes(data)

    # ---- forwarding ----------------------------------------------------------------

    def _send_loop(self) -> None:
        self._boost()
        while True:
            with self._wake:
                while not self._stopping:
                    while self._heap and not self._heap[0].alive:
                        heapq.heappop(self._heap)
                    if self._heap:
                        wait = self._heap[0].due - time.monotonic()
                        if wait <= 0:
                            break
                    else:
                        wait = 0.1
                    # A new, earlier packet notifies and the loop re-evaluates.
                    self._wake.wait(min(wait, 0.1))
                if self._stopping:
                    return
                entry = heapq.heappop(self._heap)
                if any(held is entry for held in self._held):
                    self._held = [held for held in self._held if held is not entry]
                    entry.alive = False
            try:
                self.forward.sendto(entry.data, self.target)
            except OSError:
                continue
            sent = time.monotonic()
            self.stats.lateness.append(sent - entry.due)
            assert entry.origin is not None
            self.stats.sent.append(Forwarded(entry.due, sent, entry.data, entry.origin))
            self.stats.forwarded += 1

    # ---- what the relay saw ----------------------------------------------------------

    def phone_streams(self) -> dict[int, list[Datagram]]:
        """The phone's RTP packets by (original) SSRC, in arrival order."""
        streams: dict[int, list[Datagram]] = {}
        for datagram in self.from_phone:
            if datagram.is_rtp:
                streams.setdefault(datagram.ssrc, []).append(datagram)
        return streams

    def first_arrival(self, ssrc: int) -> float | None:
        for datagram in self.from_phone:
            if datagram.is_rtp and datagram.ssrc == ssrc:
                return datagram.arrival
        return None

    def wait_first_arrival(self, ssrc: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.first_arrival(ssrc)
            if found is not None:
                return found
            time.sleep(0.002)
        raise TimeoutError(f"no RTP with SSRC {ssrc:#x} reached the relay in {timeout} s")

    def service_count(self) -> int:
        return len(self.from_service)

    def wait_service_packets(self, after: int, timeout: float) -> Datagram:
        """The first datagram the service sent after the first `after` ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.from_service) > after:
                return self.from_service[after]
            time.sleep(0.002)
        raise TimeoutError(f"the service sent nothing to the relay in {timeout} s")


def stream_start(packets: list[Datagram], rate: int = _RTP_RATE) -> float:
    """When the stream's first sample was sent, from all its packets.

    Each packet k says "sample (ts_k − ts_0) left no earlier than arrival_k"; a
    sender paces late, never early, so the earliest of arrival_k − (ts_k − ts_0)/rate
    is the moment of sample 0 (FFmpeg's `-re` pacing drifts up to ~10 ms late in a
    sawtooth, and the first packet may be a little late too).
    """
    first_ts = packets[0].timestamp
    return min(
        p.arrival - (((p.timestamp - first_ts + (1 << 31)) % (1 << 32)) - (1 << 31)) / rate
        for p in packets
    )
