"""Retention: keeps a directory of recordings or artifacts under an age and a total-size limit by
deleting its oldest files first.

One call does one sweep; callers run it off the media hot path (a timer thread), e.g.

    deleted = sweep(Path(record_dir) / "snapshots", settings.intelligence.artifacts.retention)

Only media files (`SWEPT_SUFFIXES`) count and go: an `index.json`, temporary files (names that
start with a dot) and symlinks are never touched. Files that are still being written are passed
in `keep`: they count towards the total but are never deleted. `keep` may be a callable, which
is then asked after the directory has been listed, so a file opened while the sweep runs can
never be deleted by it (it is either not listed yet or already in `keep`).
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

log = logging.getLogger("icey.retention")

SWEPT_SUFFIXES = frozenset({".mp4", ".jpg", ".jpeg", ".png"})
MB = 1024 * 1024

Keep = Collection[Path] | Callable[[], Collection[Path]]


@dataclass(frozen=True)
class MediaFile:
    path: Path
    mtime: float
    size: int


def list_media(root: Path) -> list[MediaFile]:
    """The media files under `root` (recursive, symlinks not followed), oldest first."""
    found: list[MediaFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in SWEPT_SUFFIXES:
                continue
            path = Path(dirpath) / name
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


def sweep(root: Path, retention: RetentionConfig, keep: Keep = (), now: float | None = None) -> list[Path]:
    """Deletes, oldest first, the files older than `retention.max_age_hours` and then as many
    as it takes to bring the total under `retention.max_total_mb` (MiB). A limit of 0 is off.
    Returns the deleted paths (as listed under `root`), oldest first. Never raises for a file
    that vanished or cannot be deleted (it is logged and counted as still there)."""
    max_age = max(retention.max_age_hours, 0.0) * 3600.0
    max_bytes = max(retention.max_total_mb, 0) * MB
    if not max_age and not max_bytes:
        return []
    files = list_media(root)
    if not files:
        return []
    kept = _normalized(keep() if callable(keep) else keep)
    cutoff = (time.time() if now is None else now) - max_age
    total = sum(f.size for f in files)
    deleted: list[Path] = []
    for f in files:
        expired = bool(max_age) and f.mtime < cutoff
        over = bool(max_bytes) and total > max_bytes
        if not (expired or over):
            break  # every later file is newer (not expired either) and the total only shrinks
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
        deleted.append(f.path)
    if deleted:
        log.info("retention: deleted %d file(s) under %s (%.1f MB left)", len(deleted), root.name, total / MB)
    return deleted
