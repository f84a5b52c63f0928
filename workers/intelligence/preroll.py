"""The pre-roll ring: the source's latest packets, so a clip can begin before the motion that
started it. A clip must begin on a video keyframe, so the ring keeps whole GOPs: from the last
keyframe at or before `keep_sec` before its newest packet, nothing before its first keyframe, and
at most `max_bytes` (one GOP larger than that leaves no pre-roll until the next keyframe)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_RING_BYTES = 64 << 20


@dataclass(slots=True)
class TimedPacket:
    """A copy of one of the source's packets, timed on the reader's timeline."""

    kind: str
    data: bytes
    seconds: float  # pts
    dts_seconds: float
    duration: float
    key: bool
    wall: float  # Unix time when the reader delivered it
    epoch: int  # the source open it belongs to

    @property
    def video_key(self) -> bool:
        return self.kind == "video" and self.key


class PreRollRing:
    def __init__(self, keep_sec: float, max_bytes: int = MAX_RING_BYTES) -> None:
        self.keep_sec, self.max_bytes = keep_sec, max_bytes
        self.bytes = 0
        self._items: deque[TimedPacket] = deque()
        self._keys: deque[float] = deque()  # the kept keyframes' times, oldest first

    def __len__(self) -> int:
        return len(self._items)

    @property
    def newest(self) -> TimedPacket | None:
        return self._items[-1] if self._items else None

    def add(self, item: TimedPacket) -> None:
        if item.video_key:
            self._keys.append(item.seconds)
        elif not self._keys:
            return  # nothing before the first keyframe is any use
        self._items.append(item)
        self.bytes += len(item.data)
        horizon = item.seconds - self.keep_sec
        while len(self._keys) >= 2 and (self._keys[1] <= horizon or self.bytes > self.max_bytes):
            self._keys.popleft()
            self._drop_first_gop()
        if self.bytes > self.max_bytes:
            self.clear()

    def from_keyframe_before(self, seconds: float) -> list[TimedPacket]:
        """The packets from the last keyframe at or before `seconds` (the first keyframe when all
        are later) to the newest; empty when the ring holds no keyframe."""
        start = None
        for i, item in enumerate(self._items):
            if item.video_key:
                if start is None or item.seconds <= seconds:
                    start = i
                if item.seconds > seconds:
                    break
        return [] if start is None else list(self._items)[start:]

    def clear(self) -> None:
        self._items.clear()
        self._keys.clear()
        self.bytes = 0

    def _drop_first_gop(self) -> None:
        """Its keyframe and everything up to the next keyframe."""
        if self._items:
            self.bytes -= len(self._items.popleft().data)
        while self._items and not self._items[0].video_key:
            self.bytes -= len(self._items.popleft().data)
