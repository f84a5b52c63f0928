"""Whether a worker's writes to disk work (segments, snapshots or clips): the state its status
shows, and a `record.failed` / `record.resumed` event at each change, so a full disk is seen at
once instead of recording stopping in silence.

Called from the threads that write (reader, receivers, clip writer, analysis) and from the
retention thread (free space); `status()` from the event loop.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from protocol.events import RecordData
from protocol.messages import RecordStatus
from protocol.scrub import scrub_text
from protocol.vocabulary import EventType, RecordTarget

log = logging.getLogger("icey.recording")

Emit = Callable[[EventType, RecordData], object]


def bytes_free(directory: Path) -> int | None:
    """Space left to an unprivileged writer on `directory`'s filesystem; None when unknown."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def describe(exc: BaseException) -> str:
    """An error as a status or event shows it: its type and text, scrubbed (no absolute paths)."""
    return scrub_text(f"{type(exc).__name__}: {exc}")


class WriteHealth:
    def __init__(self, target: RecordTarget, directory: Path, emit: Emit | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.target, self.directory = target, directory
        self._emit, self._on_change = emit, on_change
        self._lock = threading.Lock()
        self._failing = False
        self._last_error: str | None = None
        self._bytes_free: int | None = None

    @property
    def failing(self) -> bool:
        return self._failing

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def failed(self, exc: BaseException) -> None:
        detail = describe(exc)
        with self._lock:
            first = not self._failing
            self._failing, self._last_error = True, detail
        if first:
            free = self.refresh_free()
            log.warning("%s failed: %s (%s free); retrying", self.target, detail,
                        "unknown" if free is None else f"{free / 1e6:.1f} MB")
            self._tell("record.failed", RecordData(target=self.target, detail=detail, bytes_free=free))

    def succeeded(self) -> None:
        with self._lock:
            was_failing, self._failing = self._failing, False
        if was_failing:
            free = self.refresh_free()
            log.info("%s resumed: writing to disk works again", self.target)
            self._tell("record.resumed", RecordData(target=self.target, bytes_free=free))

    def refresh_free(self) -> int | None:
        self._bytes_free = bytes_free(self.directory)
        return self._bytes_free

    def status(self) -> RecordStatus:
        return RecordStatus(state="failing" if self._failing else "recording", last_error=self._last_error,
                            bytes_free=self._bytes_free)

    def _tell(self, type_: EventType, data: RecordData) -> None:
        try:
            if self._emit is not None:
                self._emit(type_, data)
            if self._on_change is not None:
                self._on_change()
        except RuntimeError:  # the event loop is gone: the worker is exiting
            pass
