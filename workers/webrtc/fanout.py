"""Fan-out of one source's MediaUnits to every viewer track, on the worker's event loop.

It keeps the current GOP (from the last keyframe) so a viewer joining mid-GOP gets a picture at
once instead of waiting for the camera's next keyframe (PLI cannot be honoured in passthrough).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from workers.webrtc.media_unit import MediaUnit

# A GOP longer than this is not cached: late joiners then wait for the next keyframe instead of
# receiving a burst that a real network would drop.
MAX_GOP_UNITS = 300
MAX_GOP_BYTES = 8 << 20


class Subscriber(Protocol):
    kind: str

    def offer(self, unit: MediaUnit) -> None: ...


class Fanout:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.gop: list[MediaUnit] = []
        self._gop_bytes = 0
        self.subscribers: set[Subscriber] = set()
        # Set by a relayed publisher: a joining viewer asks it for a fresh keyframe (RTCP PLI).
        self.want_keyframe: Callable[[], object] | None = None

    def publish_threadsafe(self, unit: MediaUnit) -> None:
        """Called by the reader thread, once per unit whatever the number of viewers."""
        self.loop.call_soon_threadsafe(self.publish, unit)

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
