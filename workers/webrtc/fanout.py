"""Fan-out of one source's MediaUnits to every viewer track: one pass per unit over all viewers,
on the worker's event loop (each viewer's part is its RTP header, SRTP and a sendto; rtp_fanout.py).

It keeps the current GOP (from the last keyframe) so a viewer joining mid-GOP gets a picture at
once instead of waiting for the camera's next keyframe (PLI cannot be honoured in passthrough).
The GOP is kept on the publishing thread, under the lock, whether anyone watches or not; units go
on to the event loop only while someone does: an idle camera costs no loop wake-up per unit, and
its units are never packetized (media_unit.py). Every unit gets a serial number, so a viewer
starting from a GOP snapshot skips the units the snapshot already holds.

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

    def offer(self, unit: MediaUnit, serial: int) -> None: ...

    def missed(self, count: int) -> None: ...


class Fanout:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.subscribers: set[Subscriber] = set()  # changed on the loop only
        # Set by a relayed publisher: a joining viewer asks it for a fresh keyframe (RTCP PLI).
        self.want_keyframe: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self._gop: list[MediaUnit] = []
        self._gop_bytes = 0
        self._serial = 0  # of the last unit published
        self._listening = False  # any subscriber: read by the publishing thread under the lock
        self._pending: deque[tuple[int, MediaUnit]] = deque()
        self._pending_bytes = 0
        self._lost: Counter[str] = Counter()  # by kind, since the last drain
        self._scheduled = False

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        with self._lock:
            self._listening = True

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        with self._lock:
            self._listening = bool(self.subscribers)

    def snapshot(self) -> tuple[list[MediaUnit], int]:
        """The cached GOP and the serial of the last unit published (the GOP's or a later one)."""
        with self._lock:
            return list(self._gop), self._serial

    def publish_threadsafe(self, unit: MediaUnit) -> None:
        """Called by the reader thread, once per unit whatever the number of viewers. After a
        drop everything is dropped until the next drain, so the gap is one piece."""
        with self._lock:
            self._serial += 1
            if unit.kind == "video":
                self._keep(unit)
            if not self._listening:
                return
            if (self._lost or len(self._pending) >= MAX_PENDING_UNITS
                    or self._pending_bytes + unit.size > MAX_PENDING_BYTES):
                self._lost[unit.kind] += 1
                return
            self._pending.append((self._serial, unit))
            self._pending_bytes += unit.size
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the worker is exiting
            pass

    def _keep(self, unit: MediaUnit) -> None:
        """The GOP from the last keyframe; under the lock."""
        if unit.keyframe:
            self._gop, self._gop_bytes = [unit], unit.size
        elif self._gop:
            self._gop_bytes += unit.size
            if len(self._gop) >= MAX_GOP_UNITS or self._gop_bytes > MAX_GOP_BYTES:
                self._gop, self._gop_bytes = [], 0
            else:
                self._gop.append(unit)

    def _drain(self) -> None:
        with self._lock:
            units, self._pending, self._pending_bytes = self._pending, deque(), 0
            lost, self._lost = self._lost, Counter()
            self._scheduled = False
        subscribers = list(self.subscribers)
        for serial, unit in units:
            kind = unit.kind
            for subscriber in subscribers:
                if subscriber.kind == kind:
                    subscriber.offer(unit, serial)
        if lost:
            for subscriber in subscribers:
                if lost[subscriber.kind]:
                    subscriber.missed(lost[subscriber.kind])

    def reset_threadsafe(self) -> None:
        """The source went away: a stale GOP must not be replayed to the next joiner."""
        with self._lock:
            self._gop, self._gop_bytes = [], 0
