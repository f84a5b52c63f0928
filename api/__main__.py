"""`python -m api --runtime-dir DIR --http-fd N [--metrics-fd M]`: started by the supervisor only.
Serves on the listening sockets the supervisor bound, so a restart never drops a port."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config, Sockets

from api.app import create_app, create_metrics_app
from api.connection_limit import LimitedListener, connection_limit
from api.control_client import ControlClient
from api.state_view import StateView, receive_forever
from api.supervisor_report import SupervisorReport
from protocol import ipc
from protocol.child import load_settings, run_child
from protocol.config import Settings


class ListenerConfig(Config):
    """Hypercorn serving on our own listening socket object (see connection_limit.py)."""

    def __init__(self, listener: LimitedListener) -> None:
        super().__init__()
        self.listener = listener

    def create_sockets(self) -> Sockets:
        if self.ssl_enabled:
            return Sockets([self.listener], [], [])
        return Sockets([], [self.listener], [])


METRICS_MAX_CONNECTIONS = 32  # a scraper or two: the metrics port holds no more open connections


def _config(listener: LimitedListener, settings: Settings) -> ListenerConfig:
    config = ListenerConfig(listener)
    config.keep_alive_timeout = settings.http.keep_alive_timeout_sec  # also bounds slow request headers
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1.0
    if settings.tls.cert and settings.tls.key:
        config.certfile, config.keyfile = settings.tls.cert, settings.tls.key
    return config


def main() -> None:
    parser = argparse.ArgumentParser(prog="api")
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--http-fd", type=int, required=True)
    parser.add_argument("--metrics-fd", type=int)  # metrics.port: /metrics alone, on a listener of its own
    args = parser.parse_args()
    settings = load_settings(args.runtime_dir / ipc.API_SETTINGS_FILE)

    async def run() -> None:
        view = StateView()
        receiver = asyncio.create_task(receive_forever(view, args.runtime_dir))
        app = create_app(settings, view, ControlClient(settings, args.runtime_dir), args.runtime_dir)
        report = SupervisorReport(app.extensions["icey"].documents, args.runtime_dir)
        reporter = asyncio.create_task(report.run())
        config = _config(LimitedListener(args.http_fd, connection_limit(settings.http.max_connections)), settings)

        async def serving_until_stopped() -> None:
            # Hypercorn calls this once its listeners accept connections: the API answers from here on.
            report.serving.set()
            await asyncio.Event().wait()

        servers = [serve(app, config, shutdown_trigger=serving_until_stopped)]
        if args.metrics_fd is not None:
            metrics = _config(LimitedListener(args.metrics_fd, METRICS_MAX_CONNECTIONS), settings)
            servers.append(serve(create_metrics_app(app.extensions["icey"]), metrics,
                                 shutdown_trigger=asyncio.Event().wait))
        try:
            await asyncio.gather(*servers)
        finally:
            receiver.cancel()
            reporter.cancel()

    run_child("api", settings.log_level, run)


main()
