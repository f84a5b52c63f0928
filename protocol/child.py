"""Chores every child process does the same way, so each process's code is only its job:
die with the supervisor, log with its role, load the settings, stop on SIGTERM within a bound,
run on the event loop it is meant to run on (uvloop for the workers)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import uvloop

from protocol.config import Settings
from protocol.logs import setup_logging
from protocol.scrub import register_secrets, register_source_url

PR_SET_PDEATHSIG = 1
SUPERVISOR_PID_ENV = "ICEY_SUPERVISOR_PID"
SHUTDOWN_GRACE_SEC = 3.0


def die_with_parent() -> None:
    """SIGTERM this process when the supervisor dies, even by SIGKILL; exit at once if the
    supervisor is already gone (the race between fork and prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if expected and os.getppid() != int(expected):
        os._exit(1)


def load_settings(path: Path) -> Settings:
    """The settings the supervisor wrote for this child (the API's or one worker's)."""
    settings = msgspec.json.decode(path.read_bytes(), type=Settings)
    register_secrets(settings.auth.token, settings.turn.secret, settings.metrics.token)
    for src in settings.sources:
        register_source_url(src.url)
    return settings


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def run_child(role: str, level: str, main: Callable[[], Awaitable[int | None]],
              loop_factory: LoopFactory = uvloop.new_event_loop) -> None:
    """Run `main` until it returns or SIGTERM/SIGINT arrives; a stuck shutdown is cut short.
    The process exits with what `main` returns (0 when it returns None or is stopped).

    uvloop by default: its loop wakes, schedules and does I/O in C, which is most of what an
    idle worker's loop does. A child that needs the stdlib loop passes asyncio.new_event_loop."""
    die_with_parent()
    log = setup_logging(role, level)

    async def runner() -> int | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            log.debug("stop requested")
            loop.call_later(SHUTDOWN_GRACE_SEC, lambda: os._exit(0))
            task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            return await main()
        except asyncio.CancelledError:
            return None

    try:
        with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
            code = loop_runner.run(runner())
    except Exception:
        logging.getLogger("icey").exception("%s crashed", role)
        sys.exit(1)
    if code:
        sys.exit(code)
