"""The driver's children: each starts in its own session so that stopping it also reaches what it started, and
every one still running is stopped on the way out, errors and signals included."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROCS: list[subprocess.Popen] = []


def self_command(*args: str) -> list[str]:
    """This benchmark re-run as one of its helper programs (a viewer client, the re-encode server)."""
    return [sys.executable, str(PACKAGE_DIR), *args]


def spawn(cmd: list[str], log: Path, stdin=subprocess.DEVNULL, stdout=None, **kw) -> subprocess.Popen:
    """Start a child in a new session (its own process group); stderr (and stdout unless piped) to `log`."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=out if stdout is None else stdout, stderr=out,
                                start_new_session=True, **kw)
    PROCS.append(proc)
    return proc


def stop_proc(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 8.0) -> int | None:
    """Signal our own child by its pid; after the timeout, SIGKILL its process group (it leads a new
    session, so the group holds only what it started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (a supervisor's children, say)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(3)
    if proc in PROCS:
        PROCS.remove(proc)
    return proc.returncode


def stop_all() -> None:
    for proc in list(reversed(PROCS)):
        stop_proc(proc, timeout=5.0)
