"""The liveness watchdog of a worker's source: an `online` source that delivers no packet for its
stall timeout is declared `stalled`, and its reader is made to let go so that it reconnects.

Why a watchdog besides PyAV's read timeout: that timeout bounds one blocking read of a network
protocol, and nothing else. A file paced across a timestamp gap waits in the reader, a demuxer
reading only packets of streams we do not use never returns one of ours, and a read stuck where
FFmpeg never checks its interrupt callback (a hung device or mount) never returns at all. The
watchdog sees them all the same way: no packet.

Letting go: the reader's pacing wait is woken, its source raises at its next read of anything,
and a network read that is blocked returns by PyAV's read timeout, set READ_TIMEOUT_MARGIN_SEC
past the stall timeout so that `stalled` is what shows first. A reader still not back
UNBLOCK_GRACE_SEC after the stall is stuck for good: the worker exits to be restarted (see
workers/threads.py), as closing a container under a thread that is inside it would be a
use-after-free.

The stall timeout is `stallTimeoutSec` (media or per source) when set; else 5 s for live sources
(cameras, devices, network streams, the demo) and, for files, max(5 s, 3 frame intervals): a
time-lapse file at 0.1 fps rightly goes 10 s between two frames.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from protocol.config import SourceSettings

if TYPE_CHECKING:
    from workers.source.reader import SourceReader

DEFAULT_STALL_TIMEOUT_SEC = 5.0
FILE_FRAMES_BEFORE_STALL = 3
READ_TIMEOUT_MARGIN_SEC = 1.0
UNBLOCK_GRACE_SEC = 5.0
TICK_SEC = 0.25


def stall_timeout(src: SourceSettings, fps: float | None) -> float:
    """`fps`: the source's video frame rate as its container declares it, if known."""
    if src.stall_timeout_sec is not None:
        return src.stall_timeout_sec
    if src.live or not fps:
        return DEFAULT_STALL_TIMEOUT_SEC
    return max(DEFAULT_STALL_TIMEOUT_SEC, FILE_FRAMES_BEFORE_STALL / fps)


def read_timeout(src: SourceSettings) -> float:
    """PyAV's limit on one read, known before the source is opened (so before its frame rate)."""
    return (src.stall_timeout_sec or DEFAULT_STALL_TIMEOUT_SEC) + READ_TIMEOUT_MARGIN_SEC


class StallWatchdog:
    """Runs on the worker's event loop. `on_stuck(thread, reason)` is called once when a stalled
    reader does not let go."""

    def __init__(self, reader: SourceReader, on_stuck: Callable[[str, str], None]) -> None:
        self.reader = reader
        self.on_stuck = on_stuck
        self._reported = False

    def check(self, now: float) -> None:
        reader = self.reader
        reader.stall_if_idle(now)
        stalled_at = reader.stalled_mono
        if stalled_at is not None and now - stalled_at > UNBLOCK_GRACE_SEC and not self._reported:
            self._reported = True
            self.on_stuck(reader.name, f"blocked: the source stalled and the reader did not let go within "
                                       f"{UNBLOCK_GRACE_SEC:g}s")

    async def run(self) -> None:
        while True:
            self.check(time.monotonic())
            await asyncio.sleep(TICK_SEC)
