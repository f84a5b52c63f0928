"""`python -m api --runtime-dir DIR --http-fd N`: started by the supervisor only. Serves on
the listening socket the supervisor bound, so a restart never drops the port."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config

from api.app import create_app
from api.control_client import ControlClient
from api.state_view import StateView, receive_forever
from protocol import ipc
from protocol.child import load_settings, run_child


def main() -> None:
    parser = argparse.ArgumentParser(prog="api")
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--http-fd", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings(args.runtime_dir / ipc.API_SETTINGS_FILE)

    async def run() -> None:
        view = StateView()
        receiver = asyncio.create_task(receive_forever(view, args.runtime_dir))
        app = create_app(settings, view, ControlClient(settings, args.runtime_dir), args.runtime_dir)
        config = Config()
        config.bind = [f"fd://{args.http_fd}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = 1.0
        if settings.tls.cert and settings.tls.key:
            config.certfile, config.keyfile = settings.tls.cert, settings.tls.key
        try:
            await serve(app, config, shutdown_trigger=asyncio.Event().wait)
        finally:
            receiver.cancel()

    run_child("api", settings.log_level, run)


main()
