"""Downloads from the real API app (api.app.create_app) served by Hypercorn on a real socket in
this process, read by a deliberately slow client: a file body is never cut by Quart's response
timeout (60 s by default; shortened here to 1 s so the test stays short)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from hypercorn.asyncio import serve
from hypercorn.config import Config
from support.processes import free_port

from api.app import create_app
from api.control_client import ControlClient
from api.state_view import StateView
from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags

SIZE = 12 * 1024 * 1024  # more than the kernel buffers on both ends of a loopback connection
TIMEOUT_SEC = 1.0


def slow_get(port: int, path: str, rate: int) -> tuple[bytes, bytes, float]:
    """(head, body, seconds) of a GET read at about `rate` bytes a second."""
    started = time.monotonic()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # no large window to absorb the file
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while chunk := s.recv(64 * 1024):
            data += chunk
            time.sleep(len(chunk) / rate)
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body, time.monotonic() - started


async def test_a_slow_download_outlasts_the_response_timeout(tmp_path, monkeypatch):
    """Issue 9 item 14: the file body is served with no timeout."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"media": {"recordDir": str(tmp_path / "rec")},
                                                      "sources": [{"id": "cam", "mode": "relay"}]}))
    settings = load_settings(parse_flags(["--config", str(tmp_path / "config.json")]), {})
    segment = tmp_path / "rec" / "cam" / "20261126T130512.345Z.mp4"
    segment.parent.mkdir(parents=True)
    content = bytes(range(256)) * (SIZE // 256)
    segment.write_bytes(content)
    runtime = tmp_path / "run"
    runtime.mkdir()
    app = create_app(settings, StateView(), ControlClient(settings, runtime), runtime)
    app.config["RESPONSE_TIMEOUT"] = TIMEOUT_SEC
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        head, body, seconds = await asyncio.to_thread(
            slow_get, port, f"/artifacts/recordings/cam/{segment.name}", 4 * 1024 * 1024)
        assert head.startswith(b"HTTP/1.1 200") and f"content-length: {SIZE}".encode() in head.lower()
        assert seconds > 2 * TIMEOUT_SEC  # the transfer took longer than the timeout...
        assert len(body) == SIZE and body == content  # ...and nothing was cut
    finally:
        stop.set()
        await server
