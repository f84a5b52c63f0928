"""Sends a source's events on the state plane. `emit` may be called from any thread (the
reader, the analysis threads); the send itself happens on the event loop, which owns the socket."""

from __future__ import annotations

import asyncio
import os

from protocol.events import EventData, SourceEvent
from protocol.ipc import SnapshotSocket
from protocol.messages import EventMessage, encode
from protocol.times import rfc3339
from protocol.vocabulary import EventType


class EventEmitter:
    def __init__(self, sock: SnapshotSocket, source_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.sock, self.source_id, self.loop = sock, source_id, loop

    def emit(self, type_: EventType, data: EventData | None = None, media_time: float | None = None) -> SourceEvent:
        event = SourceEvent(source_id=self.source_id, type=type_, time=rfc3339(), media_time=media_time, data=data)
        self.loop.call_soon_threadsafe(self._send, event)
        return event

    def _send(self, event: SourceEvent) -> None:
        self.sock.send(encode(EventMessage(event, os.getpid())))
