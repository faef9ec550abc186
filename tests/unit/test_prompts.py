"""The prompt cache (audio/prompts.py PromptLibrary): hits, eviction, shared decodes."""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.audio import prompts
from sentiric_media.audio.prompts import PromptLibrary
from sentiric_media.audio.uri import DataAudio, FileAudio
from sentiric_media.errors import InvalidArgument


def wav(seconds: float, rate: int = 8000, freq: float = 440.0) -> bytes:
    t = np.arange(round(rate * seconds)) / rate
    data = np.rint(10000 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())
    return buffer.getvalue()


def data(payload: bytes) -> DataAudio:
    return DataAudio("data:audio/wav;base64", "audio/wav", payload)


async def test_second_load_is_a_hit_returning_the_same_array() -> None:
    library = PromptLibrary(10_000_000)
    source = data(wav(0.5))
    first = await library.load(source, 8000)
    second = await library.load(data(wav(0.5)), 8000)  # equal content, another object
    assert second is first
    assert (library.hits, library.misses) == (1, 1)
    assert len(first) == 4000
    assert library.cached_bytes == first.nbytes == 8000


async def test_cached_arrays_are_read_only() -> None:
    library = PromptLibrary(10_000_000)
    samples = await library.load(data(wav(0.1)), 8000)
    assert not samples.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        samples[:10] = 0


async def test_rate_is_part_of_the_key() -> None:
    library = PromptLibrary(10_000_000)
    source = data(wav(0.5))
    narrow = await library.load(source, 8000)
    wide = await library.load(source, 16000)
    assert (len(narrow), len(wide)) == (4000, 8000)
    assert library.misses == 2
    assert await library.load(source, 16000) is wide


async def test_mime_parameters_are_part_of_the_key() -> None:
    library = PromptLibrary(10_000_000)
    pcm = np.zeros(1600, dtype="<i2").tobytes()
    at_8k = DataAudio("data:audio/l16", "audio/l16", pcm, {"rate": "8000"})
    at_16k = DataAudio("data:audio/l16", "audio/l16", pcm, {"rate": "16000"})
    assert len(await library.load(at_8k, 8000)) == 1600
    assert len(await library.load(at_16k, 8000)) == 800


async def test_least_recently_used_prompt_is_evicted_by_bytes() -> None:
    one_prompt = 4000 * 2  # 0.5 s at 8 kHz, int16
    library = PromptLibrary(2 * one_prompt + 100)
    a, b, c = data(wav(0.5, freq=300)), data(wav(0.5, freq=400)), data(wav(0.5, freq=500))
    first_a = await library.load(a, 8000)
    await library.load(b, 8000)
    assert await library.load(a, 8000) is first_a  # a is now the most recently used
    await library.load(c, 8000)  # over the limit: b goes
    assert library.cached_bytes == 2 * one_prompt
    misses = library.misses
    assert await library.load(a, 8000) is first_a
    assert await library.load(c, 8000) is not None
    assert library.misses == misses
    await library.load(b, 8000)
    assert library.misses == misses + 1
    assert library.cached_bytes <= library.max_bytes


async def test_prompt_larger_than_the_cache_is_not_cached() -> None:
    library = PromptLibrary(1000)
    source = data(wav(0.5))
    first = await library.load(source, 8000)
    second = await library.load(source, 8000)
    assert len(first) == len(second) == 4000
    assert second is not first
    assert library.misses == 2
    assert library.cached_bytes == 0


async def test_concurrent_loads_of_one_source_decode_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    gate = threading.Event()
    real = prompts.decode_prompt

    def slow_decode(
        source: FileAudio | DataAudio, rate: int, max_seconds: float | None = None
    ) -> np.ndarray:
        calls.append(rate)
        gate.wait(5)
        return real(source, rate, max_seconds)

    monkeypatch.setattr(prompts, "decode_prompt", slow_decode)
    library = PromptLibrary(10_000_000)
    payload = wav(0.3)
    tasks = [asyncio.ensure_future(library.load(data(payload), 8000)) for _ in range(8)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == [8000]
    assert library.misses == 1
    assert all(result is results[0] for result in results)
    # Afterwards, a hit.
    assert await library.load(data(payload), 8000) is results[0]
    assert library.hits == 1


async def test_concurrent_loads_share_a_failure_and_a_retry_decodes_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = prompts.decode_prompt

    def counting_decode(
        source: FileAudio | DataAudio, rate: int, max_seconds: float | None = None
    ) -> np.ndarray:
        nonlocal calls
        calls += 1
        return real(source, rate, max_seconds)

    monkeypatch.setattr(prompts, "decode_prompt", counting_decode)
    library = PromptLibrary(10_000_000)
    bad = DataAudio("data:audio/mpeg;base64", "audio/mpeg", b"not audio" * 50)
    results = await asyncio.gather(
        *(library.load(bad, 8000) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(result, InvalidArgument) for result in results)
    assert calls == 1
    with pytest.raises(InvalidArgument):
        await library.load(bad, 8000)
    assert calls == 2  # failures are not cached
    assert library.cached_bytes == 0


async def test_large_data_prompts_are_cached_too() -> None:
    library = PromptLibrary(100_000_000)
    source = data(wav(20.0))  # 320 kB: hashed off the loop
    first = await library.load(source, 8000)
    assert await library.load(data(wav(20.0)), 8000) is first
    assert library.hits == 1


async def test_file_prompt_is_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    path.write_bytes(wav(0.5))
    library = PromptLibrary(10_000_000)
    first = await library.load(FileAudio("file://prompt.wav", path), 8000)
    assert await library.load(FileAudio("file://prompt.wav", path), 8000) is first
    path.write_bytes(wav(0.75))
    changed = await library.load(FileAudio("file://prompt.wav", path), 8000)
    assert len(changed) == 6000
    assert library.misses == 2
