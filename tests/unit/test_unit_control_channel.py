"""The control channel end to end in this process: the API app (its ControlClient, a DEALER)
asks a worker's ControlServer (a ROUTER) over real ZeroMQ sockets."""

from __future__ import annotations

import asyncio
import json
import time

import zmq.asyncio

from api.app import create_app
from api.control_client import ControlClient
from api.state_view import StateView
from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags
from workers.control_server import ControlServer


class BrokenSessions:
    """A session manager with a bug: what no error handling in the worker anticipated."""

    async def whep(self, sdp: str, remote: str) -> tuple[str, str]:
        raise KeyError("a bug")


async def test_an_unexpected_worker_error_is_answered_at_once(tmp_path, monkeypatch, caplog):
    """Issue 9 item 15: the worker answers "internal" at once; the API says 502 in its JSON error
    shape, not 504 after the offer's 10 s timeout."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"sources": [{"id": "cam", "mode": "relay"}]}))
    settings = load_settings(parse_flags(["--config", str(tmp_path / "config.json")]), {})
    src = settings.sources[0]
    worker = ControlServer(zmq.asyncio.Context.instance(), tmp_path, src.index, src.id, None, None,
                           BrokenSessions(), None)  # type: ignore[arg-type]
    serving = asyncio.create_task(worker.run())
    app = create_app(settings, StateView(), ControlClient(settings, tmp_path), tmp_path)
    try:
        started = time.monotonic()
        response = await app.test_client().post("/api/sources/cam/whep", data=b"v=0\r\nm=video 9 x 96\r\n",
                                                headers={"Content-Type": "application/sdp"})
        elapsed = time.monotonic() - started
        body = await response.get_json()
        assert response.status_code == 502 and body["status"] == "error" and body["error"] == "internal", body
        assert "a bug" not in body["detail"]  # the traceback is in the worker's log, not the response
        assert elapsed < 2.0, elapsed
        assert any("control request failed" in r.getMessage() and r.exc_info for r in caplog.records)
    finally:
        serving.cancel()
        worker.sock.close(0)
