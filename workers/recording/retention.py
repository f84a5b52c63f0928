"""Retention: keeps a directory of recordings or artifacts under an age limit, a total-size limit
and above a free-space floor, deleting its oldest files first.

One call does one sweep; callers run it off the media hot path (a timer thread), e.g.

    deleted = sweep(segment_dir, record.retention, owned=lambda name: parse_segment_name(name) is not None)

Only files this server named go (`owned`, a test of the bare file name), directly in the
directory: an operator may point a snapshots folder at a shared one, and what others put there is
not ours to delete. An `index.json`, temporary files (names that start with a dot), symlinks and
subdirectories are never touched. Files that are still being written are passed in `keep`: they
count towards the total but are never deleted. `keep` may be a callable, which is then asked after
the directory has been listed, so a file opened while the sweep runs can never be deleted by it
(it is either not listed yet or already in `keep`).

The free-space floor (`minFreeMb`) makes room before the disk is full, so recording goes on when
something else fills the disk, at the cost of the oldest recordings.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from protocol.config import RetentionConfig
from workers.recording.write_health import bytes_free

log = logging.getLogger("icey.retention")

MB = 1024 * 1024

Keep = Collection[Path] | Callable[[], Collection[Path]]
Owned = Callable[[str], bool]


@dataclass(frozen=True)
class MediaFile:
    path: Path
    mtime: float
    size: int


def list_owned(directory: Path, owned: Owned) -> list[MediaFile]:
    """The regular files directly in `directory` whose names `owned` accepts, oldest first."""
    found: list[MediaFile] = []
    try:
        names = os.listdir(directory)
    except OSError:  # missing or unreadable: nothing to sweep
        return []
    for name in names:
        if name.startswith(".") or not owned(name):
            continue
        path = directory / name
        try:
            st = os.lstat(path)
        except OSError:  # gone meanwhile
            continue
        if stat.S_ISREG(st.st_mode):
            found.append(MediaFile(path, st.st_mtime, st.st_size))
    found.sort(key=lambda f: (f.mtime, str(f.path)))
    return found


def _normalized(paths: Collection[Path]) -> set[str]:
    return {os.path.abspath(p) for p in paths}


def sweep(directory: Path, retention: RetentionConfig, owned: Owned, keep: Keep = (),
          now: float | None = None) -> list[Path]:
    """Deletes, oldest first, the files older than `retention.max_age_hours`, then as many as it
    takes to bring the total under `retention.max_total_mb` (MiB) and the free space on the disk
    over `retention.min_free_mb` (MiB). A limit of 0 is off. Returns the deleted paths, oldest
    first. Never raises for a file that vanished or cannot be deleted (it is logged and counted
    as still there)."""
    max_age = max(retention.max_age_hours, 0.0) * 3600.0
    max_bytes = max(retention.max_total_mb, 0) * MB
    min_free = max(retention.min_free_mb, 0) * MB
    if not max_age and not max_bytes and not min_free:
        return []
    files = list_owned(directory, owned)
    if not files:
        return []
    kept = _normalized(keep() if callable(keep) else keep)
    cutoff = (time.time() if now is None else now) - max_age
    total = sum(f.size for f in files)
    free = bytes_free(directory) if min_free else None
    deleted: list[Path] = []
    for f in files:
        expired = bool(max_age) and f.mtime < cutoff
        over = bool(max_bytes) and total > max_bytes
        short = free is not None and free < min_free
        if not (expired or over or short):
            break  # every later file is newer (not expired either), and the total only shrinks
        if os.path.abspath(f.path) in kept:
            continue
        try:
            f.path.unlink()
        except FileNotFoundError:
            pass  # somebody else was quicker: it is gone all the same
        except OSError as exc:
            log.warning("retention: cannot delete %s: %s", f.path.name, exc)
            continue
        total -= f.size
        if free is not None:
            free += f.size
        deleted.append(f.path)
    if deleted:
        log.info("retention: deleted %d file(s) in %s (%.1f MB left)", len(deleted), directory.name, total / MB)
    return deleted
