"""The codec a load run's callers speak: their SDP offer, speech payloads and RTP clock step.

Without `--codec` the calls are set up as before negotiation existed: no SDP,
the service's default PCMU (payload type 0) both ways. With `--codec NAME`
every call's control step sends the caller's offer (`NegotiateSdp`, one codec
plus telephone-event, ptime 20, `m=` naming the generator socket of that call)
and the RTP process sends the bundled speech pre-encoded in that codec with
the service's own encoders (`sentiric_media.media.codecs`), so the service
decodes exactly what a phone would send. The payload types are the static
ones of RFC 3551 and 111 for Opus (the usual choice of phones and browsers).
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from importlib import resources

import numpy as np

from sentiric_media.audio.decode import to_rate
from sentiric_media.media.codecs import CODECS, UNAVAILABLE, Codec
from sentiric_media.media.encoded import encode_prompt

NAMES = ("pcmu", "pcma", "g722", "opus", "g729")
DYNAMIC_PAYLOAD_TYPES = {"opus": 111}  # codecs without a static payload type
EVENT_PAYLOAD_TYPE = 101
PTIME_MS = 20


def bundled_speech() -> tuple[int, np.ndarray]:
    """The service's bundled speech sample: (rate, int16 mono)."""
    data = resources.files("sentiric_media").joinpath("data/speech8k.wav").read_bytes()
    with wave.open(io.BytesIO(data)) as handle:
        rate = handle.getframerate()
        return rate, np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")


def unavailable(name: str) -> str | None:
    """Why codec `name` cannot run on this machine, or None when it can."""
    if name in CODECS:
        return None
    return UNAVAILABLE.get(name, f"unknown codec {name!r}")


@dataclass(frozen=True)
class CallCodec:
    """The codec of every call of a run; `negotiate`: set up by SDP (else the no-SDP path)."""

    key: str = "pcmu"
    negotiate: bool = False

    @property
    def codec(self) -> Codec:
        return CODECS[self.key]

    @property
    def payload_type(self) -> int:
        static = self.codec.static_payload_type
        return static if static is not None else DYNAMIC_PAYLOAD_TYPES[self.key]

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp units per 20 ms packet (the clock, not the audio rate: G.722 160)."""
        return self.codec.clock_rate * PTIME_MS // 1000

    @property
    def label(self) -> str:
        return f"{self.codec.name}{'' if self.negotiate else ' (no SDP)'}"

    def offer(self, port: int) -> str:
        """The caller's SDP offer: this codec and telephone-event, received on `port`."""
        codec, pt = self.codec, self.payload_type
        lines = (
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio {port} RTP/AVP {pt} {EVENT_PAYLOAD_TYPE}",
            f"a=rtpmap:{pt} {codec.rtpmap}",
            f"a=rtpmap:{EVENT_PAYLOAD_TYPE} telephone-event/{codec.clock_rate}",
            f"a=ptime:{PTIME_MS}",
        )
        return "\r\n".join(lines) + "\r\n"

    def speech_payloads(self) -> list[bytes]:
        """The bundled speech as 20 ms payloads of this codec (one encoder, first to last)."""
        fmt = self.codec.format(self.payload_type, PTIME_MS)
        rate, pcm = bundled_speech()
        if fmt.sample_rate != rate:
            pcm = to_rate(pcm.astype(np.float32) / 32768.0, rate, fmt.sample_rate)
        whole = len(pcm) // fmt.packet_samples * fmt.packet_samples  # no padded last packet
        return list(encode_prompt(pcm[:whole], fmt).packets)
