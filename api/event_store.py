"""The API's bounded memory of events: a global backlog for SSE resume (`Last-Event-ID`) and
the last N per source. Live subscribers get events through bounded queues: a client that
stops reading is dropped (it can resume), never allowed to grow memory or slow anyone."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass

from protocol.events import SourceEvent

BACKLOG = 2000
PER_SOURCE = 100
SUBSCRIBER_QUEUE = 256


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    event: SourceEvent


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Stored] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = asyncio.Event()

    def offer(self, stored: Stored) -> bool:
        """False once the client has fallen too far behind: its stream ends (it can resume with
        Last-Event-ID) and it is no longer fed, so it holds at most one full queue."""
        try:
            self.queue.put_nowait(stored)
            return True
        except asyncio.QueueFull:
            self.overflowed.set()
            return False


class EventStore:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.backlog: deque[Stored] = deque(maxlen=BACKLOG)
        self.per_source: dict[str, deque[Stored]] = {}
        self.subscribers: set[Subscriber] = set()

    def add(self, event: SourceEvent) -> Stored:
        stored = Stored(next(self._ids), event)
        self.backlog.append(stored)
        self.per_source.setdefault(event.source_id, deque(maxlen=PER_SOURCE)).append(stored)
        for subscriber in list(self.subscribers):
            if not subscriber.offer(stored):
                self.subscribers.discard(subscriber)
        return stored

    @property
    def last_id(self) -> int:
        return self.backlog[-1].id if self.backlog else 0

    def since(self, last_id: int) -> list[Stored]:
        """Events after `last_id`; an id from before an API restart (larger than any we have
        issued) replays the whole backlog."""
        if last_id > self.last_id:
            return list(self.backlog)
        return [s for s in self.backlog if s.id > last_id]

    def recent(self, source_id: str, limit: int) -> list[Stored]:
        items = list(self.per_source.get(source_id, ()))
        return items[-limit:] if limit > 0 else []
