"""The running service: start the API and one worker per source, publish their lifecycle on
the state plane, restart a worker when the API asks, stop everything on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import msgspec

from protocol import ipc
from protocol.config import Settings
from protocol.messages import Check, StorageInfo, SupervisorReply, SupervisorRequest, SupervisorState, encode
from protocol.vocabulary import RuntimeState
from supervisor import resources, turn_relay
from supervisor.children import Child
from supervisor.control_server import SupervisorControl
from supervisor.errors import EXIT_OK, EXIT_RUNTIME
from supervisor.readiness import ServiceNotifier
from supervisor.restart_policy import RestartPolicy
from supervisor.sd_notify import SdNotify

log = logging.getLogger("icey.supervisor")
STORAGE_INTERVAL_SEC = 5.0


class Service:
    def __init__(self, settings: Settings, checks: list[Check], degrading: list[str],
                 http_socket: socket.socket) -> None:
        self.settings = settings
        self.checks = checks
        self.degrading = degrading
        self.http_socket = http_socket
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
        self.api = Child("api", [sys.executable, "-m", "api", *common, "--http-fd", str(http_socket.fileno())],
                         RestartPolicy.from_config(cfg, retry_given_up=False), self.publish, stop_sec,
                         pass_fds=(http_socket.fileno(),))
        self.workers = {
            src.id: Child(f"worker:{src.id}", [sys.executable, "-m", "workers", *common, "--source-id", src.id],
                          RestartPolicy.from_config(cfg), self.publish, stop_sec)
            for src in settings.sources
        }
        binary = turn_relay.turnserver_path() if settings.turn.active else None
        self.turn = Child("turn", turn_relay.argv(settings, self.runtime_dir, binary), RestartPolicy.from_config(cfg),
                          self.publish, stop_sec, raw_level=turn_relay.log_level) if binary else None

    def _write_settings(self) -> None:
        """The API gets everything; each worker only its own source, without the API token or the
        TURN secret. Files are 0600: they hold secrets."""
        files = {ipc.API_SETTINGS_FILE: self.settings}
        files.update({ipc.worker_settings_file(src.id): self.settings.for_worker(src.id)
                      for src in self.settings.sources})
        for name, settings in files.items():
            fd = os.open(self.runtime_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(msgspec.json.encode(settings))

    def publish(self) -> None:
        self.seq += 1
        state = SupervisorState(
            pid=os.getpid(), seq=self.seq, runtime_state=self.runtime_state, started_mono=self.started_mono,
            checks=self.checks, warnings=self.settings.warnings, degrading_warnings=self.degrading,
            api=self.api.info, workers={sid: child.info for sid, child in self.workers.items()},
            turn=self.turn.info if self.turn else None, storage=self.storage)
        self.pub.send(encode(state))

    def handle(self, request: SupervisorRequest) -> SupervisorReply:
        """A request from the API on the supervisor channel."""
        child = self.workers.get(request.source_id)
        if child is None:
            return SupervisorReply(error="not_found", detail=f"no source with id '{request.source_id}'")
        if self.runtime_state != "running":
            return SupervisorReply(error="unavailable", detail=f"the service is {self.runtime_state}")
        return SupervisorReply(detail=child.request_restart())

    async def _heartbeat(self) -> None:
        interval = self.settings.supervisor.heartbeat_ms / 1000
        children = [self.api, *self.workers.values(), *([self.turn] if self.turn else [])]
        while True:
            resources.sample_usage([child.info for child in children])
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
        children = [self.api, *self.workers.values(), *([self.turn] if self.turn else [])]

        def on_signal(sig: int) -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                log.info("received %s; stopping", signal.Signals(sig).name)
                self.stop_requested.set()
            else:  # a second signal: do not wait for graceful stops
                for child in children:
                    child.signal(signal.SIGKILL)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        # SIGHUP conventionally means "reload"; its default action would kill the supervisor and
        # leave the runtime dir (and the secrets in settings.json) behind. Children run in their
        # own sessions, so a terminal hangup never reaches them.
        loop.add_signal_handler(signal.SIGHUP, lambda: log.warning(
            "received SIGHUP: reloading the config is not supported yet; still running with the config "
            "loaded at start (restart the service to apply changes)"))
        self._write_settings()
        tasks = [asyncio.create_task(child.keep_running()) for child in children]
        background = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._greet_subscribers()),
                      asyncio.create_task(self.control.run()), asyncio.create_task(self._watch_storage()),
                      asyncio.create_task(self.notifier.run())]
        self.runtime_state = "running"
        self.publish()
        api_given_up = asyncio.create_task(self.api.given_up.wait())
        stop = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait({api_given_up, stop}, return_when=asyncio.FIRST_COMPLETED)
        code = EXIT_OK if stop.done() else EXIT_RUNTIME
        if code != EXIT_OK:
            log.error("the API process keeps crashing; stopping the service")
        await self.shutdown(children, tasks + background + [api_given_up, stop])
        return code

    async def shutdown(self, children: list[Child], tasks: list[asyncio.Task]) -> None:
        self.runtime_state = "stopping"
        self.notifier.stopping()
        self.publish()
        for child in children:
            child.stopping = True  # a child that dies from here on is not restarted
        # Workers first so the API can still report them stopping; then the API.
        await asyncio.gather(*(c.stop() for c in self.workers.values()), *([self.turn.stop()] if self.turn else []))
        await self.api.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pub.close()
        self.control.close()
        self.notifier.notify.close()
        self.http_socket.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        log.info("stopped")
