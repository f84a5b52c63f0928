"""Every long-lived thread of a worker runs guarded, so none can die unnoticed.

The rule. Each thread handles the errors it expects where they happen: the reader reopens the
source with backoff on any error while reading it (shown in lastError) and drops and counts a unit
a tap cannot take (droppedUnits); the decoder, analysis and clip threads skip the item that failed.
An exception that still escapes a thread's target is fatal to the worker, whichever thread it is
(reader, decoder, vision, clip writer, retention, a WHIP receiver), and so is a reader the stall
watchdog cannot get back: the traceback is logged, the worker's last state names the thread
(`failed`, lastError "worker thread X died: ..."), and the worker exits 1 so the supervisor
restarts it.

Why exit rather than limp on: without its reader the worker serves nothing; without its decoder,
clip writer, retention or WHIP receiver thread it still streams but has silently stopped doing
what it was configured to do (motion events, clips, disk limits, recording a publisher). A
restart brings all of it back and shows (worker restarts, lastExitCode); a fault that recurs ends
in the supervisor's `given-up`, a `fail` in /api/ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from protocol.scrub import scrub_text

log = logging.getLogger("icey.threads")


@dataclass(frozen=True)
class ThreadDeath:
    thread: str
    error: str  # scrubbed

    def describe(self) -> str:
        return f"worker thread {self.thread} died: {self.error}"


class ThreadGuard:
    """Holds the first death and the worker's reaction to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._death: ThreadDeath | None = None
        self._on_death: Callable[[ThreadDeath], None] | None = None

    def on_death(self, callback: Callable[[ThreadDeath], None]) -> None:
        """The worker's reaction to the first death (called on the dying thread); set before
        any guarded thread starts."""
        self._on_death = callback

    @property
    def death(self) -> ThreadDeath | None:
        return self._death

    def died(self, thread: str, error: str) -> None:
        """`thread` is gone, or as good as gone (blocked for good): tell the worker, once."""
        with self._lock:
            if self._death is not None:
                return
            self._death = death = ThreadDeath(thread, scrub_text(error))
            callback = self._on_death
        log.critical("%s", death.describe())
        if callback is not None:
            callback(death)

    def run(self, name: str, target: Callable[[], object]) -> None:
        """Run `target` on this thread; whatever escapes it is a death (BaseException included:
        a SystemExit raised in a thread would otherwise end it without a word)."""
        try:
            target()
        except BaseException as exc:
            log.critical("thread %s raised", name, exc_info=True)
            self.died(name, f"{type(exc).__name__}: {exc}")

    def thread(self, name: str, target: Callable[[], object]) -> threading.Thread:
        """A daemon thread, not started yet, that runs `target` guarded."""
        return threading.Thread(target=self.run, args=(name, target), name=name, daemon=True)


# The worker's guard: one per process, as aiortc's receiver threads reach it from a module-level hook.
GUARD = ThreadGuard()
