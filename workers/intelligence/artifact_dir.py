"""Where a source's snapshots and clips go, and what they are called.

- Names: `<source-id>-<RFC 3339 UTC, filesystem-safe>.jpg|.mp4`, e.g.
  `front-2026-11-26T13-05-12.345Z.mp4`: the source id, never its URL (which may carry
  credentials), and a wall-clock time, so two workers or two loops of a file never collide.
- Where: `vision.snapshots.dir` / `vision.clips.dir`, default `<recordDir>/snapshots|clips`. URLs
  are `/artifacts/<path under recordDir>`; a custom dir outside recordDir gets no URL (None)
  rather than a link that 404s.
- Kill-safety: an artifact is written as `<name>.part` and renamed once complete. At worker start
  (in a thread: the worker reports meanwhile) a leftover `.mp4.part` of this source, older than
  this worker, is kept (renamed) when it has playable video, else removed.
- Retention (`intelligence.artifacts.retention`, with its free-space floor): `sweep` (recording/
  retention.py) on the snapshots dir and on the clips dir, after every artifact and every 10
  minutes. A directory is shared by every source writing to it, so the limit is per directory,
  whichever source's worker happens to sweep; only artifact names of this server's sources are
  counted and deleted (an operator's shared folder keeps its other files), `.part` files never.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import av

from protocol.config import RetentionConfig
from protocol.times import rfc3339
from workers.recording.retention import sweep

log = logging.getLogger("icey.artifacts")

PART = ".part"
SWEEP_EVERY_SEC = 600.0


def artifact_stamp(wall: float) -> str:
    """RFC 3339 UTC with milliseconds, `:` replaced by `-` (not allowed on every filesystem)."""
    return rfc3339(wall).replace(":", "-")


def artifact_name(source_id: str, wall: float, ext: str) -> str:
    return f"{source_id}-{artifact_stamp(wall)}.{ext}"


def artifact_names(source_ids: list[str], part: bool = False) -> re.Pattern[str]:
    """The artifact names of these sources only (`cam` must not match `cam-2-...`), with the
    `.part` suffix of one being written when `part`."""
    ids = "|".join(re.escape(i) for i in source_ids)
    return re.compile(rf"^(?:{ids})-\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?Z(?:-\d+)?"
                      rf"\.(?:jpg|mp4){re.escape(PART) if part else ''}$")


@dataclass(frozen=True)
class ArtifactDir:
    path: Path
    url_prefix: str | None  # "/artifacts/snapshots", or None when the dir is not under recordDir

    @classmethod
    def resolve(cls, record_dir: str, configured: str, default: str) -> ArtifactDir:
        root = Path(record_dir).resolve()
        path = Path(configured).resolve() if configured else root / default
        try:
            rel = path.relative_to(root)
        except ValueError:
            return cls(path, None)
        if rel.parts[:1] == ("recordings",):  # that URL space is the continuous recordings' root
            return cls(path, None)
        parts = [urllib.parse.quote(p) for p in rel.parts]
        return cls(path, "/".join(["/artifacts", *parts]) if parts else "/artifacts")

    def url(self, name: str) -> str | None:
        return f"{self.url_prefix}/{urllib.parse.quote(name)}" if self.url_prefix is not None else None

    def unique(self, source_id: str, wall: float, ext: str) -> Path:
        name = artifact_name(source_id, wall, ext)
        n = 1
        while (self.path / name).exists() or (self.path / (name + PART)).exists():
            name = f"{source_id}-{artifact_stamp(wall)}-{n}.{ext}"
            n += 1
        return self.path / name


def has_playable_video(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            for packet in container.demux(container.streams.video[0]):
                if packet.size and packet.is_keyframe:
                    return True
    except (av.error.FFmpegError, OSError, ValueError):
        return False
    return False


def recover_partials(directory: Path, source_id: str, before: float) -> tuple[int, int]:
    """Leftovers of a killed worker, last written before `before` (this worker's start, so a
    clip it is writing now is never touched): (kept, removed). A partial fragmented MP4 with a
    keyframe plays; anything else (a half-written JPEG, a clip with no fragment yet) is removed."""
    kept = removed = 0
    pattern = artifact_names([source_id], part=True)
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0, 0
    for path in entries:
        if not pattern.match(path.name):
            continue
        final = path.with_name(path.name[:-len(PART)])
        try:
            if path.stat().st_mtime >= before:
                continue
            if final.suffix == ".mp4" and not final.exists() and has_playable_video(path):
                path.rename(final)
                kept += 1
            else:
                path.unlink()
                removed += 1
        except OSError as exc:
            log.warning("cannot tidy %s: %s", path.name, exc)
    return kept, removed


class ArtifactStore:
    """Directories, start-up tidying and retention of one source's artifacts. `source_ids` are
    every configured source's: the directories are shared, and so is their retention."""

    def __init__(self, source_id: str, retention: RetentionConfig, directories: list[ArtifactDir],
                 source_ids: list[str]) -> None:
        self.source_id, self.retention = source_id, retention
        self.directories = directories
        self._ours = artifact_names(source_ids)
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self._started = time.time()
        self._create_directories()

    def _create_directories(self) -> None:
        """Before any writer runs; a failure shows when a write fails."""
        for d in self.directories:
            try:
                d.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("cannot create %s: %s", d.path, exc)

    def start(self) -> None:
        """Tidies what a killed worker left, in a thread: it may take a while on a big folder."""
        threading.Thread(target=self.prepare, name=f"artifacts-{self.source_id}", daemon=True).start()

    def prepare(self) -> None:
        for d in self.directories:
            kept, removed = recover_partials(d.path, self.source_id, self._started)
            if kept or removed:
                log.info("unfinished artifacts in %s: %d kept (playable), %d removed", d.path.name, kept, removed)
        self.maybe_sweep(force=True)

    def owns(self, name: str) -> bool:
        return self._ours.match(name) is not None

    def maybe_sweep(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_sweep < SWEEP_EVERY_SEC:
            return
        self.written()

    def written(self) -> None:
        with self._lock:
            self._last_sweep = time.monotonic()
            for d in self.directories:  # recordings below one are safe: only artifact names go, not recursively
                try:
                    sweep(d.path, self.retention, self.owns)
                except OSError as exc:
                    log.warning("retention of %s failed: %s", d.path, exc)
