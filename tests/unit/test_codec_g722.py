"""G.722 (media/codecs/g722.py) against the ffmpeg command line, and PyAV's quirks around it.

Our bits decoded by ffmpeg, and ffmpeg's bits decoded by us, must match the
source speech (measured correlation 0.9999 at the codec's 22-sample delay). An
empty payload must not end FFmpeg's decoder (it is FFmpeg's end of stream).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentiric_media.media.codecs import g722
from tests.unit.codec_support import encode_all, ffmpeg, needs_ffmpeg, rms, similarity, speech

pytestmark = pytest.mark.skipif(g722.CODEC is None, reason=str(g722.UNAVAILABLE_REASON))


@needs_ffmpeg
def test_g722_our_bits_decode_with_ffmpeg(tmp_path: Path) -> None:
    source = speech(16000)
    bits = encode_all(source, g722.G722Encoder(), 320)
    assert {len(packet) for packet in bits} == {160}  # 20 ms: 320 samples in 160 bytes
    (tmp_path / "ours.g722").write_bytes(b"".join(bits))
    decoded = np.frombuffer(
        ffmpeg("-f", "g722", "-i", str(tmp_path / "ours.g722"), "-f", "s16le", "-"), "<i2"
    )
    score, lag = similarity(source, decoded, 2000)
    assert score >= 0.99  # measured 0.9999
    assert lag < 64  # measured 22, the QMF filters' delay


@needs_ffmpeg
def test_g722_ffmpeg_bits_decode_with_ours() -> None:
    source = speech(16000)
    bits = ffmpeg(
        *("-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "-", "-c:a", "g722", "-f", "g722", "-"),
        stdin=source.tobytes(),
    )
    decoder = g722.CODEC.format().new_decoder()
    decoded = np.concatenate(
        [decoder.decode(bits[start : start + 160]) for start in range(0, len(bits), 160)]
    )
    assert len(decoded) == 2 * len(bits)
    score, lag = similarity(source, decoded, 2000)
    assert score >= 0.99  # measured 0.9999
    assert lag < 64  # measured 22


def test_g722_empty_payload_is_silence_and_the_decoder_lives_on() -> None:
    # FFmpeg takes an empty packet for end of stream and then refuses every packet.
    bits = encode_all(speech(16000)[:3200], g722.G722Encoder(), 320)
    decoder = g722.CODEC.format(ptime=30).new_decoder()
    assert np.array_equal(decoder.decode(b""), np.zeros(480, np.int16))
    first = decoder.decode(bits[0])
    assert len(first) == 320
    assert first.dtype == np.int16
    assert np.array_equal(decoder.decode(b""), np.zeros(320, np.int16))
    assert rms(decoder.decode(bits[5])) > 100
    assert len(decoder.decode(b"\x01")) == 2
    assert np.array_equal(decoder.conceal(100), np.zeros(100, np.int16))
    assert decoder.decode_fec(bits[6], 320) is None


def test_g722_encoder_takes_10ms_blocks_and_resets() -> None:
    source = speech(16000)[:4800]
    encoder = g722.G722Encoder()
    first = [encoder.encode(source[:480]), encoder.encode(source[480:640])]
    assert [len(packet) for packet in first] == [240, 80]
    encoder.reset()
    assert encoder.encode(source[:480]) == first[0]
    for wrong in (0, 100, 321):
        with pytest.raises(ValueError, match="multiples of 160"):
            encoder.encode(source[:wrong])
