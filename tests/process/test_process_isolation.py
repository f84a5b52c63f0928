"""What a worker holds and what it can claim: a worker parses untrusted media,
so it gets only its own source's settings, and the API takes a source's state only from that
source's worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import zmq
from support.processes import cmdline, wait_for

from protocol.events import SourceData, SourceEvent
from protocol.ipc import API_SETTINGS_FILE, state_endpoint, worker_settings_file
from protocol.messages import EventMessage, SourceStatus, WorkerState, encode

TOKEN = "isolation-token-0123456789"
CAMERA = "rtsp://admin:cam-pass-4242@127.0.0.1:9/stream1"


def _runtime_dir(server) -> Path:
    argv = cmdline(server.children()["api"]).split()
    return Path(argv[argv.index("--runtime-dir") + 1])


def test_workers_get_only_their_own_source_settings(icey):
    server = icey(["--demo", "--no-turn", "--source", f"cam={CAMERA}"], env={"ICEY_AUTH_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: server.source("demo-1", auth)["state"] == "online", 20, what="demo-1 online")
    runtime = _runtime_dir(server)
    for source_id in ("demo-1", "demo-2", "demo-3", "cam"):
        text = (runtime / worker_settings_file(source_id)).read_text()
        settings = json.loads(text)
        assert [s["id"] for s in settings["sources"]] == [source_id]
        assert TOKEN not in text
        if source_id != "cam":
            assert "cam-pass-4242" not in text and "demo://" in text
    assert TOKEN in (runtime / API_SETTINGS_FILE).read_text()  # the API checks the token: it needs it
    assert (runtime / worker_settings_file("demo-1")).stat().st_mode & 0o777 == 0o600


def test_state_for_another_source_is_rejected(icey):
    server = icey(["--demo", "--no-turn"])
    wait_for(lambda: all(s["state"] == "online" for s in server.status()["sources"]), 20, what="online")
    before = server.source("demo-1")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)  # what a worker connects with
    sock.connect(state_endpoint(_runtime_dir(server)))
    try:
        time.sleep(0.5)  # let the connection settle
        dropped = server.status()["processes"]["api"]["ipcDropped"]
        sock.send(b"x" * (2 << 20))  # over MAXMSGSIZE: ZeroMQ cuts the connection, the API never buffers it
        time.sleep(0.5)  # and we reconnect
        rogue = WorkerState(source_id="demo-1", pid=before["worker"]["pid"] + 100_000, started_mono=1e12, seq=1,
                            source=SourceStatus(state="failed", last_error="spoofed"))
        event = SourceEvent(source_id="demo-1", type="source.offline", time="2026-01-01T00:00:00.000Z",
                            data=SourceData(state="failed", detail="spoofed"))
        for _ in range(5):
            sock.send(encode(rogue))
            sock.send(encode(EventMessage(event, rogue.pid)))
            time.sleep(0.1)
        wait_for(lambda: server.status()["processes"]["api"]["ipcRejected"] >= 10, 5, what="rejections counted")
        assert server.status()["processes"]["api"]["ipcDropped"] == dropped
        after = server.source("demo-1")
        assert after["state"] == "online" and after["lastError"] is None
        assert after["worker"]["pid"] == before["worker"]["pid"]
        events = server.get("/api/sources/demo-1/events").json()["items"]
        assert not any(e.get("data", {}).get("detail") == "spoofed" for e in events)
    finally:
        sock.close(0)
        ctx.term()
