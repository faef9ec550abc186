"""Helpers for tests: a UDP peer that plays the phone, WAV reading, correlation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.media.codecs import Codec
from sentiric_media.media.rtp import build_rtp, parse_rtp


def require(*tools: str) -> None:
    """Fail (on CI) or skip when a command-line tool the test needs is not installed."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} not on PATH: apt-get install {' '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getsampwidth() == 2, "16-bit WAV expected"
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        channels = handle.getnchannels()
        return data.reshape(-1, channels)[:, 0].copy(), handle.getframerate()


def best_alignment(reference: np.ndarray, signal: np.ndarray) -> tuple[float, int]:
    """Highest normalised cross-correlation of `reference` within `signal`, and its lag.

    The lag is the sample index in `signal` where `reference` starts.
    """
    ref = reference.astype(np.float64)
    sig = signal.astype(np.float64)
    if len(sig) < len(ref):
        sig = np.concatenate((sig, np.zeros(len(ref) - len(sig))))
    size = 1 << int(np.ceil(np.log2(len(sig) + len(ref))))
    spectrum = np.fft.rfft(sig, size) * np.conj(np.fft.rfft(ref, size))
    raw = np.fft.irfft(spectrum, size)[: len(sig) - len(ref) + 1]
    window = np.concatenate(([0.0], np.cumsum(sig**2)))
    energy = window[len(ref) :] - window[: len(sig) - len(ref) + 1]
    norm = np.sqrt(np.maximum(energy, 1e-9) * np.sum(ref**2))
    score = raw / norm
    lag = int(np.argmax(score))
    return float(score[lag]), lag


@dataclass
class Received:
    arrival: float
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


@dataclass
class UdpPeer(asyncio.DatagramProtocol):
    """A loopback UDP endpoint standing in for the caller's phone."""

    packets: list[Received] = field(default_factory=list)
    raw: list[tuple[float, bytes]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> UdpPeer:
        peer = cls()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
        return peer

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    @property
    def address_text(self) -> str:
        host, port = self.address
        return f"{host}:{port}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        self.raw.append((now, data))
        with contextlib.suppress(ValueError):
            self.packets.append(Received(now, *parse_rtp(data)))

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_for_packets(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.packets) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def wait_quiet(self, quiet: float, timeout: float) -> None:
        """Wait until nothing arrived for `quiet` seconds (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.raw[-1][0] if self.raw else 0.0
            if self.raw and time.monotonic() - last > quiet:
                return
            await asyncio.sleep(0.02)

    def decoded(self, codec: Codec) -> np.ndarray:
        ordered = sorted(self.packets, key=lambda p: p.sequence)
        decoder = codec.format().new_decoder()
        return np.concatenate([decoder.decode(p.payload) for p in ordered])


async def send_rtp(
    peer: UdpPeer,
    port: int,
    pcm: np.ndarray,
    codec: Codec,
    *,
    ssrc: int = 0x1234ABCD,
    first_sequence: int = 1000,
    first_timestamp: int = 5000,
) -> None:
    """Send `pcm` as 20 ms RTP packets paced against absolute deadlines."""
    fmt = codec.format()
    frame, encoder = fmt.packet_samples, fmt.new_encoder()
    step = fmt.clock_rate * fmt.ptime // 1000  # RTP clock units per packet (G.722: 160)
    start = time.monotonic()
    for index in range(len(pcm) // frame):
        deadline = start + index * 0.02
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = pcm[index * frame : (index + 1) * frame]
        peer.send(
            build_rtp(
                fmt.payload_type,
                first_sequence + index,
                first_timestamp + index * step,
                ssrc,
                encoder.encode(chunk),
                marker=index == 0,
            ),
            port,
        )
