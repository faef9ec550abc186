"""The timeline of one load run, shared by the orchestrator and its two workers.

All moments are `time.monotonic()` values (CLOCK_MONOTONIC is system-wide on
Linux, so they mean the same instant in every process of the run):

    t_ramp ── ramp_s ──► ramp done ── settle ──► t_window_start ── duration ──► t_window_end
    calls i = 0..N-1 start at t_ramp + i·ramp_s/N        caller sends stop; ports are
                                                         released RELEASE_DELAY_S later, so a
                                                         lagging service still reads them all
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bench.codecs import CallCodec

RELEASE_DELAY_S = 1.0


class SharedInt(Protocol):
    """A `multiprocessing` RawValue("i")."""

    value: int


class SharedInts(Protocol):
    """A `multiprocessing` RawArray("i", n): call index → service port (0 = not set up)."""

    def __getitem__(self, index: int) -> int: ...
    def __setitem__(self, index: int, value: int) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What one run does and when."""

    run_id: str
    calls: int
    grpc_address: str
    prompt_uri: str
    targets: tuple[str, ...]  # "127.0.0.1:port" of the generator's receiving sockets
    t_ramp: float
    ramp_s: float
    t_window_start: float
    t_window_end: float
    record_audio: bool
    frame_ms: int
    record_rate: int = 16000
    generator_cpu: int | None = 1
    recording: bool = False  # StartRecording per call (even calls mono, odd stereo)
    events: bool = False  # one StreamEvents subscriber per call (voice activity runs on each)
    keywords: int = 0  # of those subscribers, how many also spot KEYWORDS (the first calls)
    barge_in: bool = False  # prompts interruptible, played again after each barge-in
    codec: CallCodec = field(default_factory=CallCodec)  # default: PCMU, no SDP

    @property
    def window_s(self) -> float:
        return self.t_window_end - self.t_window_start

    @property
    def t_release(self) -> float:
        return self.t_window_end + RELEASE_DELAY_S

    def call_start(self, index: int) -> float:
        return self.t_ramp + index * self.ramp_s / max(1, self.calls)

    def target_of(self, index: int) -> str:
        """The receiving socket of call `index` (calls are spread over the sockets)."""
        return self.targets[index % len(self.targets)]

    def offer_of(self, index: int) -> str:
        """The SDP offer of call `index`: its codec, received on its socket."""
        return self.codec.offer(int(self.target_of(index).rpartition(":")[2]))
