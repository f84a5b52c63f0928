"""The recording index: the worker writes it next to a source's segments (continuous recording, or
a record-mode source's WHIP publisher), the API lists it (`GET /api/sources/<id>/recordings`).
msgspec only: the API process never imports PyAV.

In `<record.dir>/<source-id>/`, each file replaced atomically (temporary file + rename):
- segments `20261126T130512.345Z.mp4` (UTC start, millisecond precision: names sort in time order);
- `index.json`: a SegmentIndex, oldest segment first, rewritten when a segment opens or closes and
  after retention deleted some;
- `open.json`: the open segment's SegmentEntry, rewritten about once a second while it grows and
  removed when it closes, so a listing shows the open segment's growth between index writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import msgspec

INDEX_NAME = "index.json"
OPEN_NAME = "open.json"
INDEX_SCHEMA = 1
_NAME_FORMAT = "%Y%m%dT%H%M%S"
_NAME_LENGTH = len("20261126T130512.345Z.mp4")
_T = TypeVar("_T")


class SegmentEntry(msgspec.Struct, rename="camel", kw_only=True):
    file: str  # a bare file name in the source's recording directory
    start: str  # RFC 3339 UTC, wall clock when the segment's first packet arrived
    duration_sec: float = 0.0
    bytes: int = 0
    open: bool = False


class SegmentIndex(msgspec.Struct, rename="camel", kw_only=True):
    schema: int = INDEX_SCHEMA
    source_id: str = ""
    segments: list[SegmentEntry] = []


class RecordingItem(msgspec.Struct, rename="camel", kw_only=True):
    """One segment as the API lists it; `bytes` is the file's size when listed."""

    start: str
    duration_sec: float
    bytes: int
    url: str
    open: bool


def segment_name(when: datetime) -> str:
    """`20261126T130512.345Z.mp4`: UTC, millisecond precision, sorts in time order."""
    when = when.astimezone(UTC)
    return f"{when.strftime(_NAME_FORMAT)}.{when.microsecond // 1000:03d}Z.mp4"


def parse_segment_name(name: str) -> datetime | None:
    if not name.endswith("Z.mp4") or len(name) != _NAME_LENGTH:
        return None
    try:
        stamp = datetime.strptime(name[:15], _NAME_FORMAT).replace(tzinfo=UTC)
        return stamp + timedelta(milliseconds=int(name[16:19]))
    except ValueError:
        return None


def _decode(path: Path, kind: type[_T]) -> _T | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=kind)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def read_index(directory: Path) -> SegmentIndex | None:
    return _decode(directory / INDEX_NAME, SegmentIndex)


def read_open_state(directory: Path) -> SegmentEntry | None:
    return _decode(directory / OPEN_NAME, SegmentEntry)


def current_segments(directory: Path) -> list[SegmentEntry]:
    """The index with the open segment's fresher state merged in, in name (= time) order.

    Only the segment `open.json` names is open: an index entry still marked open without it was
    closed when the index could not be rewritten (a full disk), or by a worker killed since."""
    index = read_index(directory)
    entries = {e.file: e for e in (index.segments if index is not None else [])}
    live = read_open_state(directory)
    live_file = live.file if live is not None and live.open else None
    for name, entry in entries.items():
        if entry.open and name != live_file:
            entries[name] = msgspec.structs.replace(entry, open=False)
    if live is not None and live_file is not None:
        known = entries.get(live_file)
        if known is None or known.open:  # a closed entry in the index is newer news than open.json
            entries[live_file] = live
    return [entries[name] for name in sorted(entries)]
