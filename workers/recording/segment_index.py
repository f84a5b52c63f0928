"""The worker's side of a source's recording index (its format: protocol/recordings.py): the
entries in memory, `index.json` and `open.json` replaced atomically, and the recovery a worker
restarted after a crash or kill -9 does: it closes the interrupted segment's entry, indexes any
segment file the index missed (killed between creating the file and writing the index), and
removes what plays nothing (a header without a fragment) and temporary files left behind.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

import av
import msgspec

from protocol.recordings import (
    INDEX_NAME,
    OPEN_NAME,
    SegmentEntry,
    SegmentIndex,
    parse_segment_name,
    read_index,
    read_open_state,
)
from protocol.times import rfc3339
from workers.recording.fmp4 import has_fragment

log = logging.getLogger("icey.recording")

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, data: bytes) -> None:
    """Raises OSError; a failed write (a full disk) leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def probe_duration(path: Path) -> float | None:
    """The end of the last packet in a (possibly truncated) segment; demux only, no decode."""
    try:
        with av.open(str(path)) as container:
            end = 0.0
            for pkt in container.demux():
                if pkt.pts is not None and pkt.time_base is not None:
                    end = max(end, float((pkt.pts + (pkt.duration or 0)) * pkt.time_base))
            return round(end, 3)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


class SegmentIndexFiles:
    """Not thread-safe: the segment store calls it with its lock held."""

    def __init__(self, directory: Path, source_id: str) -> None:
        self.directory, self.source_id = directory, source_id
        self.entries: list[SegmentEntry] = []  # oldest first; the open one last
        self.dirty = False  # index.json is behind `entries` (its last write failed)
        self._warned: set[str] = set()

    def add(self, entry: SegmentEntry) -> None:
        self.entries.append(entry)

    def remove(self, entry: SegmentEntry) -> None:
        self.entries = [e for e in self.entries if e is not entry]

    def forget(self, names: set[str]) -> None:
        """Entries of files that retention deleted."""
        self.entries = [e for e in self.entries if e.file not in names]

    def knows(self, name: str) -> bool:
        return any(e.file == name for e in self.entries)

    def write_index(self) -> OSError | None:
        """None when written, else the error (and `dirty` stays set until a write succeeds)."""
        index = SegmentIndex(source_id=self.source_id, segments=self.entries)
        try:
            write_atomic(self.directory / INDEX_NAME, msgspec.json.encode(index))
        except OSError as exc:
            self.dirty = True
            self._warn_once("index", "cannot write the recording index: %s", exc)
            return exc
        self.dirty = False
        return None

    def write_open(self, entry: SegmentEntry) -> None:
        try:
            entry.bytes = (self.directory / entry.file).stat().st_size
            write_atomic(self.directory / OPEN_NAME, msgspec.json.encode(entry))
        except OSError as exc:
            self._warn_once("open-state", "cannot write the open segment's state: %s", exc)

    def remove_open(self) -> None:
        try:
            (self.directory / OPEN_NAME).unlink(missing_ok=True)
        except OSError:
            pass

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def recover_entries(directory: Path, before: datetime) -> list[SegmentEntry]:
    """The closed entries of the segments a previous worker left in `directory` (named before
    `before`, when this worker started), oldest first, from its index and the files themselves.
    Slow after a lost index (every unindexed file is demuxed): run it off the event loop.
    Raises OSError when the directory cannot be read."""
    index = read_index(directory)
    open_state = read_open_state(directory)
    started = before.timestamp()
    entries: list[SegmentEntry] = []

    def left_before(name: str) -> bool:
        when = parse_segment_name(name)
        return when is not None and when < before

    def playable(path: Path) -> bool:
        if has_fragment(path):
            return True
        path.unlink(missing_ok=True)  # a header alone (a full disk, a kill at the start)
        return False

    for entry in index.segments if index is not None else []:
        path = directory / entry.file
        if not left_before(entry.file) or not path.is_file() or not playable(path):
            continue
        if entry.open:
            entry.open = False
            if open_state is not None and open_state.file == entry.file:
                entry.duration_sec = max(entry.duration_sec, open_state.duration_sec)
            probed = probe_duration(path)
            if probed is not None:
                entry.duration_sec = probed
        entry.bytes = path.stat().st_size
        entries.append(entry)
    known = {e.file for e in entries}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") and path.name.endswith(TMP_SUFFIX) and path.stat().st_mtime < started:
            path.unlink(missing_ok=True)  # an index or open state write the kill interrupted
            continue
        if path.suffix != ".mp4" or path.name in known or not left_before(path.name) or not path.is_file():
            continue
        when = parse_segment_name(path.name)
        if when is None or not playable(path):
            continue
        entries.append(SegmentEntry(file=path.name, start=rfc3339(when), duration_sec=probe_duration(path) or 0.0,
                                    bytes=path.stat().st_size))
    entries.sort(key=lambda e: e.file)  # names sort in time order
    return entries
