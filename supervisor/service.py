"""The running service: start the API and one worker per source, publish their lifecycle on
the state plane, restart a worker when the API asks, apply a new config generation (SIGHUP, the
API) with the smallest change, stop everything on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections import defaultdict
from pathlib import Path

import msgspec

from protocol import ipc
from protocol.config import Settings, SourceSettings
from protocol.events import SERVICE_EVENT_SOURCE, ConfigData, SourceEvent
from protocol.messages import (
    Applied,
    Check,
    ConfigInfo,
    ConfigOutcome,
    EditSource,
    EventMessage,
    GetSourceConfig,
    ReloadConfig,
    RestartSource,
    StorageInfo,
    SupervisorReply,
    SupervisorRequest,
    SupervisorState,
    encode,
)
from protocol.scrub import public_value, register_source_url
from protocol.times import rfc3339
from protocol.vocabulary import ConfigOrigin, EventType, RuntimeState
from protocol.zygote import worker_cmdline
from supervisor import resources, source_entries, turn_relay
from supervisor.children import Child
from supervisor.config_generations import ConfigReader, ConfigRejected, Plan, plan
from supervisor.config_watch import ConfigWatch
from supervisor.control_server import SupervisorControl
from supervisor.errors import EXIT_OK, EXIT_RUNTIME
from supervisor.launchers import Spawn
from supervisor.readiness import ServiceNotifier
from supervisor.restart_policy import RestartPolicy
from supervisor.sd_notify import SdNotify
from supervisor.worker_updates import update_in_place
from supervisor.zygote import Zygote, become_subreaper

log = logging.getLogger("icey.supervisor")
STORAGE_INTERVAL_SEC = 5.0


class Service:
    def __init__(self, settings: Settings, checks: list[Check], degrading: list[str],
                 http_socket: socket.socket, metrics_socket: socket.socket | None, reader: ConfigReader) -> None:
        self.settings = settings
        self.reader = reader
        self.config = ConfigInfo(generation=1, loaded_at=rfc3339(), source="file")
        self.next_index = len(settings.sources)  # control endpoints are never reused
        self.worker_tasks: dict[str, asyncio.Task] = {}
        self.retiring: set[asyncio.Task] = set()
        self.retiring_workers: dict[str, Child] = {}  # removed, still stopping: their last events count
        self.updates: set[asyncio.Task] = set()  # hot settings on their way to running workers
        self.update_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        watched = settings.supervisor.watch_config and settings.config_exists
        self.watch = ConfigWatch(Path(settings.config_path), self._on_file_change) if watched else None
        self.checks = checks
        self.degrading = degrading
        self.listeners = [http_socket, *([metrics_socket] if metrics_socket is not None else [])]
        self.runtime_dir: Path = ipc.create_runtime_dir()
        self.started_mono = time.monotonic()
        self.runtime_state: RuntimeState = "starting"
        self.seq = 0
        self.pub = ipc.SnapshotSocket(self.runtime_dir)
        self.stop_requested = asyncio.Event()
        self.control = SupervisorControl(self.runtime_dir, self.handle)
        # Before any child starts: it takes NOTIFY_SOCKET out of the environment they inherit.
        self.notifier = ServiceNotifier(SdNotify.from_environ(), self.runtime_dir,
                                        settings.supervisor.heartbeat_ms / 1000)
        self.storage: list[StorageInfo] = []
        self.storage_paths = [settings.record_dir, *(src.record.dir for src in settings.sources)]
        cfg = settings.supervisor
        stop_sec = cfg.stop_timeout_sec
        common = ["--runtime-dir", str(self.runtime_dir)]
        # The API is never retried after giving up: the service stops instead (see run()).
        listen = ["--http-fd", str(http_socket.fileno())]
        if metrics_socket is not None:
            listen += ["--metrics-fd", str(metrics_socket.fileno())]
        self.api = Child("api", Spawn([sys.executable, "-m", "api", *common, *listen],
                                      pass_fds=tuple(s.fileno() for s in self.listeners)),
                         RestartPolicy.from_config(cfg, retry_given_up=False), self.publish, stop_sec)
        self.zygote = Zygote(self.runtime_dir, settings.log_level, RestartPolicy.from_config(cfg), self.publish,
                             stop_sec) if cfg.zygote and become_subreaper() else None
        self.workers = {src.id: self._worker(src) for src in settings.sources}
        binary = turn_relay.turnserver_path() if settings.turn.active else None
        self.turn = Child("turn", Spawn(turn_relay.argv(settings, self.runtime_dir, binary)),
                          RestartPolicy.from_config(cfg), self.publish, stop_sec,
                          raw_level=turn_relay.log_level) if binary else None

    def _worker(self, src: SourceSettings) -> Child:
        args = ["--runtime-dir", str(self.runtime_dir), "--source-id", src.id]
        role = f"worker:{src.id}"
        launch = self.zygote.launcher(role, args) if self.zygote else Spawn(worker_cmdline(sys.executable, args))
        cfg = self.settings.supervisor
        return Child(role, launch, RestartPolicy.from_config(cfg), self.publish, cfg.stop_timeout_sec)

    def _children(self) -> list[Child]:
        return [self.api, *self.workers.values(), *self._helpers()]

    def _helpers(self) -> list[Child]:
        """The children that are not the API or a worker: the TURN relay, the worker template."""
        return [*([self.turn] if self.turn else []), *([self.zygote.child] if self.zygote else [])]

    def _write_settings(self) -> None:
        """The API gets everything; each worker only its own source, without the API token or the
        TURN secret. Files are 0600: they hold secrets. Each is replaced whole (the API re-reads
        its file while the service runs)."""
        files = {ipc.API_SETTINGS_FILE: self.settings}
        files.update({ipc.worker_settings_file(src.id): self.settings.for_worker(src.id)
                      for src in self.settings.sources})
        for name, settings in files.items():
            tmp = self.runtime_dir / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(msgspec.json.encode(settings))
            os.replace(tmp, self.runtime_dir / name)

    def publish(self) -> None:
        self.seq += 1
        state = SupervisorState(
            pid=os.getpid(), seq=self.seq, runtime_state=self.runtime_state, started_mono=self.started_mono,
            checks=self.checks, warnings=self.settings.warnings, degrading_warnings=self.degrading,
            api=self.api.info, workers={sid: child.info for sid, child in
                                        [*self.retiring_workers.items(), *self.workers.items()]},
            turn=self.turn.info if self.turn else None, zygote=self.zygote.child.info if self.zygote else None,
            storage=self.storage, config=self.config)
        self.pub.send(encode(state))

    def emit(self, source_id: str, type_: EventType, data: ConfigData | None = None) -> None:
        """An event of the supervisor's own, under its pid (the API accepts it as the supervisor's)."""
        event = SourceEvent(source_id=source_id, type=type_, time=rfc3339(), data=data)
        self.pub.send(encode(EventMessage(event, os.getpid())))

    def handle(self, request: SupervisorRequest) -> SupervisorReply:
        """A request from the API on the supervisor channel."""
        if self.runtime_state != "running":
            return SupervisorReply(error="unavailable", detail=f"the service is {self.runtime_state}")
        if isinstance(request, ReloadConfig):
            return self.reload("api")
        if isinstance(request, GetSourceConfig):
            return self._source_config()
        if isinstance(request, EditSource):
            return self._edit(request)
        return self._restart(request)

    def _restart(self, request: RestartSource) -> SupervisorReply:
        child = self.workers.get(request.source_id)
        if child is None:
            return SupervisorReply(error="not_found", detail=f"no source with id '{request.source_id}'")
        return SupervisorReply(detail=child.request_restart())

    def _source_config(self) -> SupervisorReply:
        generation = self.config.generation
        try:
            entries = source_entries.current(self.settings)
        except source_entries.EditRefused as exc:
            return SupervisorReply(error=exc.code, detail=exc.detail, generation=generation)
        return SupervisorReply(generation=generation, sources=source_entries.scrubbed(entries),
                               detail=f"{self.settings.edits_kind}: {public_value(self.settings.edits_path)}")

    def _edit(self, edit: EditSource) -> SupervisorReply:
        """Check (the loader's rules), write, then apply: a change that cannot be written is not
        applied either, so what runs is always what the next start will load."""
        generation = self.config.generation
        if edit.if_match is not None and edit.if_match != generation:
            return SupervisorReply(error="precondition_failed", generation=generation,
                                   detail=f"the config is at generation {generation}, not {edit.if_match}")
        try:
            entries = source_entries.edited(source_entries.current(self.settings), edit)
            doc = source_entries.document(self.settings, entries)
            if self.settings.edits_kind == "config":
                candidate = self.reader.load(file_raw=doc)
            else:
                candidate = self.reader.load(state_sources=entries)
            source_entries.write_atomically(Path(self.settings.edits_path), doc)
            if self.watch is not None:
                self.watch.accept_current()
        except source_entries.EditRefused as exc:
            return SupervisorReply(error=exc.code, detail=exc.detail, generation=generation)
        except ConfigRejected as exc:
            return SupervisorReply(error="bad_request", detail=exc.detail, generation=generation)
        outcome = self.apply(candidate, "api")
        return SupervisorReply(generation=outcome.generation, outcome=outcome,
                               detail=f"written to {self.settings.edits_path}")

    def reload(self, origin: ConfigOrigin) -> SupervisorReply:
        """Read the config again; a bad one is refused whole and the running generation stays."""
        try:
            candidate = self.reader.load()
        except ConfigRejected as exc:
            log.error("config reload (%s) rejected; still running generation %d: %s", origin,
                      self.config.generation, exc.detail)
            self.emit(SERVICE_EVENT_SOURCE, "config.rejected",
                      ConfigData(generation=self.config.generation, origin=origin, detail=exc.detail))
            return SupervisorReply(error="bad_request", detail=exc.detail, generation=self.config.generation)
        outcome = self.apply(candidate, origin)
        return SupervisorReply(generation=outcome.generation, outcome=outcome, detail="reloaded")

    def apply(self, candidate: Settings, origin: ConfigOrigin) -> ConfigOutcome:
        """The next generation: settings files first (a worker reads its own when it starts),
        then the workers that changed; the others are not touched."""
        change: Plan = plan(self.settings, candidate, self.next_index)
        self.settings, self.next_index = change.settings, change.next_index
        self.config = ConfigInfo(generation=self.config.generation + 1, loaded_at=rfc3339(), source=origin,
                                 requires_restart=change.requires_restart, updated=change.updated,
                                 restarted=change.restarted)
        for source_id in change.removed:
            (self.runtime_dir / ipc.worker_settings_file(source_id)).unlink(missing_ok=True)
        self._write_settings()
        for source_id in change.removed:
            self._retire(source_id)
        for source_id in change.added:
            src = self.settings.source(source_id)
            assert src is not None
            register_source_url(src.url)
            self.workers[source_id] = child = self._worker(src)
            self.worker_tasks[source_id] = asyncio.create_task(child.keep_running())
        for source_id in change.restarted:
            src = self.settings.source(source_id)
            assert src is not None
            register_source_url(src.url)
            self.workers[source_id].request_restart()
        for source_id in change.updated:
            update = asyncio.create_task(self._update(source_id))
            self.updates.add(update)
            update.add_done_callback(self.updates.discard)
        outcome = ConfigOutcome(generation=self.config.generation, added=change.added, removed=change.removed,
                                restarted=change.restarted, updated=change.updated, changed=change.changed,
                                restarted_for=change.restarted_for, requires_restart=change.requires_restart)
        restarted = [f"{sid} (for {', '.join(change.restarted_for[sid])})" for sid in change.restarted]
        log.info("config generation %d applied (%s): added %s, removed %s, restarted %s, updated in place %s%s",
                 outcome.generation, origin, change.added or "none", change.removed or "none",
                 restarted or "none", change.updated or "none",
                 f"; needs a service restart: {', '.join(change.requires_restart)}"
                 if change.requires_restart else "")
        self.publish()
        self.emit(SERVICE_EVENT_SOURCE, "config.applied", ConfigData(
            generation=outcome.generation, origin=origin, added=change.added, removed=change.removed,
            restarted=change.restarted, updated=change.updated, changed=change.changed,
            restarted_for=change.restarted_for, requires_restart=change.requires_restart))
        return outcome

    async def _update(self, source_id: str) -> None:
        """Hot settings to a running worker; one that cannot take them is restarted instead (its
        settings file already holds them). A worker not running reads them when it starts.
        One update at a time per source, each with the settings current when it is sent, so two
        quick edits can never reach the worker in the wrong order."""
        async with self.update_locks[source_id]:
            child, src = self.workers.get(source_id), self.settings.source(source_id)
            if child is None or src is None or child.info.state != "running":
                return
            generation = self.config.generation
            answer = await update_in_place(self.runtime_dir, src)
        if isinstance(answer, Applied):
            log.info("worker:%s applied in place: %s", source_id, ", ".join(answer.paths) or "nothing")
            return
        if self.workers.get(source_id) is not child:
            return
        log.warning("worker:%s did not take its new settings in place (%s); restarting it", source_id, answer)
        child.request_restart()
        if self.config.generation == generation:  # the generation says what really happened
            self.config = msgspec.structs.replace(
                self.config, updated=[s for s in self.config.updated if s != source_id],
                restarted=[*self.config.restarted, source_id])
            self.publish()

    def _retire(self, source_id: str) -> None:
        """A removed source: announced, then its worker stopped (SIGTERM: its sessions close and
        its recordings are finalized)."""
        self.emit(source_id, "source.removed")
        self.update_locks.pop(source_id, None)
        child = self.workers.pop(source_id)
        task = self.worker_tasks.pop(source_id)
        self.retiring_workers[source_id] = child

        async def stop() -> None:
            await child.stop()
            await task
            if self.retiring_workers.get(source_id) is child:
                del self.retiring_workers[source_id]
            self.publish()

        retiring = asyncio.create_task(stop())
        self.retiring.add(retiring)
        retiring.add_done_callback(self.retiring.discard)

    async def _heartbeat(self) -> None:
        interval = self.settings.supervisor.heartbeat_ms / 1000
        while True:  # the children of now: a config change adds and removes workers
            resources.sample_usage([child.info for child in self._children()])
            self.publish()
            await asyncio.sleep(interval)

    async def _watch_storage(self) -> None:
        """In a thread and apart from the heartbeat: statvfs can hang on a network mount."""
        while True:
            self.storage = await asyncio.to_thread(resources.sample_storage, self.storage_paths)
            await asyncio.sleep(STORAGE_INTERVAL_SEC)

    async def _greet_subscribers(self) -> None:
        while True:
            await self.pub.subscribed()
            self.publish()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal(sig: int) -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                log.info("received %s; stopping", signal.Signals(sig).name)
                self.stop_requested.set()
            else:  # a second signal: do not wait for graceful stops
                for child in self._children():
                    child.signal(signal.SIGKILL)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        # SIGHUP: reload the config. Children run in their own sessions, so a terminal hangup
        # never reaches them.
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._write_settings()
        self.worker_tasks = {sid: asyncio.create_task(child.keep_running()) for sid, child in self.workers.items()}
        tasks = [asyncio.create_task(child.keep_running()) for child in (self.api, *self._helpers())]
        background = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._greet_subscribers()),
                      asyncio.create_task(self.control.run()), asyncio.create_task(self._watch_storage()),
                      asyncio.create_task(self.notifier.run())]
        if self.watch is not None:
            background.append(asyncio.create_task(self.watch.run()))
        if self.zygote is not None:
            background.append(asyncio.create_task(self.zygote.accept()))
        self.runtime_state = "running"
        self.publish()
        api_given_up = asyncio.create_task(self.api.given_up.wait())
        stop = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait({api_given_up, stop}, return_when=asyncio.FIRST_COMPLETED)
        code = EXIT_OK if stop.done() else EXIT_RUNTIME
        if code != EXIT_OK:
            log.error("the API process keeps crashing; stopping the service")
        await self.shutdown(self._children(), tasks + background + [api_given_up, stop])
        return code

    def _on_sighup(self) -> None:
        if self.runtime_state == "running":
            log.info("received SIGHUP; reloading the config")
            self.reload("signal")

    def _on_file_change(self) -> None:
        if self.runtime_state == "running":
            log.info("the config file changed; reloading it")
            self.reload("file")

    async def shutdown(self, children: list[Child], tasks: list[asyncio.Task]) -> None:
        self.runtime_state = "stopping"
        if self.watch is not None:
            self.watch.stop()
        self.notifier.stopping()
        self.publish()
        for child in children:
            child.stopping = True  # a child that dies from here on is not restarted
        # Workers first so the API can still report them stopping; then the API.
        await asyncio.gather(*(c.stop() for c in self.workers.values()), *(c.stop() for c in self._helpers()),
                             *self.retiring)
        await self.api.stop()
        for t in [*tasks, *self.worker_tasks.values(), *self.updates]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pub.close()
        self.control.close()
        if self.zygote is not None:
            self.zygote.close()
        self.notifier.notify.close()
        for listener in self.listeners:
            listener.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        log.info("stopped")
