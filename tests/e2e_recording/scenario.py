"""The dialog of a recording timing test: FFmpeg as the phone, the service's prompts.

Times (all `time.monotonic()`, the clock the service uses too) relative to the
StartRecording call:

    caller-A  ~0.3 s   phone speaks
    bot-P1    A + 0.4  prompt, in the pause after A
    caller-B  P1 + 0.5 phone speaks again ...
    bot-P2    B + 1.0  ... and the prompt starts while the caller still talks (overlap)
    caller-C  P2 + 0.4 phone speaks after the prompt
    Stop      C + 0.4

The phone behaves in one of three ways (`Case.phone`):
- "restart": one FFmpeg per caller segment (new SSRC, sequence and timestamp
  origin each time, as a phone that restarts its stream after silence);
- "dtx": the same FFmpeg runs, turned by the relay into one continuous stream
  (one SSRC, timestamps advancing across the pauses, marker on each talkspurt);
- "continuous": one FFmpeg sends one WAV that has digital silence between the
  segments (the silence travels as audio).
All of it reaches the service through the relay's single forwarding socket.

`Case.codec` other than PCMU: the call is negotiated first (`NegotiateSdp` with
an offer naming that codec and the relay's forwarding socket, as the phone's
SIP client would send), and FFmpeg speaks that codec.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from tests.e2e.phone import CODECS, sdp_text
from tests.e2e_recording.relay import ImpairmentRelay, stream_start
from tests.e2e_recording.service import ServiceProcess
from tests.e2e_recording.speech import RATE, Speech, write_wav

CALLER = ("caller-A", "caller-B", "caller-C")
BOT = ("bot-P1", "bot-P2")
LEAD_IN = 0.3
GAP_BEFORE_PROMPT = 0.4
GAP_AFTER_PROMPT = 0.5
OVERLAP_AFTER = 1.0
GAP_AFTER_OVERLAP = 0.4
TAIL = 0.4
# A delay spike at the start of every talkspurt, draining by 8 ms a packet.
ONSET_SPIKE = (0.050, 0.042, 0.034, 0.026, 0.018, 0.010, 0.002)


@dataclass(frozen=True)
class Case:
    channels: int
    rate: int
    fmt: str
    impaired: bool
    phone: str
    seed: int
    onset_spike: bool = False
    codec: str = "PCMU"  # a `tests.e2e.phone.CODECS` name; the dtx rewrite assumes 8 kHz

    @property
    def id(self) -> str:
        net = "onset-spike" if self.onset_spike else "impaired" if self.impaired else "clean"
        prefix = "" if self.codec == "PCMU" else f"{self.codec}-"
        return f"{prefix}{self.channels}ch-{self.rate}-{self.fmt}-{net}-{self.phone}"

    @property
    def clock_rate(self) -> int:
        """The RTP clock of the call (timestamps → seconds)."""
        return CODECS[self.codec].clock_rate

    def relay_settings(self) -> dict[str, object]:
        if self.onset_spike:
            # Only the spike (and 0–2 ms of jitter): the outcome does not depend on luck.
            return {"max_delay": 0.002, "loss": 0.0, "reorder": 0.0, "onset_delays": ONSET_SPIKE}
        if self.impaired:
            return {"max_delay": 0.060, "loss": 0.05, "reorder": 0.10}
        return {"max_delay": 0.0, "loss": 0.0, "reorder": 0.0}

    @property
    def tolerance(self) -> float:
        """Timing tolerance of a source (seconds): 20 ms with impairment, 10 ms without."""
        return 0.020 if self.impaired else 0.010


@dataclass
class Run:
    case: Case
    relay: ImpairmentRelay
    recording: Path
    start_call: tuple[float, float] = (0.0, 0.0)
    stop_call: tuple[float, float] = (0.0, 0.0)
    duration_ms: int = 0
    recording_uri: str = ""
    # Caller segments: true start (monotonic) of each; SSRC of each FFmpeg run.
    caller_starts: dict[str, float] = field(default_factory=dict)
    caller_first_packet: dict[str, float] = field(default_factory=dict)
    ssrcs: dict[str, int] = field(default_factory=dict)
    continuous_offsets: dict[str, float] = field(default_factory=dict)
    # Prompts: when PlayAudio was called and answered; the first packet's arrival.
    play_calls: dict[str, tuple[float, float]] = field(default_factory=dict)
    bot_first_packet: dict[str, float] = field(default_factory=dict)
    bot_starts: dict[str, float] = field(default_factory=dict)
    bot_packets: dict[str, int] = field(default_factory=dict)
    metrics_before: dict[str, float] = field(default_factory=dict)
    metrics_after: dict[str, float] = field(default_factory=dict)
    ffmpeg_errors: list[str] = field(default_factory=list)

    @property
    def wall_seconds(self) -> float:
        """Wall-clock recording time: StartRecording sent → StopRecording sent."""
        return self.stop_call[0] - self.start_call[0]


def ffmpeg_phone(wav: Path, port: int, ssrc: int, codec: str = "PCMU") -> subprocess.Popen[bytes]:
    """FFmpeg sending `wav` as RTP in `codec` at exactly one 20 ms packet per 20 ms."""
    spec = CODECS[codec]
    return subprocess.Popen(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"amovie={wav.name},asetnsamples=n=160",
            "-c:a",
            spec.encoder,
            "-ar",
            str(spec.rate),
            "-ac",
            "1",
            "-f",
            "rtp",
            "-payload_type",
            str(spec.payload_type),
            "-ssrc",
            str(ssrc),
            "-rtpflags",
            "skip_rtcp",
            f"rtp://127.0.0.1:{port}?rtcpport={port}",
        ],
        cwd=wav.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def scrape_metrics(url: str) -> dict[str, float]:
    """The service's Prometheus counters as {name{labels}: value}."""
    values: dict[str, float] = {}
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    continue
    return values


class Dialog:
    """Runs one case against the service and records every moment that matters."""

    def __init__(
        self, service: ServiceProcess, speech: dict[str, Speech], case: Case, folder: Path
    ) -> None:
        self.service = service
        self.speech = speech
        self.case = case
        self.folder = folder
        self.stub = service.stub
        self.port = 0
        self.run: Run | None = None

    def execute(self) -> Run:
        case, stub = self.case, self.stub
        self.port = stub.AllocatePort(pb.AllocatePortRequest(call_id=f"e2e-{case.id}")).rtp_port
        relay = ImpairmentRelay(
            ("127.0.0.1", self.port),
            seed=case.seed,
            rewrite="dtx" if case.phone == "dtx" else None,
            **case.relay_settings(),  # type: ignore[arg-type]
        )
        run = self.run = Run(case, relay, self.folder / f"{case.id}.{case.fmt}")
        relay.start()
        try:
            if case.codec != "PCMU":
                self._negotiate(relay.forward_address[1])
            run.metrics_before = scrape_metrics(self.service.metrics_url)
            started = time.monotonic()
            stub.StartRecording(
                pb.StartRecordingRequest(
                    server_rtp_port=self.port,
                    output_uri=run.recording.as_uri(),
                    sample_rate=case.rate,
                    format=case.fmt,
                    channels=case.channels,
                    call_id=f"e2e-{case.id}",
                )
            )
            run.start_call = (started, time.monotonic())
            if case.phone == "continuous":
                self._continuous_phone()
            else:
                self._segmented_phone()
            stopping = time.monotonic()
            response = stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=self.port))
            run.stop_call = (stopping, time.monotonic())
            run.duration_ms = response.duration_ms
            run.recording_uri = response.recording_uri
            run.metrics_after = scrape_metrics(self.service.metrics_url)
        finally:
            try:
                stub.ReleasePort(pb.ReleasePortRequest(rtp_port=self.port))
            finally:
                relay.close()
        self._truth()
        return run

    def _negotiate(self, phone_port: int) -> None:
        """The phone's offer: `case.codec` at the address the service receives from."""
        spec = CODECS[self.case.codec]
        reply = self.stub.NegotiateSdp(
            pb.NegotiateSdpRequest(
                server_rtp_port=self.port,
                remote_sdp=sdp_text(phone_port, spec.payload_type, spec.rtpmap),
                type=pb.SDP_TYPE_OFFER,
            )
        )
        agreed = (reply.codec.lower(), reply.payload_type, reply.clock_rate)
        assert agreed == (self.case.codec.lower(), spec.payload_type, spec.clock_rate), reply

    # ---- the phone -----------------------------------------------------------------

    def _talk(self, name: str, wav: Path, ssrc: int) -> tuple[subprocess.Popen[bytes], float]:
        assert self.run is not None
        self.run.ssrcs[name] = ssrc
        process = ffmpeg_phone(wav, self.run.relay.port, ssrc, self.case.codec)
        try:
            first = self.run.relay.wait_first_arrival(ssrc, timeout=5.0)
        except TimeoutError:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"FFmpeg sent nothing for {name}: {err.decode()}") from None
        return process, first

    def _finish(self, process: subprocess.Popen[bytes], seconds: float) -> None:
        _, err = process.communicate(timeout=seconds + 10)
        if process.returncode != 0 or err.strip():
            assert self.run is not None
            self.run.ffmpeg_errors.append(err.decode(errors="replace"))
        assert process.returncode == 0, f"FFmpeg failed: {err.decode(errors='replace')}"

    def _play(self, name: str) -> float:
        """PlayAudio; returns the arrival of the prompt's first packet at the relay."""
        assert self.run is not None
        relay = self.run.relay
        before = relay.service_count()
        called = time.monotonic()
        self.stub.PlayAudio(
            pb.PlayAudioRequest(audio_uri=f"file://prompts/{name}.wav", server_rtp_port=self.port)
        )
        self.run.play_calls[name] = (called, time.monotonic())
        first = relay.wait_service_packets(before, timeout=2.0).arrival
        self.run.bot_first_packet[name] = first
        return first

    def _segmented_phone(self) -> None:
        assert self.run is not None
        sp = self.speech
        a, b, c = (sp[name] for name in CALLER)
        p1, p2 = (sp[name] for name in BOT)
        sleep_until(self.run.start_call[1] + LEAD_IN)
        process, a_first = self._talk(a.name, a.path, 0x10001)
        self._finish(process, a.seconds)
        sleep_until(a_first + a.seconds + GAP_BEFORE_PROMPT)
        p1_first = self._play(p1.name)
        sleep_until(p1_first + p1.seconds + GAP_AFTER_PROMPT)
        process, b_first = self._talk(b.name, b.path, 0x10002)
        sleep_until(b_first + OVERLAP_AFTER)
        p2_first = self._play(p2.name)
        self._finish(process, b.seconds)
        sleep_until(max(p2_first + p2.seconds, b_first + b.seconds) + GAP_AFTER_OVERLAP)
        process, c_first = self._talk(c.name, c.path, 0x10003)
        self._finish(process, c.seconds)
        sleep_until(c_first + c.seconds + TAIL)

    def _continuous_phone(self) -> None:
        assert self.run is not None
        sp = self.speech
        a, b, c = (sp[name] for name in CALLER)
        p1, p2 = (sp[name] for name in BOT)
        # Where each segment sits in the one WAV the phone sends (silence between).
        offsets = {a.name: 0.0}
        offsets[b.name] = a.seconds + GAP_BEFORE_PROMPT + p1.seconds + GAP_AFTER_PROMPT + 0.05
        offsets[c.name] = offsets[b.name] + max(OVERLAP_AFTER + p2.seconds, b.seconds)
        offsets[c.name] += GAP_AFTER_OVERLAP + 0.05
        total = offsets[c.name] + c.seconds
        audio = np.zeros(round(total * RATE) + 160, dtype=np.int16)
        for name, offset in offsets.items():
            start = round(offset * RATE)
            audio[start : start + len(sp[name].samples)] = sp[name].samples
        audio = audio[: len(audio) // 160 * 160]
        wav = self.folder / "continuous-phone.wav"
        write_wav(wav, audio)
        self.run.continuous_offsets = offsets
        sleep_until(self.run.start_call[1] + LEAD_IN)
        process, first = self._talk("phone", wav, 0x10000)
        sleep_until(first + a.seconds + GAP_BEFORE_PROMPT)
        self._play(p1.name)
        sleep_until(first + offsets[b.name] + OVERLAP_AFTER)
        self._play(p2.name)
        self._finish(process, total)
        sleep_until(first + total + TAIL)

    # ---- what really happened, from the relay's records ------------------------------

    def _truth(self) -> None:
        run = self.run
        assert run is not None
        # The packets FFmpeg flushes at the end of its input left early: they would date
        # the segment's start too early (by ~17 ms for Opus).
        flushed = CODECS[run.case.codec].flushed
        streams = {
            ssrc: packets[: len(packets) - flushed]
            for ssrc, packets in run.relay.phone_streams().items()
        }
        if run.case.phone == "continuous":
            packets = streams[run.ssrcs["phone"]]
            origin = stream_start(packets, run.case.clock_rate)
            for name, offset in run.continuous_offsets.items():
                run.caller_starts[name] = origin + offset
                run.caller_first_packet[name] = packets[0].arrival + offset
        else:
            for name in CALLER:
                packets = streams[run.ssrcs[name]]
                run.caller_starts[name] = stream_start(packets, run.case.clock_rate)
                run.caller_first_packet[name] = packets[0].arrival
        # The bot's talkspurts: the service sets the marker bit on the first packet
        # after silence; the n-th talkspurt is the n-th prompt.
        spurts: list[list] = []
        for datagram in run.relay.from_service:
            if not datagram.is_rtp:
                continue
            if datagram.marker or not spurts:
                spurts.append([])
            spurts[-1].append(datagram)
        assert len(spurts) == len(BOT), (
            f"expected {len(BOT)} prompts (talkspurts) from the service, got {len(spurts)} "
            f"of {[len(s) for s in spurts]} packets"
        )
        for name, packets in zip(BOT, spurts, strict=True):
            run.bot_starts[name] = stream_start(packets, run.case.clock_rate)
            run.bot_packets[name] = len(packets)
