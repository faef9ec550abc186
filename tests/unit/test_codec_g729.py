"""G.729 annex A (media/codecs/g729.py, libbcg729) against FFmpeg's G.729 decoder.

Our frames decoded by ffmpeg correlate with the source (measured 0.86; G.729
is 8 kb/s), and our decoder agrees with FFmpeg's on the same bits (0.996).
Annex B SID frames, which peers send even with `annexb=no`, decode to comfort
noise at the noise's level; lost frames are erased per 10 ms; odd payloads
never raise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentiric_media.media.codecs import g729
from tests.unit.codec_support import encode_all, ffmpeg, needs_ffmpeg, rms, similarity, speech

pytestmark = pytest.mark.skipif(g729.CODEC is None, reason=str(g729.UNAVAILABLE_REASON))

# A real annex B SID frame: bcg729 with VAD on, after speech, on noise of RMS 30.
QUIET_SID = bytes.fromhex("34d4")


def g729_ours(source: np.ndarray) -> list[bytes]:
    return encode_all(source, g729.CODEC.format().new_encoder(), 160)


@needs_ffmpeg
def test_g729_our_frames_decode_with_ffmpeg(tmp_path: Path) -> None:
    source = speech(8000, 2.0)
    bits = g729_ours(source)
    assert {len(packet) for packet in bits} == {20}  # 20 ms: two 10-byte frames
    (tmp_path / "ours.g729").write_bytes(b"".join(bits))
    theirs = np.frombuffer(
        ffmpeg("-f", "g729", "-i", str(tmp_path / "ours.g729"), "-f", "s16le", "-"), "<i2"
    )
    score, lag = similarity(source, theirs, 400)
    assert score >= 0.8  # measured 0.859: G.729 is 8 kb/s
    assert lag == 40  # the 5 ms lookahead
    # And our decoder agrees with FFmpeg's on the same bits.
    decoder = g729.CODEC.format().new_decoder()
    ours = np.concatenate([decoder.decode(packet) for packet in bits])
    score, lag = similarity(theirs[200:-200], ours, 400)
    assert score >= 0.98  # measured 0.996
    assert lag == 200


def test_g729_sid_frames_are_comfort_noise_not_speech() -> None:
    source = speech(8000, 1.0)
    bits = g729_ours(source)
    decoder = g729.CODEC.format().new_decoder()
    speech_level = rms(np.concatenate([decoder.decode(packet) for packet in bits]))
    # Two speech frames and a SID frame in one packet (RFC 3551), then SID alone.
    mixed = decoder.decode(bits[10] + QUIET_SID)
    assert len(mixed) == 240
    noise = decoder.decode(QUIET_SID)
    assert len(noise) == 80
    assert 5 < rms(noise) < 100 < speech_level
    # Nothing arrives in silence: erasure now continues the comfort noise.
    assert 5 < rms(decoder.conceal(800)) < 100
    fresh = g729.CODEC.format().new_decoder()
    assert len(fresh.decode(QUIET_SID)) == 80


def test_g729_conceal_erases_per_10ms_and_never_raises() -> None:
    bits = g729_ours(speech(8000, 1.0))
    decoder = g729.CODEC.format(ptime=30).new_decoder()
    assert len(decoder.decode(b"")) == 240  # a lost packet of the agreed ptime
    for packet in bits[:20]:
        decoder.decode(packet)
    concealed = decoder.conceal(160)
    assert len(concealed) == 160
    assert rms(concealed) > 10  # repeats the last speech parameters, decaying
    assert [len(decoder.conceal(n)) for n in (80, 100, 0, -5)] == [80, 100, 0, 0]
    assert len(decoder.decode(b"\x01" * 13)) == 160  # a frame and an unknown 3-byte tail
    assert len(decoder.decode(b"\x07")) == 80
    assert decoder.decode_fec(bits[21], 160) is None
    assert len(decoder.decode(bits[21])) == 160


def test_g729_encoder_takes_whole_frames_and_resets() -> None:
    source = speech(8000, 1.0)
    encoder = g729.CODEC.format().new_encoder()
    first = encoder.encode(source[:240])
    assert len(first) == 30
    encoder.encode(source[240:400])
    encoder.reset()
    assert encoder.encode(source[:240]) == first
    for wrong in (0, 79, 161):
        with pytest.raises(ValueError, match="multiples of 80"):
            encoder.encode(source[:wrong])
