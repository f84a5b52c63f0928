"""What the reader and analysis threads hand the clip-writer thread: copied packets (at most
`max_pending` waiting, the oldest go first: the reader never waits for the clip thread), control
messages, and the request to stop."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from workers.intelligence.preroll import TimedPacket

MAX_PENDING = 3000


@dataclass(frozen=True, slots=True)
class SourceOpened:
    pass


@dataclass(frozen=True, slots=True)
class SourceClosed:
    pass


@dataclass(frozen=True, slots=True)
class MotionStarted:
    seconds: float  # on the reader's timeline


@dataclass(frozen=True, slots=True)
class MotionEnded:
    seconds: float


Control = SourceOpened | SourceClosed | MotionStarted | MotionEnded


class ClipInbox:
    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self.dropped = 0
        self._cond = threading.Condition()
        self._packets: deque[TimedPacket] = deque()
        self._controls: deque[Control] = deque()
        self._stopping = False

    def put_packet(self, item: TimedPacket) -> None:
        with self._cond:
            if self._stopping:
                return
            if len(self._packets) >= self.max_pending:
                self._packets.popleft()
                self.dropped += 1
            self._packets.append(item)
            self._cond.notify()

    def put_control(self, message: Control) -> None:
        with self._cond:
            self._controls.append(message)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def take(self, timeout: float) -> tuple[deque[Control], deque[TimedPacket], bool]:
        """(controls, packets, stop once they are handled), after waiting up to `timeout` when
        nothing is waiting."""
        with self._cond:
            if not (self._packets or self._controls or self._stopping):
                self._cond.wait(timeout)
            controls, self._controls = self._controls, deque()
            packets, self._packets = self._packets, deque()
            return controls, packets, self._stopping
