"""workers/recording/retention.py: oldest first by age, by total size and by free space; only the
files named by the server go; open files, index files, temporary files, symlinks and
subdirectories are never deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.small_disk import free_bytes, small_disk

from protocol.config import RetentionConfig
from workers.recording.retention import MB, list_owned, sweep

NOW = 1_800_000_000.0
HOUR = 3600.0


def ours(name: str) -> bool:
    return name.endswith(".mp4") and name[:1].isdigit()


def _file(path: Path, size: int, age_hours: float, now: float = NOW) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (now - age_hours * HOUR, now - age_hours * HOUR))
    return path


def limits(age: float = 0, total: int = 0, free: int = 0) -> RetentionConfig:
    return RetentionConfig(max_age_hours=age, max_total_mb=total, min_free_mb=free)


def test_age_limit_deletes_only_expired_files_oldest_first(tmp_path):
    old = _file(tmp_path / "1.mp4", 10, 5)
    older = _file(tmp_path / "0.mp4", 10, 7)
    fresh = _file(tmp_path / "2.mp4", 10, 1)
    deleted = sweep(tmp_path, limits(age=3), ours, now=NOW)
    assert deleted == [older, old]
    assert fresh.exists() and not old.exists() and not older.exists()


def test_size_limit_deletes_oldest_until_under_the_limit(tmp_path):
    files = [_file(tmp_path / f"{n}.mp4", MB // 2, age_hours=10 - n) for n in range(6)]  # 3 MiB, oldest first
    deleted = sweep(tmp_path, limits(total=2), ours, now=NOW)
    assert deleted == files[:2]
    assert sum(f.stat().st_size for f in files[2:]) == 2 * MB
    assert sweep(tmp_path, limits(total=2), ours, now=NOW) == []


def test_open_files_are_kept_but_counted(tmp_path, monkeypatch):
    writing = _file(tmp_path / "0.mp4", MB, 10)  # the oldest, but still being written
    other = _file(tmp_path / "1.mp4", MB, 9)
    newest = _file(tmp_path / "2.mp4", MB, 1)
    deleted = sweep(tmp_path, limits(age=5, total=1), ours, keep={writing}, now=NOW)
    assert deleted == [other, newest]  # the kept 1 MiB alone fills the limit
    assert writing.exists()
    # `keep` may be relative or a callable asked after listing.
    monkeypatch.chdir(tmp_path)
    _file(tmp_path / "3.mp4", MB, 8)
    assert sweep(Path("."), limits(age=5), ours, keep=lambda: {Path("0.mp4"), Path("3.mp4")}, now=NOW) == []


def test_only_files_the_server_named_go(tmp_path):
    """Issue 9 item 12: a folder an operator shares keeps what others put there."""
    foreign = _file(tmp_path / "holiday.mp4", 10, 100)
    index = _file(tmp_path / "index.json", 10, 100)
    tmp = _file(tmp_path / ".index.json.tmp", 10, 100)
    hidden = _file(tmp_path / ".9.mp4", 10, 100)
    nested = _file(tmp_path / "cam" / "8.mp4", 10, 100)
    target = _file(tmp_path.parent / f"{tmp_path.name}-outside.mp4", 10, 100)
    link = tmp_path / "7.mp4"
    link.symlink_to(target)
    mine = _file(tmp_path / "1.mp4", 10, 100)
    deleted = sweep(tmp_path, limits(age=1, total=1), ours, now=NOW)
    assert deleted == [mine]
    for kept in (foreign, index, tmp, hidden, nested, target):
        assert kept.exists(), kept
    assert link.is_symlink()
    target.unlink()


def test_no_limits_and_missing_directory(tmp_path):
    _file(tmp_path / "1.mp4", 10, 1000)
    assert sweep(tmp_path, limits(), ours) == []
    assert sweep(tmp_path / "missing", limits(age=1, total=1, free=1), ours) == []
    assert [f.path.name for f in list_owned(tmp_path, ours)] == ["1.mp4"]


def test_default_clock_is_now(tmp_path):
    recent = _file(tmp_path / "1.mp4", 1, 0, now=time.time())
    stale = _file(tmp_path / "0.mp4", 1, 2, now=time.time())
    assert sweep(tmp_path, limits(age=1), ours) == [stale]
    assert recent.exists()


def test_free_space_floor_deletes_the_oldest_until_there_is_room(tmp_path):
    """Issue 8 item 2: below minFreeMb the oldest files go, before the disk is full."""
    with small_disk(tmp_path / "disk", 4) as disk:
        files = [_file(disk / f"{n}.mp4", MB // 2, age_hours=10 - n) for n in range(5)]  # 2.5 of 4 MiB
        foreign = _file(disk / "notes.mp4", MB // 2, age_hours=100)  # 3 MiB used, not ours
        assert free_bytes(disk) < 2 * MB
        deleted = sweep(disk, limits(free=2), ours, keep={files[0]}, now=NOW)
        assert deleted == files[1:3]  # the open one stays; the next oldest make 2 MiB free
        assert free_bytes(disk) >= 2 * MB
        assert files[0].exists() and foreign.exists() and all(f.exists() for f in files[3:])
        assert sweep(disk, limits(free=2), ours, now=NOW) == []
