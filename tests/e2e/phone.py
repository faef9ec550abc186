"""The phone of the end-to-end tests: FFmpeg command lines, an RTP socket, G.711, statistics.

Everything here is independent of the service's own code (RTP parsing and G.711
are re-implemented from the RFC / ITU-T formulas), so a bug shared by the
service's packetiser and the test's parser cannot hide itself.
"""

from __future__ import annotations

import asyncio
import io
import socket
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soxr

# Linux values (asm-generic); Python's socket module does not export them.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@qq")
_RTP_HEADER = struct.Struct("!BBHII")


class PhoneCodec(NamedTuple):
    """How FFmpeg speaks a codec: encoder, payload type, SDP rtpmap, audio rate, raw muxer."""

    encoder: str
    payload_type: int  # static, or the dynamic one FFmpeg picks by default
    rtpmap: str
    rate: int  # audio sample rate (G.722: 16 kHz on an 8 kHz RTP clock)
    raw_format: str | None = None
    # Packets FFmpeg sends unpaced at the end of its input (libopus flushes its lookahead).
    flushed: int = 0

    @property
    def clock_rate(self) -> int:
        return int(self.rtpmap.split("/")[1])


CODECS = {
    "PCMU": PhoneCodec("pcm_mulaw", 0, "PCMU/8000", 8000, "mulaw"),
    "PCMA": PhoneCodec("pcm_alaw", 8, "PCMA/8000", 8000, "alaw"),
    "G722": PhoneCodec("g722", 9, "G722/8000", 16000),
    "opus": PhoneCodec("libopus", 97, "opus/48000/2", 48000, flushed=1),
}


# ---- G.711 (ITU-T G.711 expansion, written from the standard) ----------------------------


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return np.where(sign, magnitude, -magnitude).astype(np.int16)


ULAW = _ulaw_table()
ALAW = _alaw_table()


def g711_decode(payload: bytes, payload_type: int) -> np.ndarray:
    table = {0: ULAW, 8: ALAW}[payload_type]
    return table[np.frombuffer(payload, dtype=np.uint8)]


# ---- audio files and references ------------------------------------------------------------


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono int16 samples (first channel) and rate of a 16-bit WAV."""
    with wave.open(str(path), "rb") as handle:
        assert handle.getsampwidth() == 2, f"{path}: 16-bit WAV expected"
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return data.reshape(-1, handle.getnchannels())[:, 0].copy(), handle.getframerate()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A 16-bit WAV of `samples` shaped (frames,) or (frames, channels)."""
    frames = samples.reshape(len(samples), -1)
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(frames.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames.astype("<i2").tobytes())
    return out.getvalue()


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """int16 → float64 at `to_rate` (soxr VHQ): the reference a received signal is held to."""
    audio = samples.astype(np.float64)
    if from_rate == to_rate:
        return audio
    return soxr.resample(audio, from_rate, to_rate, quality="VHQ")


# ---- FFmpeg ---------------------------------------------------------------------------------


def lavfi_source(wav: Path, start: float | None = None, end: float | None = None) -> str:
    """An `amovie` source sending 160-sample frames (true 20 ms pacing under `-re`).

    `wav` must be a plain path (no ':', ',', ';', quotes): lavfi syntax is not escaped here.
    """
    assert not set(str(wav)) & set(":,;'\"[]\\="), f"copy {wav} to a plain path first"
    chain = [f"amovie={wav}"]
    if start is not None or end is not None:
        bounds = [f"start={start}"] if start is not None else []
        bounds += [f"end={end}"] if end is not None else []
        chain += ["atrim=" + ":".join(bounds), "asetpts=PTS-STARTPTS"]
    chain.append("asetnsamples=n=160")
    return ",".join(chain)


def ffmpeg_rtp_sender(
    ffmpeg: str,
    source: str,
    port: int,
    codec: str,
    host: str = "127.0.0.1",
    *,
    local_port: int | None = None,
    sdp_file: Path | None = None,
) -> list[str]:
    """FFmpeg sending `source` as RTP in `codec` (a `CODECS` name) to `host:port`.

    `local_port`: the port it sends from (a phone's own RTP port, RTCP one above);
    `sdp_file`: where FFmpeg writes the SDP describing its stream.
    """
    spec = CODECS[codec]
    url = f"rtp://{host}:{port}" + (f"?localrtpport={local_port}" if local_port else "")
    sdp = ["-sdp_file", str(sdp_file)] if sdp_file is not None else []
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", source,
        "-c:a", spec.encoder, "-ar", str(spec.rate), "-ac", "1",
        *sdp, "-f", "rtp", url,
    ]  # fmt: skip


def ffmpeg_rtp_receiver(ffmpeg: str, sdp: Path, out: Path, seconds: float) -> list[str]:
    """Receive RTP described by `sdp` into a WAV; ends 1 s after the last packet."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        "-protocol_whitelist", "file,udp,rtp", "-listen_timeout", "1",
        "-i", str(sdp), "-t", str(seconds), str(out),
    ]  # fmt: skip


def spawn(command: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a child with Python's subprocess (vfork/posix_spawn: no fork handlers run).

    Not `asyncio.create_subprocess_exec`: under uvloop that forks, and gRPC's fork
    handlers make about 2 % of the children die with SIGSEGV before they exec.
    """
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def finish(process: subprocess.Popen[bytes], limit: float) -> tuple[int, str]:
    """Wait for `process` (killed after `limit` s) off the event loop: status and stderr."""
    try:
        _, errors = await asyncio.to_thread(process.communicate, timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        _, errors = await asyncio.to_thread(process.communicate)
    return process.returncode, errors.decode(errors="replace")


def sdp_text(
    port: int,
    payload_type: int = 0,
    name: str = "PCMU",
    extra: str = "",
    telephone_event: int | None = None,
) -> str:
    """A one-codec audio SDP on 127.0.0.1; `name` is `PCMU` (…/8000) or a full rtpmap.

    `telephone_event`: also offer RFC 4733 events with that payload type, at the codec's clock.
    """
    rtpmap = name if "/" in name else f"{name}/8000"
    formats, events = f"{payload_type}", ""
    if telephone_event is not None:
        formats += f" {telephone_event}"
        clock = rtpmap.split("/")[1]
        events = (
            f"a=rtpmap:{telephone_event} telephone-event/{clock}\na=fmtp:{telephone_event} 0-16\n"
        )
    return (
        "v=0\n"
        "o=- 0 0 IN IP4 127.0.0.1\n"
        "s=x\n"
        "c=IN IP4 127.0.0.1\n"
        "t=0 0\n"
        f"m=audio {port} RTP/AVP {formats}\n"
        f"a=rtpmap:{payload_type} {rtpmap}\n"
        f"{events}{extra}"
    )


def write_sdp(path: Path, port: int, payload_type: int = 0, name: str = "PCMU") -> Path:
    path.write_text(sdp_text(port, payload_type, name))
    return path


def encode_g711(ffmpeg: str, wav: Path, codec: str, out: Path) -> bytes:
    """The WAV encoded to raw G.711 by FFmpeg (an encoder that is not the service's)."""
    encoder, raw_format = CODECS[codec].encoder, CODECS[codec].raw_format
    subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav),
         "-c:a", encoder, "-ar", "8000", "-ac", "1", "-f", raw_format, str(out)],
        check=True,
        timeout=30,
    )  # fmt: skip
    return out.read_bytes()


def udp_port_bound(port: int) -> bool:
    """Whether some process has a UDP socket bound to `port` (IPv4, from /proc)."""
    needle = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            text = Path(table).read_text()
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 1 and (fields[1] + " ").endswith(needle):
                return True
    return False


def wait_udp_bound(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not udp_port_bound(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing bound UDP port {port} within {timeout} s")
        time.sleep(0.01)


def free_udp_port(even: bool = False) -> int:
    """A loopback UDP port free right now (even, when FFmpeg wants RTP on it and RTCP above)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if even and (port % 2 or port >= 65535):
            continue
        if not even:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free UDP port pair")


# ---- the RTP socket -------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    kernel_time: float  # SO_TIMESTAMPNS receive time (CLOCK_REALTIME), seconds
    version: int
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    source: tuple[str, int]


def parse_rtp(datagram: bytes, kernel_time: float, source: tuple[str, int]) -> Packet | None:
    """Fixed RTP header (RFC 3550 §5.1) with CSRCs, extension and padding; None if not RTP."""
    if len(datagram) < 12:
        return None
    first, second, sequence, timestamp, ssrc = _RTP_HEADER.unpack_from(datagram)
    start = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        (words,) = struct.unpack_from("!H", datagram, start + 2)
        start += 4 + 4 * words
    end = len(datagram) - (datagram[-1] if first & 0x20 else 0)
    if 72 <= second <= 76:  # RTCP SR/RR/SDES/BYE/APP on a shared port
        return None
    return Packet(
        kernel_time,
        first >> 6,
        second & 0x7F,
        bool(second & 0x80),
        sequence,
        timestamp,
        ssrc,
        datagram[start:end],
        source,
    )


def build_rtp(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool
) -> bytes:
    second = payload_type | (0x80 if marker else 0)
    return _RTP_HEADER.pack(0x80, second, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


@dataclass
class RtpPhone:
    """A blocking UDP socket on loopback, read by a thread; kernel receive timestamps.

    It can also send (from the same socket, so symmetric RTP latches to it).
    """

    sock: socket.socket = field(init=False)
    packets: list[Packet] = field(default_factory=list)
    other: list[bytes] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RtpPhone:
        self._thread = threading.Thread(target=self._run, name="rtp-phone", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        while not self._stop.is_set():
            try:
                data, ancdata, _flags, source = self.sock.recvmsg(2048, ancillary)
            except TimeoutError:
                continue
            except OSError:
                return
            kernel = time.time()
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                    kernel = seconds + nanoseconds / 1e9
            packet = parse_rtp(data, kernel, source)
            with self._lock:
                if packet is None:
                    self.other.append(data)
                else:
                    self.packets.append(packet)

    def snapshot(self) -> list[Packet]:
        with self._lock:
            return list(self.packets)

    def wait_for(self, count: int, timeout: float) -> list[Packet]:
        deadline = time.monotonic() + timeout
        while len(self.packets) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.snapshot()

    def wait_quiet(self, quiet: float, timeout: float) -> list[Packet]:
        """Wait until packets came and then nothing for `quiet` seconds (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            packets = self.snapshot()
            if packets and time.time() - packets[-1].kernel_time > quiet:
                return packets
            time.sleep(0.02)
        return self.snapshot()

    def send_paced(
        self,
        payload: bytes,
        port: int,
        *,
        payload_type: int = 0,
        ssrc: int = 0x5EED1234,
        first_sequence: int = 40000,
        first_timestamp: int = 123456,
        stop_after: float | None = None,
    ) -> int:
        """Send `payload` (G.711 bytes) as 20 ms packets against absolute deadlines."""
        frames = len(payload) // 160
        if stop_after is not None:
            frames = min(frames, int(stop_after / 0.02))
        start = time.monotonic()
        for index in range(frames):
            delay = start + index * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            packet = build_rtp(
                payload_type,
                first_sequence + index,
                first_timestamp + 160 * index,
                ssrc,
                payload[160 * index : 160 * (index + 1)],
                marker=index == 0,
            )
            self.sock.sendto(packet, ("127.0.0.1", port))
        return frames


def decode_packets(packets: Sequence[Packet]) -> np.ndarray:
    ordered = sorted(packets, key=lambda p: p.sequence)
    return np.concatenate([g711_decode(p.payload, p.payload_type) for p in ordered])


# ---- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pacing:
    count: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    min_ms: float

    def __str__(self) -> str:
        return (
            f"{self.count} intervals: mean {self.mean_ms:.3f} ms, p50 {self.p50_ms:.3f}, "
            f"p99 {self.p99_ms:.3f}, min {self.min_ms:.3f}, max {self.max_ms:.3f}"
        )


def pacing(times: Sequence[float]) -> Pacing:
    intervals = np.diff(np.asarray(times, dtype=np.float64)) * 1000
    return Pacing(
        len(intervals),
        float(intervals.mean()),
        float(np.percentile(intervals, 50)),
        float(np.percentile(intervals, 99)),
        float(intervals.max()),
        float(intervals.min()),
    )
