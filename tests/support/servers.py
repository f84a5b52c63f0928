"""Server setups several test files start the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support.processes import IceyServer

# The server offers only 127.0.0.1 as its ICE host address, so the media of a test stays on this machine.
LOOPBACK = {"webrtc": {"hostAddresses": ["127.0.0.1"]}}


def record_server(icey: Callable[..., IceyServer], tmp_path: Path, record: dict | None = None,
                  record_dir: Path | None = None) -> tuple[IceyServer, Path]:
    """A server with one record source, `desk`, whose worker waits for a publisher (its `record`
    settings: segmentSeconds, retention); and the folder its recorded segments go to."""
    record_dir = record_dir or tmp_path / "recordings"
    source = {"id": "desk", "mode": "record", **({"record": record} if record else {})}
    config = {**LOOPBACK, "media": {"recordDir": str(record_dir)}, "sources": [source]}
    server = icey(["--no-turn"], config)
    server.wait_source("desk", lambda s: s["state"] == "offline")  # the worker waits for a publisher
    return server, record_dir / "desk"
