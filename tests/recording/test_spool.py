"""Unit: the spool on local disk, and recovering what a dead process left in it."""

from __future__ import annotations

import json
import logging
import os
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentiric_media.config import load_settings
from sentiric_media.control.recordings import Recordings
from sentiric_media.events.bus import EventBus, MediaEvent
from sentiric_media.storage.spool import FRAME_BYTES, RecordingMeta, Spool, SpoolEntry
from sentiric_media.storage.store import RecordingStore
from tests.recording.conftest import wait_until


def meta_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "call_id": "call-1",
        "trace_id": "trace-1",
        "port": 20000,
        "output_uri": "file://out.wav",
        "format": "wav",
        "sample_rate": 8000,
        "channels": 2,
        "source_rate": 8000,
        "started_at": "2024-05-06T07:08:09.000Z",
    }
    fields.update(overrides)
    return fields


def frames(caller: np.ndarray, bot: np.ndarray) -> bytes:
    return np.column_stack((caller, bot)).astype("<i2").tobytes()


def read_meta(entry: SpoolEntry) -> dict[str, Any]:
    return json.loads((entry.folder / "meta.json").read_text())


def test_create_makes_a_folder_with_meta_and_an_empty_audio_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    entry = spool.create(meta_fields())
    try:
        assert entry.folder.parent == tmp_path / "spool"
        assert entry.folder.name == entry.meta.recording_id
        assert entry.audio_path.exists()
        assert entry.audio_path.stat().st_size == 0
        meta = read_meta(entry)
        assert meta["state"] == "recording"
        assert meta["output_uri"] == "file://out.wav"
        assert meta["recording_id"] == entry.meta.recording_id
        assert RecordingMeta(**meta) == entry.meta
        assert not (entry.folder / "meta.json.tmp").exists()
    finally:
        entry.close()


def test_two_entries_get_different_folders(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    first, second = spool.create(meta_fields()), spool.create(meta_fields())
    assert first.folder != second.folder
    first.close()
    second.close()


def test_append_is_on_disk_immediately_without_close(tmp_path: Path) -> None:
    entry = Spool(tmp_path / "spool").create(meta_fields())
    caller = np.arange(800, dtype=np.int16)
    bot = -np.arange(800, dtype=np.int16)
    entry.append(frames(caller[:300], bot[:300]))
    entry.append(frames(caller[300:], bot[300:]))
    # Another reader sees everything before close(): a killed process loses nothing written.
    data = np.frombuffer(entry.audio_path.read_bytes(), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(data[:, 0], caller)
    assert np.array_equal(data[:, 1], bot)
    assert entry.audio_samples() == 800
    entry.close(sync=True)
    assert entry.audio_path.stat().st_size == 800 * FRAME_BYTES


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    entry = Spool(tmp_path / "spool").create(meta_fields())
    entry.close()
    with pytest.raises(RuntimeError, match="not open"):
        entry.append(b"\x00" * 4)
    entry.close()  # closing twice is harmless


def test_save_meta_persists_changes(tmp_path: Path) -> None:
    entry = Spool(tmp_path / "spool").create(meta_fields())
    entry.close()
    entry.meta.state = "stopped"
    entry.meta.samples = 12345
    entry.save_meta()
    meta = read_meta(entry)
    assert meta["state"] == "stopped"
    assert meta["samples"] == 12345
    assert RecordingMeta(**meta).duration_ms == 12345 * 1000 // 8000


def test_duration_ms_follows_the_source_rate() -> None:
    meta = RecordingMeta(recording_id="x", **meta_fields(source_rate=16000), samples=16000 * 3)
    assert meta.duration_ms == 3000
    assert RecordingMeta(recording_id="x", **meta_fields(source_rate=0)).duration_ms == 0


def test_entries_are_oldest_first_and_skip_what_is_not_a_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "spool"
    spool = Spool(root)
    made = [spool.create(meta_fields(call_id=f"call-{i}")) for i in range(3)]
    for entry in made:
        entry.close()
    # Make the last one the oldest.
    for age, entry in zip((100, 200, 300), made, strict=True):
        stamp = 1_700_000_000 - age
        os.utime(entry.folder, (stamp, stamp))
    (root / "outbox").mkdir()  # the event outbox lives beside the recordings
    (root / "stray-file").write_text("x")
    broken = root / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    missing_field = root / "missing-field"
    missing_field.mkdir()
    (missing_field / "meta.json").write_text(json.dumps({"recording_id": "y"}))
    with caplog.at_level(logging.ERROR):
        found = spool.entries()
    assert [e.meta.call_id for e in found] == ["call-2", "call-1", "call-0"]
    assert "broken" in caplog.text
    assert "missing-field" in caplog.text
    assert broken.exists()  # left alone, not deleted


def test_entries_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert Spool(tmp_path / "nothing").entries() == []


def test_remove_deletes_the_folder(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    entry = spool.create(meta_fields())
    entry.append(b"\x01\x00\x02\x00")
    entry.remove()
    assert not entry.folder.exists()
    assert spool.entries() == []


# ---- recovery ------------------------------------------------------------------------


class ListPublisher:
    waiting = 0

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish(self, routing_key: str, body: dict[str, Any]) -> bool:
        self.messages.append((routing_key, body))
        return True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _recordings(tmp_path: Path) -> tuple[Recordings, ListPublisher, list[MediaEvent]]:
    settings = load_settings(recordings_path=tmp_path / "recordings")
    publisher = ListPublisher()
    bus = EventBus()
    events: list[MediaEvent] = []
    bus.subscribe(events.append)
    recordings = Recordings(
        settings, Spool(settings.spool_dir), RecordingStore(settings), publisher, bus
    )
    return recordings, publisher, events


async def test_recording_left_by_a_dead_process_is_finished_stored_and_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "recordings" / ".spool")
    entry = spool.create(
        meta_fields(output_uri="file://crashed/call.wav", call_id="call-crash", trace_id="t-9")
    )
    rng = np.random.default_rng(1)
    caller = rng.integers(-8000, 8000, 12000).astype(np.int16)
    bot = rng.integers(-8000, 8000, 12000).astype(np.int16)
    entry.append(frames(caller, bot))
    entry.append(b"\x07\x00\x07")  # a frame cut short by the kill
    os.close(entry._fd)  # the process died: nothing was closed properly
    assert read_meta(entry)["state"] == "recording"

    recordings, publisher, events = _recordings(tmp_path)
    with caplog.at_level(logging.WARNING):
        recordings.start_background()
        try:
            target = tmp_path / "recordings" / "crashed" / "call.wav"
            assert await wait_until(lambda: publisher.messages, within=10)
        finally:
            await recordings.stop_background()
    assert "recovering recording file://crashed/call.wav of call call-crash" in caplog.text
    with wave.open(str(target), "rb") as handle:
        assert handle.getnchannels() == 2
        assert handle.getframerate() == 8000
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(data[:, 0], caller)
    assert np.array_equal(data[:, 1], bot)
    [(key, body)] = publisher.messages
    assert key == "call.recording.available"
    assert body["callId"] == "call-crash"
    assert body["traceId"] == "t-9"
    assert body["recordingUri"] == "file://crashed/call.wav"
    assert body["durationMs"] == 1500
    assert [e.kind for e in events] == ["recording_available"]
    assert not entry.folder.exists()
    assert recordings.stored == 1


async def test_stopped_entry_whose_store_failed_is_retried_in_the_background(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "recordings" / ".spool")
    entry = spool.create(meta_fields(output_uri="file://later.wav", channels=1))
    entry.append(frames(np.full(800, 1000, np.int16), np.full(800, 2000, np.int16)))
    entry.close()
    entry.meta.state = "stopped"
    entry.meta.samples = 800
    entry.save_meta()
    recordings, publisher, _ = _recordings(tmp_path)
    recordings.start_background()
    try:
        assert await wait_until(lambda: publisher.messages, within=10)
    finally:
        await recordings.stop_background()
    with wave.open(str(tmp_path / "recordings" / "later.wav"), "rb") as handle:
        assert handle.getnchannels() == 1
        mixed = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    assert len(mixed) == 800
    assert np.all(mixed == 3000)
    assert spool.entries() == []


async def test_recording_killed_before_any_audio_is_finished_as_an_empty_file(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "recordings" / ".spool")
    entry = spool.create(meta_fields(output_uri="file://no-audio.wav", channels=1))
    entry.close()
    entry.audio_path.unlink()
    recordings, publisher, _ = _recordings(tmp_path)
    recordings.start_background()
    try:
        assert await wait_until(lambda: publisher.messages, within=2)
    finally:
        await recordings.stop_background()
    with wave.open(str(tmp_path / "recordings" / "no-audio.wav"), "rb") as handle:
        assert handle.getnframes() == 0
    assert spool.entries() == []
