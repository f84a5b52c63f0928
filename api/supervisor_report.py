"""The API's report to the supervisor (ApiReport), sent at every heartbeat from the moment the
HTTP server accepts connections: the supervisor's systemd notifications rest on it, so READY=1
means the API answers, and a hung API stops the watchdog pings."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from api.documents import Documents
from protocol import ipc
from protocol.messages import ApiReport, encode


class SupervisorReport:
    def __init__(self, documents: Documents, runtime_dir: Path) -> None:
        self.documents = documents
        self.sock = ipc.SnapshotSocket(runtime_dir, ipc.report_endpoint(runtime_dir))
        self.serving = asyncio.Event()  # set once Hypercorn listens (see api/__main__.py)

    def report(self) -> ApiReport:
        docs = self.documents
        sources = docs.settings.sources
        items = [docs.source_item(src, docs.now()) for src in sources]
        reported = sum(1 for src, item in zip(sources, items, strict=True)
                       if item.worker.state == "given-up" or docs.worker_state(src) is not None)
        viewers = sum(1 for src in sources for s in docs.sessions(src) if s.kind == "whep" and s.state == "active")
        return ApiReport(pid=os.getpid(), sources=len(sources), reported=reported,
                         online=sum(1 for item in items if item.online), viewers=viewers)

    async def run(self) -> None:
        await self.serving.wait()
        greeter = asyncio.create_task(self._greet())
        try:
            while True:
                self.sock.send(encode(self.report()))
                await asyncio.sleep(self.documents.heartbeat_sec)
        finally:
            greeter.cancel()
            self.sock.close()

    async def _greet(self) -> None:
        """A report at once when the supervisor's subscription arrives: the first one may have
        gone out before it did."""
        while True:
            await self.sock.subscribed()
            self.sock.send(encode(self.report()))
