"""Prompt audio, decoded and resampled once per (source, rate), then cached.

`PromptLibrary.load` runs the blocking decode in an executor, shares one decode
between concurrent requests for the same prompt, and keeps results in an LRU
cache bounded in bytes. Cached arrays are read-only, so every session can play
the same buffer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from sentiric_media.audio.decode import RAW_PCM_TYPES, decode_container, decode_raw_pcm, to_rate
from sentiric_media.audio.uri import DataAudio, FileAudio

# Hashing runs ~1 GB/s; above this size it moves off the loop so no tick waits for it.
_HASH_ON_LOOP_LIMIT = 256 * 1024


def decode_prompt(
    source: FileAudio | DataAudio, rate: int, max_seconds: float | None = None
) -> np.ndarray:
    """Blocking: the prompt as read-only mono int16 samples at `rate`."""
    if isinstance(source, FileAudio):
        mono, source_rate = decode_container(source.path, source.uri, max_seconds)
    elif source.mime in RAW_PCM_TYPES:
        mono, source_rate = decode_raw_pcm(source.payload, source.params, max_seconds)
    else:
        mono, source_rate = decode_container(source.payload, source.uri_prefix, max_seconds)
    samples = to_rate(mono, source_rate, rate)
    samples.flags.writeable = False
    return samples


class PromptLibrary:
    """Decoded prompts by (source, rate), bounded to `max_bytes` of samples."""

    def __init__(self, max_bytes: int, max_seconds: float | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._cache: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[np.ndarray]] = {}
        self.cached_bytes = 0
        self.hits = 0
        self.misses = 0

    async def load(self, source: FileAudio | DataAudio, rate: int) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if isinstance(source, DataAudio) and len(source.payload) > _HASH_ON_LOOP_LIMIT:
            key = await loop.run_in_executor(None, _cache_key, source, rate)
        else:
            key = _cache_key(source, rate)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            return cached
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        self.misses += 1
        future = loop.run_in_executor(None, decode_prompt, source, rate, self.max_seconds)
        self._loading[key] = future
        try:
            samples = await asyncio.shield(future)
        finally:
            self._loading.pop(key, None)
        self._store(key, samples)
        return samples

    def _store(self, key: Hashable, samples: np.ndarray) -> None:
        if samples.nbytes > self.max_bytes:
            return
        self._cache[key] = samples
        self.cached_bytes += samples.nbytes
        while self.cached_bytes > self.max_bytes:
            _, evicted = self._cache.popitem(last=False)
            self.cached_bytes -= evicted.nbytes


def _cache_key(source: FileAudio | DataAudio, rate: int) -> Hashable:
    if isinstance(source, FileAudio):
        stat = source.path.stat()
        return ("file", str(source.path), stat.st_mtime_ns, stat.st_size, rate)
    digest = hashlib.blake2b(source.payload, digest_size=16).digest()
    return ("data", source.mime, tuple(sorted(source.params.items())), digest, rate)
