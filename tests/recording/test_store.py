"""Unit: storing a finished file at a file:// target (storage/store.RecordingStore)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from sentiric_media.config import load_settings
from sentiric_media.errors import Unavailable
from sentiric_media.storage.store import RecordingStore
from sentiric_media.storage.targets import FileTarget


@pytest.fixture
async def store(tmp_path: Path):
    recording_store = RecordingStore(load_settings(recordings_path=tmp_path / "recordings"))
    yield recording_store
    await recording_store.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


async def test_put_creates_folders_and_writes_the_whole_file(
    store: RecordingStore, tmp_path: Path
) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(bytes(range(256)) * 5000)
    target = FileTarget(tmp_path / "out" / "a" / "b.wav")
    await store.put(source, target)
    assert target.path.read_bytes() == source.read_bytes()
    assert leftovers(target.path.parent) == []


async def test_put_replaces_an_existing_file(store: RecordingStore, tmp_path: Path) -> None:
    target = FileTarget(tmp_path / "same.wav")
    target.path.write_bytes(b"old content that is longer than the new one")
    source = tmp_path / "src.bin"
    source.write_bytes(b"new")
    await store.put(source, target)
    assert target.path.read_bytes() == b"new"


async def test_failed_put_leaves_no_target_and_no_temporary(
    store: RecordingStore, tmp_path: Path
) -> None:
    target = FileTarget(tmp_path / "out" / "never.wav")
    with pytest.raises(Unavailable) as caught:
        await store.put(tmp_path / "missing-source.bin", target)
    assert target.uri in str(caught.value)
    assert not target.path.exists()
    assert leftovers(target.path.parent) == []


async def test_target_folder_that_is_a_file_is_unavailable(
    store: RecordingStore, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("x")
    source = tmp_path / "src.bin"
    source.write_bytes(b"data")
    target = FileTarget(tmp_path / "blocker" / "x.wav")
    with pytest.raises(Unavailable) as caught:
        await store.put(source, target)
    assert target.uri in str(caught.value)


async def test_concurrent_puts_to_one_target_each_leave_a_complete_file(
    store: RecordingStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(b"A" * 3_000_000)
    second.write_bytes(b"B" * 2_000_000)
    copy = shutil.copyfileobj

    def slow_copy(*args, **kwargs):  # widen the window in which both writes overlap
        copy(*args, **kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(shutil, "copyfileobj", slow_copy)
    target = FileTarget(tmp_path / "out" / "shared.wav")
    results = await asyncio.gather(
        store.put(first, target), store.put(second, target), return_exceptions=True
    )
    assert results == [None, None]
    assert target.path.read_bytes() in (first.read_bytes(), second.read_bytes())
