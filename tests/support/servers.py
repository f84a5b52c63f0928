"""Server setups several test files start the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support.processes import IceyServer

# The server offers only 127.0.0.1 as its ICE host address, so the media of a test stays on this machine.
LOOPBACK = {"webrtc": {"hostAddresses": ["127.0.0.1"]}}


def record_server(icey: Callable[..., IceyServer], tmp_path: Path) -> tuple[IceyServer, Path]:
    """A server with one record source, `desk`, whose worker waits for a publisher; and its recordings folder."""
    record_dir = tmp_path / "recordings"
    config = {**LOOPBACK, "media": {"recordDir": str(record_dir)}, "sources": [{"id": "desk", "mode": "record"}]}
    server = icey(["--no-turn"], config)
    server.wait_source("desk", lambda s: s["state"] == "offline")  # the worker waits for a publisher
    return server, record_dir
