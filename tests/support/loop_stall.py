"""Freeze one thread of another process, the rest running on: a worker's event loop that lags
while its reader thread keeps producing.

ptrace's PTRACE_SEIZE + PTRACE_INTERRUPT stop a single thread (SIGSTOP would stop them all).
The thread is stopped only while it waits in epoll (its loop idle, the GIL released), so the
process's other threads keep running Python code. Every ptrace call must come from the one
thread that seized: use it synchronously, from the test's own thread. Needs root or
CAP_SYS_PTRACE (CI and developers run as root).
"""

from __future__ import annotations

import ctypes
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PTRACE_CONT, _PTRACE_DETACH, _PTRACE_SEIZE, _PTRACE_INTERRUPT = 7, 17, 0x4206, 0x4207
_WALL = 0x40000000
_EPOLL_SYSCALLS = {"x86_64": {"232", "281", "441"}, "aarch64": {"22", "441"}}[platform.machine()]
_libc = ctypes.CDLL(None, use_errno=True)


def _ptrace(request: int, tid: int, data: int = 0) -> None:
    if _libc.ptrace(request, tid, None, data) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"ptrace({request:#x}, {tid}): {os.strerror(errno)}")


def _stop(tid: int) -> None:
    _ptrace(_PTRACE_INTERRUPT, tid)
    status = ctypes.c_int()
    if _libc.waitpid(tid, ctypes.byref(status), _WALL) != tid:
        raise OSError(ctypes.get_errno(), f"waitpid({tid})")


@contextmanager
def stalled(pid: int, tid: int | None = None, attempts: int = 200) -> Iterator[None]:
    """Thread `tid` (default: the main thread, which runs a worker's event loop) of `pid` stays
    stopped inside the block."""
    tid = tid or pid
    _ptrace(_PTRACE_SEIZE, tid)
    try:
        for _ in range(attempts):
            _stop(tid)
            if Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0] in _EPOLL_SYSCALLS:
                break
            _ptrace(_PTRACE_CONT, tid)  # caught running (maybe holding the GIL): try again
            time.sleep(0.003)
        else:
            raise AssertionError(f"thread {tid} never caught idle in epoll")
        yield
    finally:
        _ptrace(_PTRACE_DETACH, tid)
