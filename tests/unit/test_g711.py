"""G.711 μ-law / A-law tables (codecs/g711_tables.py) and the codec objects (codecs/g711.py).

Reference values come from ITU-T G.711 and the Sun reference `g711.c`; the full
tables are compared with Python's `audioop` where it still exists.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import numpy as np
import pytest

from sentiric_media.media import codecs
from sentiric_media.media.codecs import g711_tables as g711

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def _audioop() -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            return None


audioop = _audioop()
needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop is not available")


def encode_one(table: np.ndarray, value: int) -> int:
    return g711.encode(table, np.array([value], dtype=np.int16))[0]


# --- known values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"), [(0xFF, 0), (0x00, -32124), (0x80, 32124), (0x7F, 0), (0xFE, 8)]
)
def test_ulaw_decode_known_values(code: int, expected: int) -> None:
    assert int(g711.decode(g711.ULAW_DECODE, bytes([code]))[0]) == expected


@pytest.mark.parametrize(
    ("code", "expected"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24)]
)
def test_alaw_decode_known_values(code: int, expected: int) -> None:
    assert int(g711.decode(g711.ALAW_DECODE, bytes([code]))[0]) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0xFF), (1, 0xFF), (-1, 0x7E), (32767, 0x80), (-32768, 0x00)]
)
def test_ulaw_encode_known_values(value: int, expected: int) -> None:
    assert encode_one(g711.ULAW_ENCODE, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0xD5), (1, 0xD5), (-1, 0x55), (32767, 0xAA), (-32768, 0x2A)]
)
def test_alaw_encode_known_values(value: int, expected: int) -> None:
    assert encode_one(g711.ALAW_ENCODE, value) == expected


# --- against audioop over every value ------------------------------------------------------------


@needs_audioop
def test_ulaw_encode_matches_audioop_for_every_sample() -> None:
    assert audioop is not None
    expected = audioop.lin2ulaw(ALL_PCM.astype("<i2").tobytes(), 2)
    actual = g711.encode(g711.ULAW_ENCODE, ALL_PCM)
    mismatches = np.flatnonzero(
        np.frombuffer(actual, np.uint8) != np.frombuffer(expected, np.uint8)
    )
    assert mismatches.size == 0, f"first mismatching samples: {ALL_PCM[mismatches[:5]]}"


@needs_audioop
def test_alaw_encode_matches_audioop_for_every_sample() -> None:
    assert audioop is not None
    expected = audioop.lin2alaw(ALL_PCM.astype("<i2").tobytes(), 2)
    actual = g711.encode(g711.ALAW_ENCODE, ALL_PCM)
    mismatches = np.flatnonzero(
        np.frombuffer(actual, np.uint8) != np.frombuffer(expected, np.uint8)
    )
    assert mismatches.size == 0, f"first mismatching samples: {ALL_PCM[mismatches[:5]]}"


@needs_audioop
def test_ulaw_decode_matches_audioop_for_every_code() -> None:
    assert audioop is not None
    expected = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), dtype="<i2")
    np.testing.assert_array_equal(g711.decode(g711.ULAW_DECODE, ALL_CODES), expected)


@needs_audioop
def test_alaw_decode_matches_audioop_for_every_code() -> None:
    assert audioop is not None
    expected = np.frombuffer(audioop.alaw2lin(ALL_CODES, 2), dtype="<i2")
    np.testing.assert_array_equal(g711.decode(g711.ALAW_DECODE, ALL_CODES), expected)


# --- structural properties -----------------------------------------------------------------------


def test_alaw_encode_of_decode_is_identity_for_every_code() -> None:
    decoded = g711.decode(g711.ALAW_DECODE, ALL_CODES)
    assert g711.encode(g711.ALAW_ENCODE, decoded) == ALL_CODES


def test_ulaw_encode_of_decode_is_identity_except_negative_zero() -> None:
    decoded = g711.decode(g711.ULAW_DECODE, ALL_CODES)
    reencoded = g711.encode(g711.ULAW_ENCODE, decoded)
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF  # "negative zero" decodes to 0, which encodes as positive zero
    assert reencoded == bytes(expected)


@pytest.mark.parametrize(
    ("encode_table", "decode_table", "clip"),
    [(g711.ULAW_ENCODE, g711.ULAW_DECODE, 32124), (g711.ALAW_ENCODE, g711.ALAW_DECODE, 32256)],
    ids=["ulaw", "alaw"],
)
def test_quantisation_error_is_bounded_relative_to_magnitude(
    encode_table: np.ndarray, decode_table: np.ndarray, clip: int
) -> None:
    decoded = g711.decode(decode_table, g711.encode(encode_table, ALL_PCM)).astype(np.int64)
    original = ALL_PCM.astype(np.int64)
    magnitude = np.abs(original)
    error = np.abs(decoded - original)
    inside = magnitude <= clip
    # Logarithmic quantisation: half a step of 1/16 of the segment, plus the smallest step.
    bound = magnitude[inside] / 32 + 8
    worst = np.argmax(error[inside] - bound)
    assert np.all(error[inside] <= bound), f"sample {original[inside][worst]}"
    # Beyond the largest code the output saturates at it, with the right sign.
    outside = ~inside
    np.testing.assert_array_equal(decoded[outside], np.sign(original[outside]) * clip)


@pytest.mark.parametrize(
    ("encode_table", "decode_table"),
    [(g711.ULAW_ENCODE, g711.ULAW_DECODE), (g711.ALAW_ENCODE, g711.ALAW_DECODE)],
    ids=["ulaw", "alaw"],
)
def test_round_trip_is_monotonic_and_sign_preserving(
    encode_table: np.ndarray, decode_table: np.ndarray
) -> None:
    decoded = g711.decode(decode_table, g711.encode(encode_table, ALL_PCM)).astype(np.int64)
    assert np.all(np.diff(decoded) >= 0)
    assert np.all(decoded[ALL_PCM.astype(np.int64) < -16] < 0)
    assert np.all(decoded[ALL_PCM.astype(np.int64) > 16] > 0)


def test_tables_have_the_right_shape_and_type() -> None:
    for table in (g711.ULAW_ENCODE, g711.ALAW_ENCODE):
        assert table.shape == (65536,)
        assert table.dtype == np.uint8
    for table in (g711.ULAW_DECODE, g711.ALAW_DECODE):
        assert table.shape == (256,)
        assert table.dtype == np.int16


def test_decode_of_empty_payload() -> None:
    assert len(g711.decode(g711.ULAW_DECODE, b"")) == 0
    assert g711.encode(g711.ALAW_ENCODE, np.zeros(0, dtype=np.int16)) == b""


# --- codec objects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "name", "payload_type"), [(codecs.PCMU, "PCMU", 0), (codecs.PCMA, "PCMA", 8)]
)
def test_g711_codec_parameters(codec: codecs.Codec, name: str, payload_type: int) -> None:
    assert codec.name == name
    assert codec.static_payload_type == payload_type
    assert codec.sample_rate == 8000
    assert codec.clock_rate == 8000
    assert codec.rtpmap == f"{name}/8000"
    assert not codec.stateful
    assert codec.format().packet_samples == 160
    assert codec.format(ptime=30).packet_samples == 240
    assert codec.format().new_encoder() is codec.format().new_encoder()  # shared, stateless
    assert codecs.STATIC_PAYLOAD_TYPES[payload_type] is codec
    assert codecs.find_codec(name.lower()) is codec


@pytest.mark.parametrize(
    ("codec", "encode_table", "decode_table"),
    [
        (codecs.PCMU, g711.ULAW_ENCODE, g711.ULAW_DECODE),
        (codecs.PCMA, g711.ALAW_ENCODE, g711.ALAW_DECODE),
    ],
    ids=["PCMU", "PCMA"],
)
def test_codec_encodes_a_frame_with_its_own_law(
    codec: codecs.Codec, encode_table: np.ndarray, decode_table: np.ndarray
) -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(-32768, 32768, size=160, dtype=np.int16)
    fmt = codec.format()
    payload = fmt.new_encoder().encode(frame)
    assert len(payload) == 160
    expected = bytes(int(encode_table[v & 0xFFFF]) for v in frame.tolist())
    assert payload == expected
    decoder = fmt.new_decoder()
    decoded = decoder.decode(payload)
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, decode_table[np.frombuffer(payload, np.uint8)])
    np.testing.assert_array_equal(decoder.conceal(80), np.zeros(80, np.int16))
    assert decoder.decode_fec(payload, 160) is None


def test_pcmu_and_pcma_differ() -> None:
    frame = np.linspace(-20000, 20000, 160).astype(np.int16)
    ulaw, alaw = codecs.PCMU.format().new_encoder(), codecs.PCMA.format().new_encoder()
    assert ulaw.encode(frame) != alaw.encode(frame)
