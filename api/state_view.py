"""The merged view: the latest `WorkerState` of each source and the latest `SupervisorState`,
received on the state plane, plus the bounded event backlog. State is re-sent by its owners, so
a restarted API loses none of it; the event backlog (a convenience for SSE resume) restarts empty."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from api.event_store import EventStore
from protocol import ipc
from protocol.messages import EventMessage, SupervisorState, WorkerState, decode_state

log = logging.getLogger("icey.state")


@dataclass
class Received:
    worker: WorkerState
    at_mono: float


@dataclass
class StateView:
    supervisor: SupervisorState | None = None
    supervisor_at: float | None = None
    workers: dict[str, Received] = field(default_factory=dict)
    received: int = 0
    dropped: int = 0
    rejected: int = 0  # well-formed, but from a process that is not that source's worker
    events: EventStore = field(default_factory=EventStore)
    # Called when the supervisor announces a config generation the API has not loaded yet.
    on_config_generation: Callable[[], None] | None = None

    def _from_the_supervisor(self, pid: int) -> bool:
        """The supervisor's own events (config.*, source.removed) carry its pid."""
        return self.supervisor is not None and self.supervisor.pid == pid

    def _from_its_worker(self, source_id: str, pid: int) -> bool:
        """A source's state and events come only from the worker the supervisor started for it.
        Before the supervisor has spoken, or while it restarts that worker, the documents' own
        pid check applies when the state is read."""
        sup = self.supervisor
        if sup is None:
            return True
        proc = sup.workers.get(source_id)
        return proc is not None and (proc.pid is None or proc.pid == pid)

    def apply(self, data: bytes, now: float) -> None:
        """Merge one message; garbage, strangers and out-of-order snapshots are counted and dropped."""
        try:
            msg = decode_state(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.dropped += 1
            return
        self.received += 1
        if isinstance(msg, EventMessage):
            if not self._from_the_supervisor(msg.pid) and not self._from_its_worker(msg.event.source_id, msg.pid):
                self.rejected += 1
                return
            self.events.add(msg.event)
            return
        if isinstance(msg, SupervisorState):
            if self.supervisor is not None and msg.pid == self.supervisor.pid and msg.seq < self.supervisor.seq:
                return
            known = self.supervisor.config.generation if self.supervisor is not None else None
            self.supervisor, self.supervisor_at = msg, now
            if known != msg.config.generation and self.on_config_generation is not None:
                self.on_config_generation()
            return
        if not self._from_its_worker(msg.source_id, msg.pid):
            self.rejected += 1
            return
        previous = self.workers.get(msg.source_id)
        if previous is not None:
            old = previous.worker
            if (msg.pid == old.pid and msg.seq < old.seq) or msg.started_mono < old.started_mono:
                return  # out of order, or a dead incarnation's late last words
        self.workers[msg.source_id] = Received(msg, now)


async def receive_forever(view: StateView, runtime_dir: Path) -> None:
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, ipc.STATE_HWM * 4)
    sock.setsockopt(zmq.MAXMSGSIZE, ipc.MAX_STATE_MESSAGE)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.bind(ipc.state_endpoint(runtime_dir))
    try:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 1:
                view.dropped += 1
                continue
            view.apply(frames[0], time.monotonic())
    finally:
        sock.close(0)
