"""Pushes this worker's full `WorkerState` on the state plane: at once on a change, and at
every heartbeat so a restarted API, or one that dropped a message, is whole again."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec

from protocol import ipc
from protocol.messages import WorkerState, encode
from workers.source_reader import SourceReader
from workers.webrtc_sessions import SessionManager


class StatePublisher:
    def __init__(self, runtime_dir: Path, source_id: str, heartbeat_sec: float) -> None:
        self.sock = ipc.SnapshotSocket(runtime_dir)
        self.source_id = source_id
        self.heartbeat_sec = heartbeat_sec
        self.reader: SourceReader | None = None
        self.sessions: SessionManager | None = None
        self.intelligence = None  # workers.intelligence.Intelligence: its status() rides in every snapshot
        self.seq = 0
        self.started_mono = time.monotonic()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def changed(self) -> None:
        """Thread-safe: request an immediate push."""
        self._loop.call_soon_threadsafe(self._wake.set)

    def snapshot(self) -> WorkerState:
        self.seq += 1
        r = self.reader
        state = WorkerState(source_id=self.source_id, pid=os.getpid(), started_mono=self.started_mono, seq=self.seq,
                            state="offline")
        if self.sessions is not None:
            publisher = self.sessions.publisher
            if r is None:  # record/relay: the source is the WHIP publisher
                state.state = "online" if publisher is not None and publisher.state == "active" else "offline"
            state.sessions = self.sessions.infos()
            state.sessions_active, state.sessions_total = self.sessions.active, self.sessions.total
        if self.intelligence is not None:
            state.vision, state.speech = self.intelligence.status()
        if r is None:
            return state
        video = r.video
        if video is not None:
            fps, kbps = r.stats.video_rates(time.monotonic())
            video = msgspec.structs.replace(video, fps=fps, bitrate_kbps=kbps,
                                            keyframe_interval_sec=r.stats.keyframe_interval_sec)
        return msgspec.structs.replace(
            state, state=r.state, online_since=r.online_since, last_error=r.last_error,
            next_retry_at=r.next_retry_at, reconnects=r.reconnects, video=video, audio=r.audio,
            last_packet_mono=r.stats.last_packet_mono)

    def send(self, final: bool = False) -> None:
        state = self.snapshot()
        if final:  # last word before exit: the API shows `stopped`, not a stale `online`
            state = msgspec.structs.replace(state, state="stopped", video=None, audio=None)
        self.sock.send(encode(state))

    async def _greet_subscribers(self) -> None:
        while True:
            await self.sock.subscribed()
            self._wake.set()

    async def run(self) -> None:
        greeter = asyncio.create_task(self._greet_subscribers())
        try:
            await self._heartbeat()
        finally:
            greeter.cancel()

    async def _heartbeat(self) -> None:
        while True:
            self.send()
            try:
                await asyncio.wait_for(self._wake.wait(), self.heartbeat_sec)
            except TimeoutError:
                pass
            self._wake.clear()
