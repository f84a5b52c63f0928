"""What the supervisor reads from the kernel at each heartbeat for the metrics: each child's
memory and CPU time (/proc/<pid>/stat) and the free space where recordings go (statvfs).

Read here, not in the API, because the supervisor outlives the API and knows every pid; the
readings travel in `SupervisorState`, so the API's /metrics does no I/O of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from protocol.messages import ProcessInfo, StorageInfo

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
# Fields of /proc/<pid>/stat after the "(comm)" field: utime, stime (clock ticks), rss (pages).
_UTIME, _STIME, _RSS = 11, 12, 21


def read_usage(pid: int) -> tuple[int, float] | None:
    """(resident bytes, user + system CPU seconds of all threads), None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[_RSS]) * _PAGE_BYTES, (int(fields[_UTIME]) + int(fields[_STIME])) / _CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def sample_usage(infos: list[ProcessInfo]) -> None:
    """Fill in rss_bytes and cpu_seconds of every running child; clear them for the others."""
    for info in infos:
        usage = read_usage(info.pid) if info.pid is not None else None
        info.rss_bytes, info.cpu_seconds = usage if usage is not None else (None, None)


def free_bytes(path: str) -> int | None:
    """Bytes available to this (unprivileged) user on the filesystem of `path`, or of its nearest
    existing parent: a recording directory is created by its worker only once it records."""
    current = Path(path).absolute()
    while True:
        try:
            st = os.statvfs(current)
            return st.f_bavail * st.f_frsize
        except FileNotFoundError:
            if current.parent == current:
                return None
            current = current.parent
        except OSError:
            return None


def sample_storage(paths: list[str]) -> list[StorageInfo]:
    return [StorageInfo(path=p, free_bytes=free) for p in dict.fromkeys(paths) if (free := free_bytes(p)) is not None]
