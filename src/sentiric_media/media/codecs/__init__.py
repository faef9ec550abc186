"""The codecs a session can speak, by SDP encoding name.

One module per codec, each defining a `Codec` (see `base`): `g711` (PCMU, PCMA),
`g722`, `opus`, `g729`. A codec whose library is missing on this machine is
left out of `CODECS` and named in `UNAVAILABLE` with the reason, so the
service starts without it and says how to install it.
"""

from __future__ import annotations

from sentiric_media.media.codecs.base import Codec, Decoder, Encoder, MediaFormat
from sentiric_media.media.codecs.g711 import PCMA, PCMU

# RTP payload types with a fixed meaning (RFC 3551) outside the negotiated codecs.
COMFORT_NOISE_PAYLOAD_TYPE = 13


def _registry() -> tuple[dict[str, Codec], dict[str, str]]:
    # Imported here: each module probes its library (PyAV, libopus0, libbcg729-0) once.
    from sentiric_media.media.codecs import g722, g729, opus

    codecs = {PCMU.key: PCMU, PCMA.key: PCMA}
    missing: dict[str, str] = {}
    for name, module in (("G722", g722), ("opus", opus), ("G729", g729)):
        if module.CODEC is not None:
            codecs[module.CODEC.key] = module.CODEC
        else:
            missing[name] = module.UNAVAILABLE_REASON or "unavailable"
    return codecs, missing


CODECS, UNAVAILABLE = _registry()
STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    codec.static_payload_type: codec
    for codec in CODECS.values()
    if codec.static_payload_type is not None
}


def find_codec(name: str) -> Codec | None:
    """The codec of SDP encoding name `name` (case-insensitive), or None."""
    return CODECS.get(name.lower())


__all__ = [
    "CODECS",
    "COMFORT_NOISE_PAYLOAD_TYPE",
    "PCMA",
    "PCMU",
    "STATIC_PAYLOAD_TYPES",
    "UNAVAILABLE",
    "Codec",
    "Decoder",
    "Encoder",
    "MediaFormat",
    "find_codec",
]
