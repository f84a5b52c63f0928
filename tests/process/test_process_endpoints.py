"""Every endpoint and field of the operator contract, against a real server with --demo."""

from __future__ import annotations

import re

import pytest
from support.processes import wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CHECK_ORDER = ["config", "ffmpeg", "web_root", "ports", "tls", "turn", "intelligence",
               "source:demo-1", "source:demo-2", "source:demo-3", "ipc"]


@pytest.fixture
def demo(icey):
    server = icey(["--demo", "--no-turn"])
    server.wait_all_online()
    return server


def test_health_is_the_contract(demo):
    r = demo.get("/api/health?x=1")  # query strings never change routing
    assert r.status == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "ok" and body["product"] == "icey" and body["service"] == "icey-server"
    assert re.match(r"^\d+\.\d+\.\d+", body["version"])


def test_ready_lists_checks_in_contract_order(demo):
    r = demo.get("/api/ready")
    assert r.status == 200
    body = r.json()
    assert [c["name"] for c in body["checks"]] == CHECK_ORDER
    assert body["ready"] is True
    # TURN off is a degrading warning, and web_root warns (no UI built): degraded, not ok.
    assert body["status"] == "degraded"
    assert any("TURN is disabled" in w for w in body["warnings"])
    assert {c["result"] for c in body["checks"] if c["name"].startswith("source:")} == {"pass"}
    assert all(set(c) == {"name", "result", "detail"} for c in body["checks"])


def test_status_fields(demo):
    st = demo.status()
    for key in ("status", "ready", "product", "service", "mode", "version", "checks", "warnings", "peer",
                "runtime", "uptimeSec", "sessions", "stream", "record", "intelligence", "sources", "processes"):
        assert key in st, key
    assert st["runtime"] == {"state": "running"}
    assert st["peer"]["type"] == "server"
    assert st["sessions"] == {"active": 0, "total": 0}
    assert st["stream"]["sourceKind"] == "demo"
    assert st["record"]["dir"] == "recordings"
    assert st["intelligence"] == {"vision": False, "speech": False}
    assert isinstance(st["uptimeSec"], int) and st["uptimeSec"] >= 0
    children = demo.children()
    assert st["processes"]["supervisor"]["pid"] == demo.proc.pid
    assert st["processes"]["api"]["pid"] == children["api"]
    assert [s["id"] for s in st["sources"]] == ["demo-1", "demo-2", "demo-3"]


def test_source_item_is_measured(demo):
    item = demo.wait_source("demo-1", lambda s: (s["media"]["video"] or {}).get("fps", 0) > 20)
    assert set(item) == {"id", "mode", "labels", "source", "state", "online", "onlineSince", "lastError", "nextRetryAt",
                         "reconnects", "reconnectAttempts", "media", "sessions", "worker", "intelligence",
                         "record"}
    assert item["record"] == {"state": "off", "lastError": None, "bytesFree": None}  # the demo records nothing
    assert item["labels"] == {}  # none configured
    assert item["state"] == "online" and item["online"] is True
    assert RFC3339.match(item["onlineSince"])
    assert item["source"] == {"value": item["source"]["value"], "kind": "demo", "remote": False, "loop": False}
    video = item["media"]["video"]
    assert video["codec"] == "h264" and (video["width"], video["height"]) == (640, 360)
    assert 20 <= video["fps"] <= 30  # the demo runs at 25 fps in real time, not as fast as the CPU allows
    assert video["bitrateKbps"] > 50
    wait_for(lambda: demo.source("demo-1")["media"]["video"]["keyframeIntervalSec"], 10, what="GOP measured")
    assert 0.8 <= demo.source("demo-1")["media"]["video"]["keyframeIntervalSec"] <= 1.2
    assert item["media"]["audio"] == {"codec": "opus", "sampleRate": 48000, "channels": 2}
    assert 0 <= item["media"]["lastPacketAgeMs"] < 2000 and item["media"]["droppedUnits"] == 0
    worker = item["worker"]
    assert worker["pid"] == demo.children()["worker:demo-1"]
    assert worker["state"] == "running" and worker["restarts"] == 0 and worker["lastExitCode"] is None
    assert 0 <= worker["lastHeartbeatAgeMs"] < 3000
    for stage in ("vision", "speech"):
        assert item["intelligence"][stage]["enabled"] is False and item["intelligence"][stage]["active"] is False


def test_sources_list_and_unknown(demo):
    body = demo.get("/api/sources").json()
    assert body["itemCount"] == 3 and [i["id"] for i in body["items"]] == ["demo-1", "demo-2", "demo-3"]
    r = demo.get("/api/sources/nope")
    assert r.status == 404 and r.json()["error"] == "not_found" and r.json()["status"] == "error"


def test_demo_sources_differ(demo):
    probes = [demo.get(f"/api/sources/demo-{i}/probe").json() for i in (1, 2, 3)]
    values = {demo.source(f"demo-{i}")["source"]["value"] for i in (1, 2, 3)}
    assert len(values) == 3
    for p in probes:
        assert p["state"] == "online" and p["packets"] > 0
        assert [s["type"] for s in p["streams"]] == ["video", "audio"]


def test_probe_is_answered_by_the_worker(demo):
    first = demo.get("/api/sources/demo-2/probe").json()
    second = wait_for(lambda: (p := demo.get("/api/sources/demo-2/probe").json())["packets"] > first["packets"]
                      and p, 5, what="packets to grow")
    assert second["sourceId"] == "demo-2"
    assert second["streams"][0]["codec"] == "h264"
    assert demo.get("/api/sources/nope/probe").status == 404


def test_config_document(demo):
    r = demo.get("/api/config")
    assert r.status == 200
    cfg = r.json()
    assert cfg["status"] == "ok" and cfg["mode"] == "stream"
    assert cfg["http"] == {"host": "127.0.0.1", "scheme": "http", "tls": False}
    assert cfg["turn"]["enabled"] is False
    assert cfg["stun"] == {"urls": []}  # never a hard-coded third-party STUN server
    assert cfg["iceServers"] == []
    assert cfg["sources"] == [{"id": f"demo-{i}", "mode": "stream"} for i in (1, 2, 3)]


def test_errors_are_json(demo):
    for path, code, error in (("/api/nope", 404, "not_found"), ("/nope", 404, "not_found")):
        r = demo.get(path)
        assert r.status == code and r.json()["error"] == error
    r = demo.request("POST", "/api/health", body=b"{}")
    assert r.status == 405 and r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers.get("allow", "")


def test_head_works_where_get_does(demo):
    for path in ("/api/health", "/api/ready", "/api/status", "/api/config", "/api/sources"):
        r = demo.request("HEAD", path)
        assert r.status == 200 and r.body == b"", path
