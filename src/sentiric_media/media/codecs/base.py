"""The codec interface: `Codec`, `MediaFormat`, and the `Encoder` / `Decoder` objects.

`Codec` is what SDP names, `MediaFormat` what a call agreed, and the encoder
and decoder are what a session talks to.

Two rates, never mixed up:
- `clock_rate` is the RTP timestamp clock written in SDP (`G722/8000`, `opus/48000/2`);
- `sample_rate` is the rate of the PCM the decoder returns and the encoder takes
  (G.722: 16000 although its clock is 8000; Opus: 48000).
A session works in samples at `sample_rate`; only the RTP sender and receiver
convert to and from `clock_rate`.

Stateless codecs (G.711) hand out one shared encoder and decoder; stateful ones
(G.722, Opus, G.729) a fresh object per session and direction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    """Int16 mono PCM at the codec's sample rate → one RTP payload."""

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode one packet's audio (a whole number of the codec's frames)."""
        ...

    def reset(self) -> None:
        """Forget all state (a fresh encoder gives the same bits from here on)."""
        ...


class Decoder(Protocol):
    """One RTP payload → int16 mono PCM at the codec's sample rate."""

    def decode(self, payload: bytes) -> np.ndarray:
        """Decode a received payload (any number of the codec's frames)."""
        ...

    def conceal(self, samples: int) -> np.ndarray:
        """Audio for `samples` lost samples (PLC where the codec has it, else silence)."""
        ...

    def decode_fec(self, next_payload: bytes, samples: int) -> np.ndarray | None:
        """The lost packet before `next_payload`, from that packet's in-band FEC, or None."""
        ...


def silence(samples: int) -> np.ndarray:
    return np.zeros(max(0, samples), dtype=np.int16)


@dataclass(frozen=True, slots=True)
class Codec:
    """One codec the service can speak, as SDP names it (`rtpmap` encoding name)."""

    name: str
    clock_rate: int
    sample_rate: int
    new_encoder: Callable[[MediaFormat], Encoder]
    new_decoder: Callable[[MediaFormat], Decoder]
    static_payload_type: int | None = None
    sdp_channels: int = 1
    # Packet durations (ms) the codec can carry; the first is what we send by default.
    ptimes: tuple[int, ...] = (20, 10, 30, 40, 50, 60)
    # fmtp parameters of our offers and answers (e.g. `annexb=no`, `useinbandfec=1`).
    fmtp: Mapping[str, str] = field(default_factory=dict)
    # False for codecs without state (G.711): nothing to conceal, packets decode in any order.
    stateful: bool = True

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def rtpmap(self) -> str:
        suffix = f"/{self.sdp_channels}" if self.sdp_channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{suffix}"

    def format(
        self,
        payload_type: int | None = None,
        ptime: int | None = None,
        fmtp: Mapping[str, str] | None = None,
    ) -> MediaFormat:
        """A `MediaFormat` of this codec; the payload type defaults to the static one."""
        pt = self.static_payload_type if payload_type is None else payload_type
        if pt is None:
            raise ValueError(f"{self.name} has no static payload type; name one")
        return MediaFormat(self, pt, self.packet_ms(ptime), dict(fmtp or {}))

    def packet_ms(self, wanted: int | None) -> int:
        """The packet duration we send for a peer asking `wanted` ms (None: our default)."""
        if wanted is None or wanted not in self.ptimes:
            return self.ptimes[0]
        return wanted


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """What one direction of a call agreed: codec, payload type, packet time, fmtp."""

    codec: Codec
    payload_type: int
    ptime: int = 20
    fmtp: Mapping[str, str] = field(default_factory=dict)
    # Derived once (the send path reads them every packet).
    packet_samples: int = field(init=False, compare=False)  # PCM samples in one packet we send
    # What makes two formats' encoders give the same bits (for shared prompt caches).
    encoder_key: tuple[object, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: derived fields are set once, here
        set_field(self, "packet_samples", self.codec.sample_rate * self.ptime // 1000)
        set_field(
            self, "encoder_key", (self.codec.key, self.ptime, tuple(sorted(self.fmtp.items())))
        )

    @property
    def name(self) -> str:
        return self.codec.name

    @property
    def clock_rate(self) -> int:
        """RTP timestamp units per second."""
        return self.codec.clock_rate

    @property
    def sample_rate(self) -> int:
        """PCM samples per second of the decoded audio."""
        return self.codec.sample_rate

    def new_encoder(self) -> Encoder:
        return self.codec.new_encoder(self)

    def new_decoder(self) -> Decoder:
        return self.codec.new_decoder(self)
