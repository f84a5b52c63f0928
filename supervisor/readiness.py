"""What the supervisor tells systemd, decided on the API's reports (api/supervisor_report.py):

- READY=1 once the API answers HTTP and every worker has reported its state (or was given up):
  the service is up then, whether or not a camera is online;
- STATUS= a one-line summary ("3/4 sources online, 2 viewers"), sent when it changes;
- WATCHDOG=1 every half WATCHDOG_USEC, but only while the state plane is alive: this loop runs
  and the API's reports keep arriving (they stop when the API hangs, or no longer hears anyone);
- STOPPING=1 when the service begins to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.messages import ApiReport, decode_api_report
from supervisor.sd_notify import SdNotify

log = logging.getLogger("icey.readiness")
# Reports missing for this many heartbeats mean the state plane is not alive. An API restart
# (about two seconds) pauses the pings well within any sensible WatchdogSec.
STALE_HEARTBEATS = 3


class ServiceNotifier:
    def __init__(self, notify: SdNotify, runtime_dir: Path, heartbeat_sec: float) -> None:
        self.notify = notify
        self.heartbeat_sec = heartbeat_sec
        self.stale_after = STALE_HEARTBEATS * heartbeat_sec
        self.sock = zmq.asyncio.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.bind(ipc.report_endpoint(runtime_dir))
        self.report: ApiReport | None = None
        self.heard_at: float | None = None
        self.ready = False
        self.status = ""

    def alive(self, now: float) -> bool:
        return self.heard_at is not None and now - self.heard_at <= self.stale_after

    def summary(self, now: float) -> str:
        r = self.report
        if r is None:
            return "Starting: waiting for the API"
        if not self.alive(now):
            return "The API is not answering; waiting for it"
        if r.reported < r.sources:
            return f"Starting: {r.reported}/{r.sources} sources reported"
        return f"{r.online}/{r.sources} sources online, {r.viewers} viewer{'' if r.viewers == 1 else 's'}"

    def on_report(self, report: ApiReport, now: float) -> None:
        self.report, self.heard_at = report, now
        if not self.ready and report.reported >= report.sources:
            self.ready = True
            log.info("ready: the API answers and all %d worker(s) reported", report.sources)
            self._update(now, READY="1")
        else:
            self._update(now)

    def _update(self, now: float, **fields: str) -> None:
        status = self.summary(now)
        if status != self.status:
            self.status = fields["STATUS"] = status
        if fields:
            self.notify.send(**fields)

    def stopping(self) -> None:
        self.status = "Stopping"
        self.notify.send(STOPPING="1", STATUS=self.status)

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._watch_staleness())]
        if self.notify.watchdog_sec:
            tasks.append(asyncio.create_task(self._watchdog(self.notify.watchdog_sec / 2)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            self.sock.close(0)

    async def _receive(self) -> None:
        while True:
            data = await self.sock.recv()
            try:
                report = decode_api_report(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            self.on_report(report, time.monotonic())

    async def _watch_staleness(self) -> None:
        """The summary also changes when reports stop coming."""
        while True:
            await asyncio.sleep(self.heartbeat_sec)
            self._update(time.monotonic())

    async def _watchdog(self, interval: float) -> None:
        while True:
            if self.alive(time.monotonic()):
                self.notify.send(WATCHDOG="1")
            await asyncio.sleep(interval)
