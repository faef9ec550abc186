"""Prompts encoded once per format (media/encoded.py): the shared packets are the bits a
per-call encoder, fresh at the prompt's first frame, would send."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from sentiric_media.media.codecs import CODECS, MediaFormat
from sentiric_media.media.encoded import PromptEncodings, encode_prompt


def _prompt(rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    tone = 6000 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)
    samples = np.rint(tone).astype(np.int16)
    samples.flags.writeable = False
    return samples


def _format(name: str, ptime: int = 20) -> MediaFormat:
    codec = CODECS.get(name)
    if codec is None:
        pytest.skip(f"{name} is not available on this machine")
    return codec.format(codec.static_payload_type or 111, ptime=ptime)


@pytest.mark.parametrize("name", ["pcmu", "pcma", "g722", "g729", "opus"])
@pytest.mark.parametrize("ptime", [20, 40])
def test_shared_packets_equal_a_fresh_per_call_encoder(name: str, ptime: int) -> None:
    fmt = _format(name, ptime)
    samples = _prompt(fmt.sample_rate)
    encoded = encode_prompt(samples, fmt)
    size = fmt.packet_samples
    per_call = fmt.new_encoder()
    per_call.reset()
    padded = np.zeros(len(encoded.packets) * size, np.int16)
    padded[: len(samples)] = samples
    expected = [
        per_call.encode(padded[k * size : (k + 1) * size]) for k in range(len(encoded.packets))
    ]
    assert list(encoded.packets) == expected
    assert encoded.packet_at(size) == expected[1]
    assert encoded.packet_at(size + 1) is None  # not a packet boundary
    assert encoded.packet_at(len(padded)) is None


async def test_one_encoding_per_buffer_and_format_and_it_goes_with_the_buffer() -> None:
    fmt = _format("g722")
    encodings = PromptEncodings()
    samples = _prompt(fmt.sample_rate)
    first = await encodings.prepare(samples, fmt)
    assert await encodings.prepare(samples, fmt) is first
    assert len(encodings) == 1
    other = await encodings.prepare(samples, _format("g722", 40))
    assert other is not first
    assert len(encodings) == 2
    del samples
    gc.collect()
    assert len(encodings) == 0
