"""The worker's side of a source's recording index (its format: protocol/recordings.py): the
entries in memory, `index.json` and `open.json` replaced atomically, and the recovery a worker
restarted after a crash or kill -9 does: it closes the interrupted segment's entry and indexes
any segment file the index missed (killed between creating the file and writing the index).
"""

from __future__ import annotations

import logging
import os
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

log = logging.getLogger("icey.recording")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
    """Not thread-safe: the recorder calls it with its lock held."""

    def __init__(self, directory: Path, source_id: str) -> None:
        self.directory, self.source_id = directory, source_id
        self.entries: list[SegmentEntry] = []  # oldest first; the open one last
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

    def write_index(self) -> None:
        index = SegmentIndex(source_id=self.source_id, segments=self.entries)
        try:
            write_atomic(self.directory / INDEX_NAME, msgspec.json.encode(index))
        except OSError as exc:
            self._warn_once("index", "cannot write the recording index: %s", exc)

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

    def recover(self) -> None:
        """Raises OSError when the directory cannot be read."""
        index = read_index(self.directory)
        open_state = read_open_state(self.directory)
        entries: list[SegmentEntry] = []
        for entry in index.segments if index is not None else []:
            path = self.directory / entry.file
            if parse_segment_name(entry.file) is None or not path.is_file():
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
        for path in sorted(self.directory.glob("*.mp4")):
            when = parse_segment_name(path.name)
            if when is None or path.name in known:
                continue
            size = path.stat().st_size
            if size == 0:
                path.unlink(missing_ok=True)
                continue
            entries.append(SegmentEntry(file=path.name, start=rfc3339(when),
                                        duration_sec=probe_duration(path) or 0.0, bytes=size))
        entries.sort(key=lambda e: e.file)  # names sort in time order
        self.entries = entries
        self.write_index()
        (self.directory / OPEN_NAME).unlink(missing_ok=True)

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
