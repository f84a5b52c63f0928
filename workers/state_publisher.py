"""Pushes this worker's full `WorkerState` on the state plane: at once on a change, and at
every heartbeat so a restarted API, or one that dropped a message, is whole again."""

from __future__ import annotations

import asyncio
import os
import time

import msgspec

from protocol.ipc import SnapshotSocket
from protocol.messages import SourceStatus, WorkerCounters, WorkerState, encode
from workers.intelligence.pipelines import Intelligence
from workers.recording.source_recording import SourceRecording
from workers.source.reader import SourceReader
from workers.threads import ThreadDeath
from workers.webrtc.sessions import SessionManager


class ChangeSignal:
    """`notify()` from any thread asks for an immediate push; created before the components
    that call it, so each gets it in its constructor."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.event = asyncio.Event()

    def notify(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the loop is closed: the worker is exiting
            pass


class StatePublisher:
    def __init__(self, sock: SnapshotSocket, source_id: str, heartbeat_sec: float, changes: ChangeSignal,
                 reader: SourceReader | None, sessions: SessionManager,
                 intelligence: Intelligence | None, recording: SourceRecording) -> None:
        self.sock = sock
        self.source_id = source_id
        self.heartbeat_sec = heartbeat_sec
        self.changes = changes
        self.reader, self.sessions, self.intelligence = reader, sessions, intelligence
        self.recording = recording
        self.seq = 0
        self.started_mono = time.monotonic()

    def _source_status(self) -> SourceStatus:
        if self.reader is not None:
            return self.reader.status(time.monotonic())
        publisher = self.sessions.publisher  # record/relay: the source is the WHIP publisher
        return SourceStatus(state="online" if publisher is not None and publisher.state == "active" else "offline",
                            dropped_units=publisher.ingest.dropped_units if publisher and publisher.ingest else 0)

    def _counters(self) -> WorkerCounters:
        received = self.sessions.received_bytes  # a WHIP publisher's media (record and relay sources)
        video, audio = received["video"], received["audio"]
        if self.reader is not None:
            video, audio = video + self.reader.stats.video_bytes, audio + self.reader.stats.audio_bytes
        store = self.recording.store
        return WorkerCounters(received_video_bytes=video, received_audio_bytes=audio,
                              sent_bytes=self.sessions.sent_bytes,
                              recorded_bytes=store.recorded_bytes if store else 0,
                              recorded_segments=store.recorded_segments if store else 0)

    def snapshot(self) -> WorkerState:
        self.seq += 1
        vision, speech = self.intelligence.status() if self.intelligence is not None else (None, None)
        return WorkerState(source_id=self.source_id, pid=os.getpid(), started_mono=self.started_mono, seq=self.seq,
                           source=self._source_status(), sessions=self.sessions.infos(),
                           sessions_active=self.sessions.active, sessions_total=self.sessions.total,
                           vision=vision, speech=speech, counters=self._counters(),
                           record=self.recording.status())

    def send(self, final: bool = False, death: ThreadDeath | None = None) -> None:
        """`final`: the last word before exit, so the API shows `stopped` (or, after a thread's
        death, `failed` naming it) rather than a stale `online`."""
        state = self.snapshot()
        if final:
            state.source = msgspec.structs.replace(state.source, state="stopped", video=None, audio=None)
            if death is not None:
                state.source = msgspec.structs.replace(state.source, state="failed", last_error=death.describe())
        self.sock.send(encode(state))

    async def _greet_subscribers(self) -> None:
        while True:
            await self.sock.subscribed()
            self.changes.event.set()

    async def run(self) -> None:
        greeter = asyncio.create_task(self._greet_subscribers())
        try:
            await self._heartbeat()
        finally:
            greeter.cancel()

    async def _heartbeat(self) -> None:
        wake = self.changes.event
        while True:
            self.send()
            try:
                await asyncio.wait_for(wake.wait(), self.heartbeat_sec)
            except TimeoutError:
                pass
            wake.clear()
