"""Opus (`opus/48000/2`, dynamic PT): PyAV's libopus to encode, libopus via ctypes to decode.

SDP always says `/2` (RFC 7587) although we send and decode mono; the RTP
clock is 48000, the PCM rate 16000 (see `SAMPLE_RATE`).

Encoding uses the libopus that the PyAV wheel bundles (one packet per call,
~220-240 µs per 20 ms at complexity 10), configured from the PEER's fmtp:
`maxaveragebitrate` caps the bitrate, `maxplaybackrate` the coded bandwidth
(FFmpeg's `cutoff`), `cbr=1` turns VBR off, and in-band FEC (LBRR) is sent when
the peer says `useinbandfec=1` (RFC 7587: absent means 0, the peer would not
use it; the redundancy would only cost bits).

Decoding calls Debian's `libopus0` directly: FFmpeg's libopus wrapper
hard-codes `decode_fec=0` and has no packet-loss concealment, while
`opus_decode` does both: `conceal()` is libopus PLC (`data=NULL`) and
`decode_fec()` rebuilds a lost packet from the LBRR copy inside the next one.
Without `libopus0` the codec is unavailable (the module still imports).
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Mapping

import av
import numpy as np

from sentiric_media.media.codecs import native
from sentiric_media.media.codecs.base import Codec, MediaFormat, silence

CLOCK_RATE = 48000  # RFC 7587: always 48000, whatever the audio bandwidth
# The PCM rate of an Opus session: wideband. libopus encodes and decodes at 16 kHz
# natively, so the session, its prompts, live audio and recording run at the rate
# of G.722 calls, not 48 kHz: decoding costs less, live audio at 16 kHz needs no
# resampling, and no caller audio of a phone call is lost (voice, TTS and STT are
# wideband at most). Measured at 48 kHz: 50 Opus calls with a live stream cost
# three times the CPU of 50 G.722 calls.
SAMPLE_RATE = 16000
MAX_PACKET_SAMPLES = SAMPLE_RATE * 120 // 1000  # 120 ms, the longest Opus packet
# PLC and FEC decode spans must be whole 2.5 ms steps (libopus returns OPUS_BAD_ARG otherwise).
PLC_STEP = SAMPLE_RATE // 400
DEFAULT_BITRATE = 32000  # wideband voice with room for the FEC copy
EXPECTED_LOSS_PERCENT = 10  # libopus only adds LBRR when told to expect loss
COMPLEXITY = 10  # libopus's default; lower it to trade quality for CPU

_LIBRARY, _LIBRARY_REASON = native.load_library(
    "libopus.so.0",
    "opus",
    "libopus0",
    {
        "opus_decoder_create": (
            ctypes.c_void_p,
            (ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)),
        ),
        "opus_decoder_destroy": (None, (ctypes.c_void_p,)),
        # (state, data, len, pcm, frame_size, decode_fec) → samples per channel or < 0
        "opus_decode": (
            ctypes.c_int,
            (
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_int32,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_int,
            ),
        ),
        "opus_packet_get_samples_per_frame": (ctypes.c_int, (ctypes.c_char_p, ctypes.c_int32)),
        # (data, len, out_toc, frames[48], size[48], payload_offset) → frame count or < 0
        "opus_packet_parse": (
            ctypes.c_int,
            (
                ctypes.c_char_p,
                ctypes.c_int32,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_int16),
                ctypes.POINTER(ctypes.c_int),
            ),
        ),
    },
)
# libopus ≥ 1.5 says itself whether a packet carries LBRR; Debian 12 has 1.3.1.
_HAS_LBRR = (
    native.optional_function(
        _LIBRARY, "opus_packet_has_lbrr", (ctypes.c_int, (ctypes.c_char_p, ctypes.c_int32))
    )
    if _LIBRARY is not None
    else None
)


def _int_param(fmtp: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    try:
        value = int(fmtp[name])
    except (KeyError, ValueError):
        return None
    return min(max(value, low), high)


def _cutoff(max_playback_rate: int | None) -> int | None:
    """FFmpeg's `cutoff` (one of Opus's bandwidths) for the peer's `maxplaybackrate`."""
    if max_playback_rate is None:
        return None
    for rate, cutoff in ((8000, 4000), (12000, 6000), (16000, 8000), (24000, 12000)):
        if max_playback_rate <= rate:
            return cutoff
    return None  # fullband: no limit


def encoder_options(fmtp: Mapping[str, str], ptime: int) -> tuple[int, dict[str, str]]:
    """Bitrate and FFmpeg libopus options for a peer whose fmtp is `fmtp`."""
    fmtp = {name.lower(): value.strip() for name, value in fmtp.items()}
    bitrate = _int_param(fmtp, "maxaveragebitrate", 6000, 510000) or DEFAULT_BITRATE
    options = {
        "application": "voip",
        "frame_duration": str(ptime),
        "vbr": "off" if fmtp.get("cbr") == "1" else "on",
        "compression_level": str(COMPLEXITY),
    }
    if fmtp.get("useinbandfec") == "1":
        options |= {"fec": "1", "packet_loss": str(EXPECTED_LOSS_PERCENT)}
    cutoff = _cutoff(_int_param(fmtp, "maxplaybackrate", 8000, 48000))
    if cutoff is not None:
        options["cutoff"] = str(cutoff)
    return bitrate, options


class OpusEncoder:
    """16 kHz mono int16, one Opus frame of the format's ptime per call → one packet."""

    __slots__ = ("_bitrate", "_context", "_frame_samples", "_options")

    def __init__(self, media_format: MediaFormat) -> None:
        self._frame_samples = media_format.packet_samples
        self._bitrate, self._options = encoder_options(media_format.fmtp, media_format.ptime)
        self._context = self._open()

    def _open(self) -> av.AudioCodecContext:
        context = av.CodecContext.create("libopus", "w")
        context.sample_rate = SAMPLE_RATE
        context.layout = "mono"
        context.format = "s16"
        context.bit_rate = self._bitrate
        context.options = self._options
        context.open()
        return context

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode exactly one packet's samples; ValueError for any other length.

        PyAV re-chunks input to the frame size and would hold a short block
        back, silently delaying the stream: a wrong length is a caller's bug.
        """
        if len(pcm) != self._frame_samples:
            raise ValueError(f"Opus encodes {self._frame_samples} samples here, not {len(pcm)}")
        samples = np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        return b"".join(bytes(packet) for packet in self._context.encode(frame))

    def reset(self) -> None:
        self._context = self._open()


class OpusDecoder:
    """Opus packets → 16 kHz mono int16 with libopus PLC and FEC; never raises."""

    __slots__ = ("__weakref__", "_buffer", "_close", "_last_samples", "_state")

    def __init__(self, media_format: MediaFormat | None = None) -> None:
        assert _LIBRARY is not None, _LIBRARY_REASON
        error = ctypes.c_int(0)
        state = _LIBRARY.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        if not state or error.value != 0:
            raise MemoryError(f"opus_decoder_create failed ({error.value})")
        self._state: int = state
        # Frees the libopus state when the decoder goes (not a __del__: no cycles, no order).
        self._close = weakref.finalize(self, _LIBRARY.opus_decoder_destroy, state)
        self._buffer = np.zeros(MAX_PACKET_SAMPLES, dtype=np.int16)
        # An empty payload (DTX, or a broken packet) stands for one as long as the last one.
        self._last_samples = media_format.packet_samples if media_format else 960

    def _decode_into(self, out: np.ndarray, payload: bytes | None, samples: int, fec: int) -> int:
        size = len(payload) if payload else 0
        return _LIBRARY.opus_decode(self._state, payload, size, out.ctypes.data, samples, fec)

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            # opus_decode(len=0) would conceal the whole buffer (120 ms).
            return self.conceal(self._last_samples)
        decoded = self._decode_into(self._buffer, payload, MAX_PACKET_SAMPLES, 0)
        if decoded < 0:  # OPUS_INVALID_PACKET and friends
            return self.conceal(self._last_samples)
        self._last_samples = decoded
        return self._buffer[:decoded].copy()

    def conceal(self, samples: int) -> np.ndarray:
        """Exactly `samples` samples of libopus PLC.

        libopus conceals whole 2.5 ms steps: a span that is not one is rounded
        up and the surplus dropped. Spans over 120 ms are concealed piecewise
        (libopus fades to silence after a while of loss).
        """
        if samples <= 0:
            return silence(0)
        span = -(-samples // PLC_STEP) * PLC_STEP
        out = np.zeros(span, dtype=np.int16)
        done = 0
        while done < span:
            step = min(span - done, MAX_PACKET_SAMPLES)
            decoded = self._decode_into(out[done:], None, step, 0)
            if decoded <= 0:
                break  # leave the rest silent
            done += decoded
        return out[:samples]

    def decode_fec(self, next_payload: bytes, samples: int) -> np.ndarray | None:
        """The lost `samples` before `next_payload`: PLC, then its last frame from LBRR.

        None when `next_payload` carries no LBRR or covers more than the gap
        (libopus would only conceal; the caller does that with `conceal()`).
        """
        frame = fec_frame_samples(next_payload)
        if frame == 0 or samples < frame:
            return None
        out = np.zeros(samples, dtype=np.int16)
        if samples > frame:
            out[: samples - frame] = self.conceal(samples - frame)
        if self._decode_into(out[samples - frame :], next_payload, frame, 1) != frame:
            return None
        return out


def fec_frame_samples(packet: bytes) -> int:
    """Samples (at SAMPLE_RATE) the in-band FEC (LBRR) of `packet` can rebuild, 0 if it has none."""
    if _LIBRARY is None or len(packet) < 2:
        return 0
    frame: int = _LIBRARY.opus_packet_get_samples_per_frame(packet, SAMPLE_RATE)
    if _HAS_LBRR is not None:
        return frame if _HAS_LBRR(packet, len(packet)) > 0 else 0
    if packet[0] >> 3 >= 16:  # CELT-only configurations have no SILK layer, no LBRR
        return 0
    sizes, offset = (ctypes.c_int16 * 48)(), ctypes.c_int(0)
    count = _LIBRARY.opus_packet_parse(packet, len(packet), None, None, sizes, ctypes.byref(offset))
    if count <= 0 or sizes[0] == 0:
        return 0
    # As libopus 1.5's opus_packet_has_lbrr: the SILK header starts with one VAD flag
    # per 20 ms SILK frame and then the LBRR flag, each an equiprobable range-coder
    # bit, which makes them the top bits of the frame's first byte (then the same
    # again for the side channel of a stereo packet).
    silk_frames = max(1, frame // (SAMPLE_RATE // 50))
    first = packet[offset.value]
    lbrr = (first >> (7 - silk_frames)) & 1
    if packet[0] & 0x04:
        lbrr |= (first >> (6 - 2 * silk_frames)) & 1
    return frame if lbrr else 0


def _unavailable() -> str | None:
    if "libopus" not in av.codecs_available:
        return "this PyAV build has no libopus encoder: pip install 'av>=18'"
    return _LIBRARY_REASON


UNAVAILABLE_REASON: str | None = _unavailable()
CODEC: Codec | None = (
    Codec(
        "opus",
        CLOCK_RATE,
        SAMPLE_RATE,
        OpusEncoder,
        OpusDecoder,
        sdp_channels=2,
        ptimes=(20, 10, 40, 60),  # Opus has no 30 or 50 ms frames
        fmtp={"useinbandfec": "1", "minptime": "10"},
    )
    if UNAVAILABLE_REASON is None
    else None
)
