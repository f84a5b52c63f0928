"""The API's memory of recent snapshot replies, per (source, width, height, quality), so a wall of
browsers refreshing the same tiles within `maxAge` is answered without a round trip to the worker."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from protocol.messages import SnapshotReply

CAPACITY = 64  # replies kept (a 720p JPEG is ~50 KB)


@dataclass(frozen=True, slots=True)
class Snapshot:
    reply: SnapshotReply
    etag: str
    taken: float  # Unix time of the picture (its frame time)

    @classmethod
    def of(cls, reply: SnapshotReply) -> Snapshot:
        taken = datetime.fromisoformat(reply.frame_time.replace("Z", "+00:00")).timestamp()
        return cls(reply, f'"{hashlib.blake2b(reply.jpeg, digest_size=12).hexdigest()}"', taken)


Key = tuple[str, int, int, int]


class SnapshotCache:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Key, Snapshot] = OrderedDict()

    def get(self, key: Key, max_age_sec: float) -> Snapshot | None:
        """The kept snapshot if its picture is no older than `max_age_sec`."""
        entry = self._entries.get(key)
        if entry is None or time.time() - entry.taken > max_age_sec:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Key, reply: SnapshotReply) -> Snapshot:
        entry = self._entries[key] = Snapshot.of(reply)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry
