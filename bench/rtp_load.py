"""The RTP side of the load: one process, one loop, a few sockets shared by all calls.

Every call sends the bundled speech, looped, at 50 packets/s in the run's codec
(PCMU unless `--codec`: 20 ms payloads encoded once at start, see
`bench.codecs`; timestamps step by the codec's RTP clock) from one of the
shared sockets to its own service port, and receives the prompt the service
plays back on the same socket (the service latches to the first packet's
source, which is also the `rtp_target_addr` the control process gave and the
`m=` port of the offer). Only the RTP header of what arrives is read, so the
figures do not depend on the codec; its payload type must be the agreed one.
The 20 ms period is cut into `SLOTS` slots; call i sends in slot i mod SLOTS,
at the absolute deadline t_ramp + k·1 ms, so sends are spread over the period
and never drift.

No task or thread per packet: the loop sleeps to the next slot deadline
(`time.sleep` has sub-millisecond precision, epoll would round to 1 ms), sends
that slot's packets, then drains every socket. Arrival times come from the
kernel (SO_TIMESTAMPNS, stamped when the service's `sendto` delivered the
datagram on loopback), so the inter-arrival figures do not include this
process's own scheduling delay, which is reported separately as send lateness.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import time
from array import array
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

import numpy as np

from bench.plan import Plan, SharedInt, SharedInts

SLOTS = 20
SLOT_S = 0.020 / SLOTS
HEADER_BYTES = 12  # the service sends no CSRC and no extension
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; missing from `socket`
ANCILLARY_SIZE = socket.CMSG_SPACE(16)  # one struct timespec
SOCKET_BUFFER = 4 * 1024 * 1024
_HEADER = struct.Struct("!BBHII")
_TIMESPEC = struct.Struct("qq")


def open_sockets(count: int) -> list[socket.socket]:
    """`count` non-blocking loopback UDP sockets with kernel receive timestamps."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def pin_to(cpu: int | None) -> None:
    if cpu is not None and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def summarise_us(values: array[int]) -> dict[str, float | int]:
    """p50/p99/p99.9/max/mean of microsecond samples (exact, not bucketed)."""
    if not values:
        return {"count": 0}
    data = np.frombuffer(values, dtype=np.int64)
    p50, p99, p999 = np.percentile(data, [50, 99, 99.9])
    return {
        "count": len(values),
        "p50_us": float(p50),
        "p99_us": float(p99),
        "p999_us": float(p999),
        "max_us": int(data.max()),
        "mean_us": float(data.mean()),
    }


class RtpLoad:
    """State of all calls; `run` is the loop. Lists indexed by call, for speed."""

    def __init__(self, plan: Plan, sockets: list[socket.socket]) -> None:
        self.plan = plan
        self.sockets = sockets
        n = plan.calls
        self.frames = plan.codec.speech_payloads()
        self.payload_type = plan.codec.payload_type
        self.ts_step = plan.codec.timestamp_step
        # Send state.
        self.dest: list[tuple[str, int]] = [("127.0.0.1", 0)] * n
        self.sock_of = [sockets[i % len(sockets)] for i in range(n)]
        self.seq = [random.getrandbits(16) for _ in range(n)]
        self.ts = [random.getrandbits(32) for _ in range(n)]
        self.ssrc = [random.getrandbits(32) for _ in range(n)]
        self.pos = [(i * 37) % len(self.frames) for i in range(n)]
        self.mark = [0x80 | self.payload_type] * n  # second header byte: marker on the first
        self.members: list[list[int]] = [[] for _ in range(SLOTS)]
        self.activated = 0
        self.sent = 0
        self.send_errors = 0
        # Receive state: extended sequence numbers and counts of the prompt streams.
        self.call_of_port: dict[int, int] = {}
        self.ext = [-1] * n
        self.first = [0] * n
        self.got = [0] * n
        self.last_us = [0] * n
        self.duplicates = 0
        self.reordered = 0
        self.unknown = 0
        self.no_timestamp = 0
        self.wrong_payload_type: Counter[int] = Counter()
        self.first_payload_bytes: Counter[int] = Counter()  # of each call's first prompt packet
        self.gaps: array[int] = array("q")
        self.lateness: array[int] = array("q")
        self.in_window = False
        self.marks: dict[str, Any] = {}

    def activate(self, ports: SharedInts, ready: int) -> None:
        while self.activated < ready:
            i = self.activated
            self.activated += 1
            port = ports[i]
            if port <= 0:  # the control process failed to set this call up
                continue
            self.dest[i] = ("127.0.0.1", port)
            self.call_of_port[port] = i
            self.members[i % SLOTS].append(i)

    def send_slot(self, slot: int) -> None:
        pack, frames, nframes = _HEADER.pack, self.frames, len(self.frames)
        seq, ts, ssrc, pos, mark = self.seq, self.ts, self.ssrc, self.pos, self.mark
        dest, sock_of = self.dest, self.sock_of
        pt, step = self.payload_type, self.ts_step
        sent = 0
        for i in self.members[slot]:
            s = seq[i]
            packet = pack(0x80, mark[i], s, ts[i], ssrc[i]) + frames[pos[i]]
            try:
                sock_of[i].sendto(packet, dest[i])
                sent += 1
            except OSError:
                self.send_errors += 1
            mark[i] = pt
            seq[i] = (s + 1) & 0xFFFF
            ts[i] = (ts[i] + step) & 0xFFFFFFFF
            pos[i] = (pos[i] + 1) % nframes
        self.sent += sent

    def drain(self, buf: bytearray) -> None:
        bufs = [buf]
        call_of_port, ext, first, got, last_us = (
            self.call_of_port,
            self.ext,
            self.first,
            self.got,
            self.last_us,
        )
        gaps, unpack = self.gaps, _TIMESPEC.unpack
        in_window, payload_type = self.in_window, self.payload_type
        for sock in self.sockets:
            recv = sock.recvmsg_into
            while True:
                try:
                    size, ancillary, _flags, addr = recv(bufs, ANCILLARY_SIZE)
                except BlockingIOError:
                    break
                call = call_of_port.get(addr[1])
                if call is None:
                    self.unknown += 1
                    continue
                if ancillary:
                    sec, nsec = unpack(ancillary[0][2])
                    t_us = sec * 1_000_000 + nsec // 1000
                else:
                    self.no_timestamp += 1
                    t_us = time.time_ns() // 1000
                if buf[1] & 0x7F != payload_type:
                    self.wrong_payload_type[buf[1] & 0x7F] += 1
                s = (buf[2] << 8) | buf[3]
                e = ext[call]
                if e < 0:
                    self.first_payload_bytes[size - HEADER_BYTES] += 1
                    ext[call] = first[call] = s
                    got[call] = 1
                    last_us[call] = t_us
                    continue
                d = (s - e) & 0xFFFF
                if d == 0:
                    self.duplicates += 1
                elif d < 0x8000:
                    ext[call] = e + d
                    got[call] += 1
                    if d == 1 and in_window:
                        gaps.append(t_us - last_us[call])
                    last_us[call] = t_us
                else:
                    self.reordered += 1
                    got[call] += 1

    def snapshot(self, name: str) -> None:
        self.marks[name] = (list(self.ext), list(self.got), self.sent, time.monotonic())

    def run(
        self,
        ports: SharedInts,
        ready: SharedInt,
        stop: Event,
    ) -> None:
        plan = self.plan
        buf = bytearray(2048)
        monotonic, sleep = time.monotonic, time.sleep
        slot = max(0, int((monotonic() - plan.t_ramp) / SLOT_S) + 1)
        phase = 0  # 0 before the window, 1 inside, 2 after
        while True:
            deadline = plan.t_ramp + slot * SLOT_S
            now = monotonic()
            if now < deadline:
                sleep(deadline - now)
                now = monotonic()
            if phase == 0 and now >= plan.t_window_start:
                phase, self.in_window = 1, True
                self.snapshot("window_start")
            elif phase == 1 and now >= plan.t_window_end:
                phase, self.in_window = 2, False
                self.snapshot("window_end")
            if deadline < plan.t_window_end:
                self.activate(ports, ready.value)
                if phase == 1:
                    self.lateness.append(int((now - deadline) * 1e6))
                self.send_slot(slot % SLOTS)
            self.drain(buf)
            slot += 1
            if slot % SLOTS == 0 and stop.is_set():
                break
        self.drain(buf)

    def results(self) -> dict[str, Any]:
        started = [i for i in range(self.plan.calls) if self.ext[i] >= 0]
        expected_total = sum(self.ext[i] - self.first[i] + 1 for i in started)
        received_total = sum(self.got[i] for i in started)
        window: dict[str, Any] = {}
        if "window_start" in self.marks and "window_end" in self.marks:
            ext_a, got_a, sent_a, _ = self.marks["window_start"]
            ext_b, got_b, sent_b, _ = self.marks["window_end"]
            live = [i for i in range(self.plan.calls) if ext_a[i] >= 0]
            expected = sum(ext_b[i] - ext_a[i] for i in live)
            received = sum(got_b[i] - got_a[i] for i in live)
            window = {
                "sent": sent_b - sent_a,
                "prompt_expected": expected,
                "prompt_received": received,
                "prompt_lost": max(0, expected - received),
                "calls_receiving": len(live),
            }
        return {
            "calls_activated": sum(len(m) for m in self.members),
            "sent_total": self.sent,
            "send_errors": self.send_errors,
            "prompt_expected_total": expected_total,
            "prompt_received_total": received_total,
            "prompt_lost_total": max(0, expected_total - received_total),
            "prompt_calls_silent": self.plan.calls - len(started),
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "unknown_source": self.unknown,
            "no_kernel_timestamp": self.no_timestamp,
            "payload_type": self.payload_type,
            "wrong_payload_type": dict(self.wrong_payload_type),
            "first_payload_bytes": dict(self.first_payload_bytes),
            "window": window,
            "interarrival": summarise_us(self.gaps),
            "send_lateness": summarise_us(self.lateness),
        }


def run_rtp_process(
    plan: Plan,
    sockets: list[socket.socket],
    ports: SharedInts,
    ready: SharedInt,
    stop: Event,
    results: Connection,
) -> None:
    """Entry point of the RTP process: run until `stop`, then send the results."""
    pin_to(plan.generator_cpu)
    load = RtpLoad(plan, sockets)
    try:
        load.run(ports, ready, stop)
        results.send(load.results())
    except Exception as exc:  # report, never hang the orchestrator
        results.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
