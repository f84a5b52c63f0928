"""workers/retention.py: oldest first by age and by total size; open files, index files,
temporary files and symlinks are never deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from protocol.config import RetentionConfig
from workers.recording.retention import MB, list_media, sweep

NOW = 1_800_000_000.0
HOUR = 3600.0


def _file(path: Path, size: int, age_hours: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (NOW - age_hours * HOUR, NOW - age_hours * HOUR))
    return path


def test_age_limit_deletes_only_expired_files_oldest_first(tmp_path):
    old = _file(tmp_path / "cam" / "a.mp4", 10, 5)
    older = _file(tmp_path / "cam" / "b.mp4", 10, 7)
    snap = _file(tmp_path / "snapshots" / "cam" / "s.jpg", 10, 4)
    fresh = _file(tmp_path / "cam" / "c.mp4", 10, 1)
    deleted = sweep(tmp_path, RetentionConfig(max_age_hours=3, max_total_mb=0), now=NOW)
    assert deleted == [older, old, snap]
    assert fresh.exists() and not old.exists() and not older.exists() and not snap.exists()


def test_size_limit_deletes_oldest_until_under_the_limit(tmp_path):
    files = [_file(tmp_path / f"{n}.mp4", MB // 2, age_hours=10 - n) for n in range(6)]  # 3 MiB, oldest first
    deleted = sweep(tmp_path, RetentionConfig(max_age_hours=0, max_total_mb=2), now=NOW)
    assert deleted == files[:2]
    assert sum(f.stat().st_size for f in files[2:]) == 2 * MB
    assert sweep(tmp_path, RetentionConfig(max_age_hours=0, max_total_mb=2), now=NOW) == []


def test_open_files_are_kept_but_counted(tmp_path, monkeypatch):
    writing = _file(tmp_path / "0.mp4", MB, 10)  # the oldest, but still being written
    other = _file(tmp_path / "1.mp4", MB, 9)
    newest = _file(tmp_path / "2.mp4", MB, 1)
    deleted = sweep(tmp_path, RetentionConfig(max_age_hours=5, max_total_mb=1), keep={writing}, now=NOW)
    assert deleted == [other, newest]  # the kept 1 MiB alone fills the limit
    assert writing.exists()
    # `keep` may be relative or a callable asked after listing.
    monkeypatch.chdir(tmp_path)
    _file(tmp_path / "3.mp4", MB, 8)
    assert sweep(Path("."), RetentionConfig(max_age_hours=5, max_total_mb=0),
                 keep=lambda: {Path("0.mp4"), Path("3.mp4")}, now=NOW) == []


def test_other_files_are_never_touched(tmp_path):
    index = _file(tmp_path / "cam" / "index.json", 10, 100)
    tmp = _file(tmp_path / "cam" / ".index.json.tmp", 10, 100)
    hidden = _file(tmp_path / ".trash" / "x.mp4", 10, 100)
    target = _file(tmp_path.parent / f"{tmp_path.name}-outside.mp4", 10, 100)
    link = tmp_path / "cam" / "link.mp4"
    link.symlink_to(target)
    jpg = _file(tmp_path / "cam" / "a.JPG", 10, 100)
    deleted = sweep(tmp_path, RetentionConfig(max_age_hours=1, max_total_mb=1), now=NOW)
    assert deleted == [jpg]
    assert index.exists() and tmp.exists() and hidden.exists() and target.exists() and link.is_symlink()
    target.unlink()


def test_no_limits_and_missing_directory(tmp_path):
    _file(tmp_path / "a.mp4", 10, 1000)
    assert sweep(tmp_path, RetentionConfig(max_age_hours=0, max_total_mb=0)) == []
    assert sweep(tmp_path / "missing", RetentionConfig(max_age_hours=1, max_total_mb=1)) == []
    assert [f.path.name for f in list_media(tmp_path)] == ["a.mp4"]


def test_default_clock_is_now(tmp_path):
    recent = tmp_path / "recent.mp4"
    recent.write_bytes(b"x")
    stale = tmp_path / "stale.mp4"
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 2 * HOUR, time.time() - 2 * HOUR))
    assert sweep(tmp_path, RetentionConfig(max_age_hours=1, max_total_mb=0)) == [stale]
    assert recent.exists()
