"""Recordings: from `StartRecording` to a stored file and its announcement.

Start validates the request, opens a spool entry and hangs a `Timeline` on the
session. Stop closes the timeline at the current clock position, then
finalises: encode the spooled audio, store it at the target, put the
`call.recording.available` message in the outbox, and only then delete the
spool. When storing fails the caller gets the error, the spool stays, and the
background retry keeps trying (with backoff) until the recording is stored and
announced. At start-up, spool entries left by a process that died are finished
the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sentiric_media.audio.encode import FORMATS, RATES, encode_recording
from sentiric_media.audio.timeline import Timeline
from sentiric_media.config import Settings
from sentiric_media.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MediaError,
    Unavailable,
)
from sentiric_media.events.broker import (
    RECORDING_AVAILABLE,
    Publisher,
    recording_available,
    rfc3339,
)
from sentiric_media.events.bus import EventBus, MediaEvent
from sentiric_media.media.session import MediaSession
from sentiric_media.storage.spool import Spool, SpoolEntry
from sentiric_media.storage.store import RecordingStore
from sentiric_media.storage.targets import FileTarget, S3Target, Target, parse_target

log = logging.getLogger(__name__)


@dataclass
class ActiveRecording:
    entry: SpoolEntry
    timeline: Timeline
    target: Target


@dataclass(frozen=True)
class StoredRecording:
    uri: str
    duration_ms: int


class Recordings:
    """Every running and unfinished recording of the process."""

    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        store: RecordingStore,
        publisher: Publisher,
        bus: EventBus,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.store = store
        self.publisher = publisher
        self.bus = bus
        self.active: dict[int, ActiveRecording] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retry_wakeup = asyncio.Event()
        self._retry_task: asyncio.Task[None] | None = None
        self.stored = 0
        self.failures = 0
        self.spooled_waiting = 0

    # ---- start / stop ----------------------------------------------------------------

    async def start(
        self,
        session: MediaSession,
        output_uri: str,
        sample_rate: int | None,
        fmt: str | None,
        channels: int | None,
        trace_id: str,
    ) -> None:
        if session.port in self.active:
            raise AlreadyExists(f"a recording is already running on RTP port {session.port}")
        fmt = _format(fmt, output_uri)
        rate = 8000 if sample_rate is None else sample_rate
        if rate not in RATES:
            raise InvalidArgument(f"sample_rate {rate} is not supported; use one of {RATES}")
        channels = 1 if channels is None else channels
        if channels not in (1, 2):
            raise InvalidArgument(f"channels {channels} must be 1 (mixed) or 2 (caller, bot)")
        if not output_uri:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            output_uri = f"file://{session.call_id or session.port}-{stamp}.{fmt}"
        target = parse_target(
            output_uri,
            self.settings.recordings_path,
            self.settings.bucket_name,
            self.settings.s3_configured,
        )
        if isinstance(target, FileTarget) and _inside(target.path, self.settings.spool_dir):
            raise InvalidArgument(f"output_uri {output_uri!r} points into the spool folder")
        if isinstance(target, S3Target):
            await self.store.check_bucket(target)
        if session.port in self.active:
            raise AlreadyExists(f"a recording is already running on RTP port {session.port}")
        if session.closed:
            raise FailedPrecondition(f"the session on RTP port {session.port} has ended")
        entry = self.spool.create(
            {
                "call_id": session.call_id,
                "trace_id": trace_id or session.trace_id,
                "port": session.port,
                "output_uri": output_uri,
                "format": fmt,
                "sample_rate": rate,
                "channels": channels,
                "source_rate": session.rate,
                "started_at": rfc3339(),
            }
        )
        window = int(self.settings.recording_window_seconds * session.rate)
        # Final audio reaches the spool every 100 ms: a crash loses at most the window.
        timeline = Timeline(
            session.position_now(), window, entry.append, flush_block=session.rate // 10
        )
        session.attach_recorder(timeline)
        self.active[session.port] = ActiveRecording(entry, timeline, target)
        session.log.info("recording to %s (%s, %d Hz, %d ch)", output_uri, fmt, rate, channels)

    async def stop(self, session: MediaSession) -> StoredRecording:
        """End the recording and store it; raises the storage error if that fails."""
        recording = self.active.pop(session.port, None)
        if recording is None:
            raise FailedPrecondition(f"no recording is running on RTP port {session.port}")
        if session.recorder is not None and session.recorder.timeline is recording.timeline:
            session.detach_recorder()
        entry = recording.entry
        entry.meta.samples = recording.timeline.finish(session.position_now())
        entry.meta.state = "stopped"
        await asyncio.to_thread(_close_entry, entry)
        return await self.finalize(entry, recording.target)

    # ---- finalising ----------------------------------------------------------------

    async def finalize(self, entry: SpoolEntry, target: Target | None = None) -> StoredRecording:
        lock = self._locks.setdefault(entry.meta.recording_id, asyncio.Lock())
        async with lock:
            if not entry.folder.exists():  # another attempt finished it meanwhile
                return StoredRecording(entry.meta.output_uri, entry.meta.duration_ms)
            try:
                return await self._finalize(entry, target)
            except MediaError as exc:
                self.failures += 1
                log.warning(
                    "recording %s not stored yet (%s); it stays spooled and is retried",
                    entry.meta.output_uri,
                    exc,
                )
                self._retry_wakeup.set()
                raise
            finally:
                self._locks.pop(entry.meta.recording_id, None)

    async def _finalize(self, entry: SpoolEntry, target: Target | None) -> StoredRecording:
        meta = entry.meta
        if target is None:
            target = parse_target(
                meta.output_uri, self.settings.recordings_path, self.settings.bucket_name, True
            )
        encoded = entry.folder / f"recording.{meta.format}"
        started = time.monotonic()
        # A process killed between creating the entry and its first audio left no file.
        await asyncio.to_thread(entry.audio_path.touch, exist_ok=True)
        await asyncio.to_thread(
            encode_recording,
            entry.audio_path,
            meta.source_rate,
            encoded,
            meta.format,
            meta.sample_rate,
            meta.channels,
        )
        await self.store.put(encoded, target)
        meta.stored_uri = target.uri
        size = encoded.stat().st_size
        message = recording_available(
            trace_id=meta.trace_id,
            call_id=meta.call_id,
            recording_uri=meta.output_uri,
            extra={
                "durationMs": meta.duration_ms,
                "sampleRate": meta.sample_rate,
                "channels": meta.channels,
                "format": meta.format,
                "sizeBytes": size,
            },
        )
        if not self.publisher.publish(RECORDING_AVAILABLE, message):
            raise Unavailable(
                f"broker unreachable and the event outbox is full; {meta.output_uri} is stored "
                "but stays spooled until its event can be queued"
            )
        self.bus.publish(
            MediaEvent(
                "recording_available",
                meta.call_id,
                meta.port,
                meta.trace_id,
                0,
                {"recording_uri": meta.output_uri, "duration_ms": meta.duration_ms},
            )
        )
        await asyncio.to_thread(entry.remove)
        self.stored += 1
        log.info(
            "recording stored at %s (%d ms of audio, %d bytes, %.0f ms to store)",
            meta.output_uri,
            meta.duration_ms,
            size,
            (time.monotonic() - started) * 1000,
        )
        return StoredRecording(meta.output_uri, meta.duration_ms)

    # ---- recovery and retry ----------------------------------------------------------

    def start_background(self) -> None:
        """Finish what a previous process left in the spool, and keep retrying failures."""
        for entry in self.spool.entries():
            if entry.meta.state == "recording":
                entry.meta.samples = entry.audio_samples()
                entry.meta.state = "stopped"
                entry.save_meta()
                log.warning(
                    "recovering recording %s of call %s left by a stopped process (%d ms spooled)",
                    entry.meta.output_uri,
                    entry.meta.call_id,
                    entry.meta.duration_ms,
                )
        self._retry_wakeup.set()
        self._retry_task = asyncio.get_running_loop().create_task(self._retry_forever())

    async def stop_background(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            await asyncio.gather(self._retry_task, return_exceptions=True)

    async def _retry_forever(self) -> None:
        delay = 1.0
        while True:
            self._retry_wakeup.clear()
            waiting = [e for e in self.spool.entries() if e.meta.state == "stopped"]
            self.spooled_waiting = len(waiting)
            failed = False
            for entry in waiting:
                try:
                    await self.finalize(entry)
                except MediaError:
                    failed = True
                except Exception:
                    failed = True
                    log.exception("finishing spooled recording %s failed", entry.folder.name)
            if not failed:
                self.spooled_waiting = 0
            delay = min(delay * 2, self.settings.storage_retry_max_seconds) if failed else 1.0
            if failed:
                await asyncio.sleep(delay)
            else:
                await self._retry_wakeup.wait()
                await asyncio.sleep(1.0)


def _close_entry(entry: SpoolEntry) -> None:
    entry.close(sync=True)
    entry.save_meta()


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(folder)) in Path(os.path.realpath(path)).parents


def _format(fmt: str | None, output_uri: str) -> str:
    if fmt:
        name = fmt.lower().lstrip(".")
        if name not in FORMATS:
            raise InvalidArgument(f"format {fmt!r} is not supported; use one of {tuple(FORMATS)}")
        return name
    suffix = Path(output_uri.split("?", 1)[0]).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "wav"
