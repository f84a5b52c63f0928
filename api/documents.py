"""The JSON documents of the operator contract, built from the merged state view.

Every field is computed from what the supervisor and workers last pushed; nothing here blocks
on a worker, so health and status stay fast whatever the media load.
"""

from __future__ import annotations

import os
import time

import msgspec

from api.state_view import StateView
from protocol.config import Settings, SourceSettings
from protocol.messages import (
    AudioInfo,
    Check,
    ConfigInfo,
    ProcessInfo,
    RecordStatus,
    SessionInfo,
    SpeechStatus,
    VideoInfo,
    VisionStatus,
    WorkerState,
)
from protocol.readiness import is_source_check, overall, source_check_name
from protocol.scrub import public_value, scrub_text
from protocol.times import rfc3339
from protocol.version import PRODUCT, SERVICE, VERSION
from protocol.vocabulary import ProcessState, RuntimeState

# A worker or supervisor silent for this many heartbeats is reported, not trusted.
SILENT_HEARTBEATS = 3


class SourceRef(msgspec.Struct, rename="camel"):
    value: str
    kind: str
    remote: bool
    loop: bool


class Media(msgspec.Struct, rename="camel"):
    video: VideoInfo | None
    audio: AudioInfo | None
    last_packet_age_ms: int | None
    dropped_units: int  # malformed units dropped while the stream went on


class Sessions(msgspec.Struct):
    active: int
    total: int


class WorkerView(msgspec.Struct, rename="camel"):
    pid: int | None
    state: ProcessState
    restarts: int
    uptime_sec: int | None
    last_exit_code: int | None
    last_heartbeat_age_ms: int | None
    next_restart_in_ms: int | None  # new: the backoff left while `restarting`
    spawn_error: str | None  # new: why the worker could not be started, while that lasts


class Intelligence(msgspec.Struct):
    vision: VisionStatus
    speech: SpeechStatus


class SourceItem(msgspec.Struct, rename="camel"):
    id: str
    mode: str
    labels: dict[str, str]  # the operator's, as configured (a hot setting: no restart)
    source: SourceRef
    state: str
    online: bool
    online_since: str | None
    last_error: str | None
    next_retry_at: str | None
    reconnects: int  # outages
    reconnect_attempts: int
    media: Media
    sessions: Sessions
    worker: WorkerView
    intelligence: Intelligence
    record: RecordStatus


class Readiness(msgspec.Struct, rename="camel", kw_only=True):
    """GET /api/ready."""

    status: str  # ok | degraded | error
    ready: bool
    product: str = PRODUCT
    service: str = SERVICE
    mode: str
    version: str = VERSION
    checks: list[Check]
    warnings: list[str]


class Peer(msgspec.Struct):
    id: str = "server"
    name: str = "Icey Server"
    type: str = "server"


class Runtime(msgspec.Struct):
    state: RuntimeState


class StreamRef(msgspec.Struct, rename="camel"):
    """icey's single-source view: the first source."""

    source: str
    source_kind: str
    loop: bool


class RecordRef(msgspec.Struct):
    dir: str


class IntelligenceEnabled(msgspec.Struct):
    vision: bool
    speech: bool


class SupervisorView(msgspec.Struct):
    pid: int | None


class ApiView(msgspec.Struct, rename="camel"):
    pid: int
    restarts: int
    ipc_received: int
    ipc_dropped: int  # undecodable
    ipc_rejected: int  # a source's state or event from a process that is not its worker


class ChildView(msgspec.Struct):
    """A helper child of the supervisor: the TURN relay, the worker template."""

    pid: int | None
    state: ProcessState
    restarts: int


class Processes(msgspec.Struct):
    supervisor: SupervisorView
    api: ApiView
    turn: ChildView | None
    zygote: ChildView | None = None


class Status(Readiness, rename="camel", kw_only=True):
    """GET /api/status: readiness plus the merged runtime state."""

    peer: Peer
    runtime: Runtime
    uptime_sec: int
    sessions: Sessions
    stream: StreamRef
    record: RecordRef
    intelligence: IntelligenceEnabled
    sources: list[SourceItem]
    processes: Processes
    config: ConfigInfo | None = None  # the running config generation (None before the supervisor speaks)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def given_up_detail(source_id: str, last_exit_code: int | None, next_try_ms: int | None,
                    spawn_error: str | None = None) -> str:
    """Why a given-up source will not serve, and what brings it back."""
    when = f"; next automatic try in {next_try_ms / 1000:.0f}s" if next_try_ms is not None else ""
    last = f"could not be started: {spawn_error}" if spawn_error else f"last exit code {last_exit_code}"
    return (f"worker gave up after repeated crashes ({last}){when}; "
            f"POST /api/sources/{source_id}/restart starts it now")


def _record(ws: WorkerState | None) -> RecordStatus:
    """`off` when the worker records nothing (or has not reported yet)."""
    if ws is None or ws.record is None:
        return RecordStatus()
    error = ws.record.last_error
    return msgspec.structs.replace(ws.record, last_error=scrub_text(error) if error else None)


class Documents:
    def __init__(self, settings: Settings, view: StateView) -> None:
        self.settings = settings
        self.view = view
        self.heartbeat_sec = settings.supervisor.heartbeat_ms / 1000

    # -- per source -------------------------------------------------------------------------

    def worker_process(self, src: SourceSettings) -> ProcessInfo | None:
        """The supervisor's view of the source's worker process (None before its first state)."""
        sup = self.view.supervisor
        return sup.workers.get(src.id) if sup is not None else None

    def _worker_state(self, src: SourceSettings, proc: ProcessInfo | None) -> tuple[WorkerState | None, float | None]:
        """The worker's last snapshot if it comes from the process now running."""
        received = self.view.workers.get(src.id)
        if received is None:
            return None, None
        if proc is not None and proc.pid is not None and received.worker.pid != proc.pid:
            return None, None  # the previous incarnation's last words; the new one has not spoken yet
        return received.worker, received.at_mono

    def source_item(self, src: SourceSettings, now: float) -> SourceItem:
        proc = self.worker_process(src)
        ws, at = self._worker_state(src, proc)
        proc_state = proc.state if proc is not None else "stopped"
        if proc_state == "given-up":
            state = "failed"
        elif ws is None:
            state = "starting" if proc_state in ("running", "restarting") or proc is None else "stopped"
        elif proc_state == "restarting" and ws.source.state != "failed":
            state = "starting"  # the worker is gone: its last word (online, stalled) no longer holds
        else:
            state = ws.source.state
        online = state == "online"
        sessions = Sessions(ws.sessions_active, ws.sessions_total) if ws else Sessions(0, 0)
        intel = src.intelligence
        return SourceItem(
            id=src.id, mode=src.mode, labels=src.labels,
            source=SourceRef(value=public_value(src.url), kind=src.kind, remote=src.remote, loop=src.loop),
            state=state, online=online,
            online_since=ws.source.online_since if ws and online else None,
            last_error=scrub_text(ws.source.last_error) if ws and ws.source.last_error else None,
            next_retry_at=ws.source.next_retry_at if ws and not online else None,
            reconnects=ws.source.reconnects if ws else 0,
            reconnect_attempts=ws.source.reconnect_attempts if ws else 0,
            media=Media(video=ws.source.video if ws and online else None,
                        audio=ws.source.audio if ws and online else None,
                        last_packet_age_ms=_ms(now - ws.source.last_packet_mono)
                        if ws and ws.source.last_packet_mono else None,
                        dropped_units=ws.source.dropped_units if ws else 0),
            sessions=sessions,
            worker=WorkerView(
                pid=proc.pid if proc else None, state=proc_state, restarts=proc.restarts if proc else 0,
                uptime_sec=int(now - proc.started_mono) if proc and proc.started_mono and proc.pid else None,
                last_exit_code=proc.last_exit_code if proc else None,
                last_heartbeat_age_ms=_ms(now - at) if at is not None else None,
                next_restart_in_ms=_ms(max(0.0, proc.next_restart_mono - now))
                if proc and proc.next_restart_mono is not None else None,
                spawn_error=scrub_text(proc.spawn_error) if proc and proc.spawn_error else None),
            intelligence=Intelligence(
                vision=(ws.vision if ws and ws.vision else VisionStatus(enabled=intel.vision.enabled)),
                speech=(ws.speech if ws and ws.speech else SpeechStatus(enabled=intel.speech.enabled))),
            record=_record(ws),
        )

    def source_check(self, src: SourceSettings, item: SourceItem) -> Check:
        """The source's delivery, then its recording: a source that serves viewers while its
        recording fails warns, and still counts as serving for readiness (see `readiness`)."""
        check = self._delivery_check(src, item)
        if check.result == "pass" and item.record.state == "failing":
            return Check(check.name, "warn", f"Recording is failing: {item.record.last_error}")
        return check

    def _delivery_check(self, src: SourceSettings, item: SourceItem) -> Check:
        name = source_check_name(src.id)
        if item.worker.state == "given-up":
            return Check(name, "fail", given_up_detail(src.id, item.worker.last_exit_code,
                                                       item.worker.next_restart_in_ms, item.worker.spawn_error))
        if src.kind == "none" and src.mode != "stream":
            return Check(name, "pass", f"No configured media source required for {src.mode} mode")
        if item.worker.state == "restarting":
            detail = f"worker exited with code {item.worker.last_exit_code}; restarting"
            return Check(name, "warn", f"{detail}: {item.last_error}" if item.last_error else detail)
        age = item.worker.last_heartbeat_age_ms
        if age is not None and age > SILENT_HEARTBEATS * self.heartbeat_sec * 1000:
            return Check(name, "warn", f"worker has been silent for {age / 1000:.1f}s")
        if item.state == "online":
            return Check(name, "pass", f"Online since {item.online_since}")
        if item.state == "failed":
            return Check(name, "fail", item.last_error or "source failed")
        if item.state == "stalled":
            age_ms = item.media.last_packet_age_ms
            if age_ms is None:
                return Check(name, "warn", "Source stalled: no packet yet; reconnecting")
            return Check(name, "warn", f"Source stalled: no packet since {rfc3339(time.time() - age_ms / 1000)} "
                                       f"({age_ms / 1000:.1f}s ago); reconnecting")
        detail = f"Source is {item.state}"
        if item.last_error:
            detail += f": {item.last_error}"
        if item.next_retry_at:
            detail += f"; next retry at {item.next_retry_at}"
        return Check(name, "warn", detail)

    def sessions(self, src: SourceSettings) -> list[SessionInfo]:
        ws = self.worker_state(src)
        return list(ws.sessions) if ws is not None else []

    def worker_state(self, src: SourceSettings) -> WorkerState | None:
        """The last snapshot of the source's running worker (None while it has not spoken)."""
        return self._worker_state(src, self.worker_process(src))[0]

    # -- service-wide -----------------------------------------------------------------------

    def _ipc_check(self, now: float) -> Check:
        if self.view.supervisor is None or self.view.supervisor_at is None:
            return Check("ipc", "fail", "No state received from the supervisor yet")
        age = now - self.view.supervisor_at
        if age > SILENT_HEARTBEATS * self.heartbeat_sec:
            return Check("ipc", "fail", f"No state from the supervisor for {age:.1f}s")
        return Check("ipc", "pass", f"Receiving state from the supervisor and {len(self.view.workers)} worker(s)")

    def readiness(self, now: float, only: SourceSettings | None = None) -> tuple[Readiness, list[SourceItem]]:
        """The box's readiness by `ready.requireSources`; with `only`, that one source's (the
        service checks and its own check)."""
        sup = self.view.supervisor
        items = [self.source_item(src, now) for src in self.settings.sources]
        checks = list(sup.checks) if sup else []
        pairs = list(zip(self.settings.sources, items, strict=True))
        checks += [self.source_check(src, item) for src, item in pairs]
        checks.append(self._ipc_check(now))
        serving = {src.id: self._delivery_check(src, item).result == "pass" for src, item in pairs}
        require = self.settings.ready.require_sources
        if only is not None:
            checks = [c for c in checks if not is_source_check(c) or c.name == source_check_name(only.id)]
            require = [only.id]
        degrading = sup.degrading_warnings if sup else []
        ready, status = overall(checks, degrading, require, serving)
        doc = Readiness(status=status, ready=ready, mode=self.settings.mode,
                        checks=[Check(c.name, c.result, scrub_text(c.detail)) for c in checks],
                        warnings=[scrub_text(w) for w in (sup.warnings + sup.degrading_warnings if sup else [])])
        return doc, items

    def status(self, now: float) -> Status:
        ready, items = self.readiness(now)
        sup = self.view.supervisor
        sources = self.settings.sources
        first = sources[0] if sources else None
        return Status(
            **msgspec.structs.asdict(ready),
            peer=Peer(),
            runtime=Runtime(sup.runtime_state if sup else "starting"),
            uptime_sec=int(now - sup.started_mono) if sup else 0,
            sessions=Sessions(sum(i.sessions.active for i in items), sum(i.sessions.total for i in items)),
            stream=StreamRef(public_value(first.url) if first else "", first.kind if first else "none",
                             first.loop if first else False),
            record=RecordRef(public_value(self.settings.record_dir)),
            intelligence=IntelligenceEnabled(any(s.intelligence.vision.enabled for s in sources),
                                             any(s.intelligence.speech.enabled for s in sources)),
            sources=items,
            processes=Processes(
                supervisor=SupervisorView(sup.pid if sup else None),
                api=ApiView(os.getpid(), sup.api.restarts if sup else 0, self.view.received, self.view.dropped,
                            self.view.rejected),
                turn=ChildView(sup.turn.pid, sup.turn.state, sup.turn.restarts) if sup and sup.turn else None,
                zygote=ChildView(sup.zygote.pid, sup.zygote.state, sup.zygote.restarts)
                if sup and sup.zygote else None),
            config=sup.config if sup else None,
        )

    def turn_running(self) -> bool:
        sup = self.view.supervisor
        return bool(sup and sup.turn and sup.turn.state == "running")

    def now(self) -> float:
        return time.monotonic()
