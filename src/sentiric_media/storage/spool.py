"""The spool: recordings on local disk until they are stored at their target.

Each recording is a folder under the spool root: `meta.json` (what was asked,
and whether the recording is still running) and `audio.s16` (the timeline's
final audio, interleaved 16-bit caller/bot frames, appended as it becomes
final). Audio goes straight to the file descriptor, so a killed process loses
nothing already written; on start-up, folders still marked `recording` are
recordings of a process that died, and are finished from what the file holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FRAME_BYTES = 4  # one int16 sample per leg


@dataclass
class RecordingMeta:
    """What a recording is and where it goes; persisted as meta.json."""

    recording_id: str
    call_id: str
    trace_id: str
    port: int
    output_uri: str
    format: str
    sample_rate: int
    channels: int
    source_rate: int
    started_at: str
    state: str = "recording"
    samples: int = 0
    stored_uri: str = ""

    @property
    def duration_ms(self) -> int:
        return self.samples * 1000 // self.source_rate if self.source_rate else 0


class SpoolEntry:
    """One recording's folder."""

    def __init__(self, folder: Path, meta: RecordingMeta) -> None:
        self.folder = folder
        self.meta = meta
        self._fd: int | None = None

    @property
    def audio_path(self) -> Path:
        return self.folder / "audio.s16"

    def open(self) -> None:
        self._fd = os.open(self.audio_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def append(self, data: bytes) -> None:
        """Add final audio; a plain write to the descriptor, so it survives a crash."""
        if self._fd is None:
            raise RuntimeError(f"spool {self.folder.name} is not open for writing")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self, sync: bool = True) -> None:
        if self._fd is not None:
            if sync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def save_meta(self) -> None:
        temporary = self.folder / "meta.json.tmp"
        temporary.write_text(json.dumps(asdict(self.meta), indent=1))
        os.replace(temporary, self.folder / "meta.json")

    def audio_samples(self) -> int:
        return self.audio_path.stat().st_size // FRAME_BYTES if self.audio_path.exists() else 0

    def remove(self) -> None:
        self.close(sync=False)
        shutil.rmtree(self.folder, ignore_errors=True)


class Spool:
    """The spool root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, meta_fields: dict) -> SpoolEntry:
        self.root.mkdir(parents=True, exist_ok=True)
        recording_id = uuid.uuid4().hex
        folder = self.root / recording_id
        folder.mkdir()
        entry = SpoolEntry(folder, RecordingMeta(recording_id=recording_id, **meta_fields))
        entry.save_meta()
        entry.open()
        return entry

    def entries(self) -> list[SpoolEntry]:
        """Every recording in the spool, oldest first; unreadable folders are logged."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(self.root.iterdir(), key=_mtime):
            meta_file = folder / "meta.json"
            if not meta_file.is_file():
                continue
            try:
                meta = RecordingMeta(**json.loads(meta_file.read_text()))
            except (ValueError, TypeError) as exc:
                log.error(
                    "spool folder %s has an unreadable meta.json (%s); left alone", folder, exc
                )
                continue
            found.append(SpoolEntry(folder, meta))
        return found


def _mtime(path: Path) -> float:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return 0.0
