"""Fan-out of one source's MediaUnits to every viewer track, on the worker's event loop.

It keeps the current GOP (from the last keyframe) so a viewer joining mid-GOP gets a picture at
once instead of waiting for the camera's next keyframe (PLI cannot be honoured in passthrough).

Units arrive from the reader thread (or a WHIP publisher's receiver thread) through a bounded
hand-off: a deque drained by one scheduled callback. A loop that lags behind its source would
otherwise queue every unit as a callback without bound; here, once the hand-off holds
MAX_PENDING_UNITS or MAX_PENDING_BYTES, units are dropped until the loop drains it, and every
viewer is told of the gap (it skips to the next keyframe and counts what it missed).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Protocol

from workers.webrtc.media_unit import MediaUnit

# A GOP longer than this is not cached: late joiners then wait for the next keyframe instead of
# receiving a burst that a real network would drop.
MAX_GOP_UNITS = 300
MAX_GOP_BYTES = 8 << 20
# About three seconds of 30 fps video and its audio; or less of a high-bitrate source.
MAX_PENDING_UNITS = 256
MAX_PENDING_BYTES = 4 << 20


class Subscriber(Protocol):
    kind: str

    def offer(self, unit: MediaUnit) -> None: ...

    def missed(self, count: int) -> None: ...


class Fanout:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.gop: list[MediaUnit] = []
        self._gop_bytes = 0
        self.subscribers: set[Subscriber] = set()
        # Set by a relayed publisher: a joining viewer asks it for a fresh keyframe (RTCP PLI).
        self.want_keyframe: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self._pending: deque[MediaUnit] = deque()
        self._pending_bytes = 0
        self._lost: Counter[str] = Counter()  # by kind, since the last drain
        self._scheduled = False

    def publish_threadsafe(self, unit: MediaUnit) -> None:
        """Called by the reader thread, once per unit whatever the number of viewers. After a
        drop everything is dropped until the next drain, so the gap is one piece."""
        with self._lock:
            if (self._lost or len(self._pending) >= MAX_PENDING_UNITS
                    or self._pending_bytes + unit.size > MAX_PENDING_BYTES):
                self._lost[unit.kind] += 1
                return
            self._pending.append(unit)
            self._pending_bytes += unit.size
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the worker is exiting
            pass

    def _drain(self) -> None:
        with self._lock:
            units, self._pending, self._pending_bytes = self._pending, deque(), 0
            lost, self._lost = self._lost, Counter()
            self._scheduled = False
        for unit in units:
            self.publish(unit)
        if lost:
            self.gop, self._gop_bytes = [], 0  # it has a hole: no late joiner may start from it
            for subscriber in self.subscribers:
                if lost[subscriber.kind]:
                    subscriber.missed(lost[subscriber.kind])

    def publish(self, unit: MediaUnit) -> None:
        if unit.kind == "video":
            if unit.keyframe:
                self.gop, self._gop_bytes = [unit], unit.size
            elif self.gop:
                self._gop_bytes += unit.size
                if len(self.gop) >= MAX_GOP_UNITS or self._gop_bytes > MAX_GOP_BYTES:
                    self.gop, self._gop_bytes = [], 0
                else:
                    self.gop.append(unit)
        for subscriber in self.subscribers:
            if subscriber.kind == unit.kind:
                subscriber.offer(unit)

    def reset_threadsafe(self) -> None:
        self.loop.call_soon_threadsafe(self.reset)

    def reset(self) -> None:
        """The source went away: a stale GOP must not be replayed to the next joiner."""
        self.gop, self._gop_bytes = [], 0
