"""A source's recorded segments on disk, `<record.dir>/<source-id>/<UTC start>.mp4`, and their
index (protocol/recordings.py), whichever recorder fills them: the continuous recorder
(segments.py, the source's own packets) or the WHIP recorder (whip_recorder.py, a record-mode
source's publisher). One recorder at a time writes one open segment.

The store names segments, keeps the index, tells whether writing works (WriteHealth: the status
and the record.failed / record.resumed events) and runs the source's recording thread:
- first the recovery of what a previous worker left, off the event loop, since it demuxes every
  segment a lost index.json no longer lists (index writes wait for it; recording does not);
- then retention every 30 s, after each segment closes, and as soon as the free space drops
  under `minFreeMb`; and the rewrite of an index a full disk kept from being written.

After a write failure the recorder closes its segment (what plays stays, a header alone is
removed) and may start a new one after FAILURE_BACKOFF_SEC: recording resumes by itself once
the disk has room again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocol.config import RecordConfig
from protocol.recordings import SegmentEntry, parse_segment_name, segment_name
from protocol.times import rfc3339
from workers.recording.fmp4 import Fmp4Writer
from workers.recording.retention import sweep
from workers.recording.segment_index import SegmentIndexFiles, recover_entries
from workers.recording.write_health import Emit, WriteHealth
from workers.threads import GUARD

log = logging.getLogger("icey.recording")

MIN_SEGMENT_SECONDS = 0.5
OPEN_STATE_INTERVAL_SEC = 1.0
RETENTION_INTERVAL_SEC = 30.0
TICK_SEC = 2.0  # free space and a pending index rewrite are looked at this often
FAILURE_BACKOFF_SEC = 5.0
RESUME_AFTER_SEC = 1.0  # a second muxed without an error: its fragments (every 0.5 s) reached the disk


def is_segment_name(name: str) -> bool:
    """What retention may delete in a source's recording directory: the segments it named."""
    return parse_segment_name(name) is not None


class Segment:
    """The open segment: its writer and its index entry."""

    def __init__(self, writer: Fmp4Writer, entry: SegmentEntry) -> None:
        self.writer, self.entry = writer, entry
        self.writes = 0

    @property
    def path(self) -> Path:
        return self.writer.path


class SegmentStore:
    def __init__(self, source_id: str, record: RecordConfig, emit: Emit | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.source_id = source_id
        self.directory = Path(record.dir or ".") / source_id
        self.segment_seconds = max(float(record.segment_seconds), MIN_SEGMENT_SECONDS)
        self.retention = record.retention
        self.health = WriteHealth("recording", self.directory, emit, on_change)
        self._lock = threading.Lock()
        self._index = SegmentIndexFiles(self.directory, source_id)
        now = datetime.now(UTC)
        self._started = now.replace(microsecond=now.microsecond // 1000 * 1000)  # segment names' precision
        self._recovered = False
        self._open: Segment | None = None
        self._open_written_at = 0.0
        self._retry_at = 0.0
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.recorded_bytes = 0  # cumulative media bytes written, and segments opened: the worker's counters
        self.recorded_segments = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        log.info("recording to %s in segments of %gs", self.directory, self.segment_seconds)
        self._thread = GUARD.thread(f"recording-{self.source_id}", self._run)
        self._thread.start()

    def configure(self, record: RecordConfig) -> None:
        """New segment length and retention while running: the next roll and sweep use them,
        and a sweep runs now (a tighter limit takes effect at once)."""
        self.segment_seconds = max(float(record.segment_seconds), MIN_SEGMENT_SECONDS)
        self.retention = record.retention
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    # -- for the recorder (its own thread) -------------------------------------------------

    def may_start(self) -> bool:
        """False during the back-off after a failure."""
        return time.monotonic() >= self._retry_at

    def new_path(self) -> Path:
        """A free name for a segment starting now. Raises OSError when the directory is unusable."""
        started = datetime.now(UTC)
        with self._lock:
            path = self.directory / segment_name(started)
            while path.exists() or self._index.knows(path.name):
                started += timedelta(milliseconds=1)
                path = self.directory / segment_name(started)
        self.directory.mkdir(parents=True, exist_ok=True)  # an operator may have removed it
        return path

    def opened(self, writer: Fmp4Writer) -> Segment:
        """`writer` (at a `new_path()`) has its tracks: it is the open segment from now on."""
        when = parse_segment_name(writer.path.name) or datetime.now(UTC)
        entry = SegmentEntry(file=writer.path.name, start=rfc3339(when), open=True)
        segment = Segment(writer, entry)
        with self._lock:
            self._index.add(entry)
            self._open = segment
        self.recorded_segments += 1
        return segment

    def wrote(self, segment: Segment, duration_sec: float, size: int) -> None:
        """A packet of `size` bytes went into `segment`, which now lasts `duration_sec`."""
        segment.writes += 1
        self.recorded_bytes += size
        segment.entry.duration_sec = max(segment.entry.duration_sec, round(duration_sec, 3))
        now = time.monotonic()
        first = segment.writes == 1
        if first or now - self._open_written_at >= OPEN_STATE_INTERVAL_SEC:
            with self._lock:
                self._open_written_at = now
                self._index.write_open(segment.entry)  # open.json first: the index never lists it closed
                if first:  # the file exists from the first packet on: list it
                    self._write_index()
        if self.health.failing and duration_sec >= RESUME_AFTER_SEC and not self._index.dirty:
            self.health.succeeded()

    def close(self, segment: Segment, reason: str) -> None:
        """Ends the segment; one that plays nothing leaves the disk and the index."""
        entry = segment.entry
        try:
            entry.bytes = segment.writer.close()
        except Exception as exc:  # e.g. a failed rename: never into the reader or the event loop
            entry.bytes = 0
            self.health.failed(exc)
        entry.open = False
        with self._lock:
            if self._open is segment:
                self._open = None
            if not entry.bytes:
                self._index.remove(entry)
            self._write_index()
            self._index.remove_open()
        log.debug("segment %s closed (%s): %.2fs, %d bytes", entry.file, reason, entry.duration_sec, entry.bytes)
        self._wake.set()  # retention after each segment closes

    def failed(self, segment: Segment | None, exc: BaseException) -> None:
        """Writing `segment` (or starting one: None) failed: close it, report, back off."""
        self._retry_at = time.monotonic() + FAILURE_BACKOFF_SEC
        log.debug("recording failed%s: %s", f" in {segment.path.name}" if segment else "", exc)
        self.health.failed(exc)
        if segment is not None:
            self.close(segment, "failed")
        self._wake.set()  # the free-space floor may make room before the next try

    # -- the recording thread ----------------------------------------------------------------

    def recover(self) -> None:
        """Index what a previous worker left; segments recorded meanwhile stay listed."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            recovered = recover_entries(self.directory, self._started)
        except OSError as exc:  # each segment start tries the directory again
            log.error("recording directory %s unusable: %s", self.directory, exc)
            recovered = []
        with self._lock:
            live = {e.file for e in self._index.entries}
            self._index.entries = sorted([e for e in recovered if e.file not in live] + self._index.entries,
                                         key=lambda e: e.file)
            self._recovered = True
            self._write_index()
            if self._open is None:
                self._index.remove_open()
        self.health.refresh_free()
        if recovered:
            log.info("recovered %d segment(s) in %s", len(recovered), self.directory)

    def open_paths(self) -> set[Path]:
        with self._lock:
            return {self._open.path} if self._open is not None else set()

    def sweep_now(self) -> list[Path]:
        try:
            deleted = sweep(self.directory, self.retention, is_segment_name, keep=self.open_paths)
        except Exception:
            log.exception("retention sweep of %s failed", self.directory)
            return []
        if deleted:
            with self._lock:
                self._index.forget({p.name for p in deleted})
                self._write_index()
        return deleted

    def _run(self) -> None:
        self.recover()
        next_sweep = 0.0
        while True:
            woken = self._wake.wait(TICK_SEC)
            self._wake.clear()
            if self._stopping:
                return
            min_free = self.retention.min_free_mb * 1024 * 1024
            free = self.health.refresh_free()
            short = bool(min_free) and free is not None and free < min_free
            if woken or short or time.monotonic() >= next_sweep:
                self.sweep_now()
                next_sweep = time.monotonic() + RETENTION_INTERVAL_SEC
                self.health.refresh_free()
            if self._index.dirty:
                with self._lock:
                    self._write_index()

    def _write_index(self) -> None:
        """With the lock held. Waits for the recovery, which would otherwise lose what it reads."""
        if not self._recovered:
            return
        error = self._index.write_index()
        if error is not None:
            self.health.failed(error)
