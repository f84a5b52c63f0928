"""A worker given up after a crash loop, on a multi-camera box: restarting it on request, the
slow automatic retry, readiness by `ready.requireSources`, and `Retry-After` only when a retry
can succeed."""

from __future__ import annotations

import os
import signal
import socket

import pytest
from support.processes import http, wait_for

SMALL_DEMO = "demo://testsrc2?size=160x120&rate=10"  # cheap to encode: these tests are about processes
# Deaths are only ever caused by the tests; no automatic retry unless a test asks for one.
FAST = {"restartInitialMs": 300, "restartMaxMs": 600, "crashLoopLimit": 3, "crashLoopWindowSec": 60,
        "heartbeatMs": 500, "givenUpRetrySec": 0}
SDP = {"Content-Type": "application/sdp"}
TOKEN = "restart-token-0123456789"


def sources(*ids: str) -> list[str]:
    return [arg for source_id in ids for arg in ("--source", f"{source_id}={SMALL_DEMO}")]


def start(icey, ids: tuple[str, ...], supervisor: dict | None = None, ready: dict | None = None,
          args: tuple[str, ...] = (), env: dict[str, str] | None = None):
    config: dict = {"supervisor": {**FAST, **(supervisor or {})}}
    if ready is not None:
        config["ready"] = ready
    server = icey([*sources(*ids), "--no-turn", *args], config=config, env=env)
    headers = {"X-Icey-Token": TOKEN} if env else None
    wait_for(lambda: all(s["state"] == "online" for s in server.status(headers)["sources"]), 30, what="online")
    return server


def restart(server, source_id: str, headers: dict[str, str] | None = None):
    return server.request("POST", f"/api/sources/{source_id}/restart", headers)


def test_restart_request_brings_back_a_given_up_worker(icey):
    server = start(icey, ("s1", "s2"))
    s1_pid = server.source("s1")["worker"]["pid"]
    given_up = server.crash_until_given_up("s2")
    assert given_up["state"] == "failed" and given_up["worker"]["restarts"] == 2
    assert given_up["worker"]["nextRestartInMs"] is None  # givenUpRetrySec 0: only a request brings it back
    assert restart(server, "nope").status == 404

    r = restart(server, "s2")
    assert r.status == 202, r.body
    assert r.json()["id"] == "s2" and "given-up" in r.json()["detail"]
    assert r.headers["location"] == "/api/sources/s2"
    item = server.wait_source("s2", lambda s: s["state"] == "online" and s["worker"]["state"] == "running")
    assert item["worker"]["restarts"] == 3  # the two crash restarts, then this one
    assert server.source("s1")["worker"]["pid"] == s1_pid  # the other source was not touched
    assert "worker:s2: restart requested" in server.stderr()


def test_restart_request_restarts_a_running_worker_and_forgets_its_crashes(icey):
    server = start(icey, ("s1",))
    for n in (1, 2):  # two of the three deaths crashLoopLimit allows in the window
        os.kill(server.children()["worker:s1"], signal.SIGKILL)
        server.wait_source("s1", lambda s, n=n: s["worker"]["restarts"] == n and s["state"] == "online")
    pid = server.children()["worker:s1"]

    r = restart(server, "s1")
    assert r.status == 202, r.body
    item = server.wait_source("s1", lambda s: s["worker"]["restarts"] == 3 and s["state"] == "online")
    assert item["worker"]["pid"] != pid
    assert item["worker"]["lastExitCode"] == 0  # stopped with SIGTERM, cleanly: not a crash

    # One more death: the third in the window would give it up, had the request not reset the window.
    os.kill(item["worker"]["pid"], signal.SIGKILL)
    item = server.wait_source("s1", lambda s: s["worker"]["restarts"] == 4 or s["worker"]["state"] == "given-up")
    assert item["worker"]["state"] != "given-up"
    server.wait_source("s1", lambda s: s["state"] == "online")


def _outside_address() -> str | None:
    """This host's address on a non-loopback interface (a connected UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_restart_request_without_a_token_is_for_local_clients_only(icey):
    server = start(icey, ("s1",), args=("--host", "0.0.0.0"))
    pid = server.source("s1")["worker"]["pid"]
    relayed = restart(server, "s1", {"X-Forwarded-For": "203.0.113.9"})  # a proxy on this host
    assert relayed.status == 403 and relayed.json()["error"] == "forbidden"
    outside = _outside_address()
    if outside is not None:
        remote = http("POST", f"http://{outside}:{server.port}/api/sources/s1/restart")
        assert remote.status == 403
    assert server.source("s1")["worker"]["pid"] == pid  # refused requests restarted nothing
    assert restart(server, "s1").status == 202
    server.wait_source("s1", lambda s: s["worker"]["pid"] not in (None, pid) and s["state"] == "online")


def test_restart_request_needs_the_token_when_one_is_configured(icey):
    server = start(icey, ("s1",), env={"ICEY_AUTH_TOKEN": TOKEN})
    auth = {"X-Icey-Token": TOKEN}
    pid = server.source("s1", auth)["worker"]["pid"]
    assert restart(server, "s1").status == 401
    assert restart(server, "s1", {"X-Icey-Token": "wrong"}).status == 401
    assert restart(server, "s1", auth).status == 202
    server.wait_source("s1", lambda s: s["worker"]["pid"] not in (None, pid) and s["state"] == "online",
                       headers=auth)
    # /api/ready?source= follows /api/ready's rule: the code for everyone, the details with the token.
    probe = server.get("/api/ready?source=s1")
    assert probe.status == 200 and set(probe.json()) == {"status", "ready"}
    assert [c["name"] for c in server.get("/api/ready?source=s1", auth).json()["checks"]][-2:] == ["source:s1", "ipc"]
    assert server.get("/api/ready?source=nope").status == 404


def test_given_up_worker_is_retried_after_given_up_retry_sec(icey):
    server = start(icey, ("s1", "s2"), supervisor={"givenUpRetrySec": 2})
    given_up = server.crash_until_given_up("s2")
    assert given_up["worker"]["state"] == "given-up"
    assert 0 < given_up["worker"]["nextRestartInMs"] <= 2000
    check = next(c for c in server.get("/api/ready").json()["checks"] if c["name"] == "source:s2")
    assert check["result"] == "fail" and "next automatic try" in check["detail"]
    item = server.wait_source("s2", lambda s: s["state"] == "online" and s["worker"]["state"] == "running",
                              timeout=20)
    assert item["worker"]["restarts"] == 3  # two crash restarts and the retry
    assert item["worker"]["nextRestartInMs"] is None
    assert "trying again after giving up" in server.stderr()


@pytest.mark.parametrize(("require", "box_status"), [("any", 200), ("all", 503)])
def test_ready_with_a_given_up_worker_follows_require_sources(icey, require, box_status):
    server = start(icey, ("s1", "s2", "s3"), ready={"requireSources": require})
    server.crash_until_given_up("s3")
    r = server.get("/api/ready")
    assert r.status == box_status, r.body
    body = r.json()
    assert body["ready"] is (box_status == 200)
    assert body["status"] == ("degraded" if box_status == 200 else "error")
    assert next(c for c in body["checks"] if c["name"] == "source:s3")["result"] == "fail"
    dead = server.get("/api/ready?source=s3")
    assert dead.status == 503 and dead.json()["ready"] is False
    live = server.get("/api/ready?source=s1")
    assert live.status == 200 and live.json()["ready"] is True
    assert [c["name"] for c in live.json()["checks"] if c["name"].startswith("source:")] == ["source:s1"]
    assert server.get("/api/ready?source=nope").status == 404
    assert server.get("/api/status").json()["ready"] is (box_status == 200)


def test_retry_after_only_when_a_retry_can_succeed(icey):
    server = start(icey, ("s1", "s2"), supervisor={"restartInitialMs": 6000, "restartMaxMs": 6000,
                                                   "crashLoopLimit": 2})
    server.crash_until_given_up("s2")
    for method, path in (("POST", "/api/sources/s2/whep"), ("GET", "/api/sources/s2/probe")):
        r = server.request(method, path, SDP, b"v=0\r\n" if method == "POST" else None)
        assert r.status == 503, (path, r.body)
        assert "retry-after" not in r.headers, path
        assert "gave up" in r.json()["detail"] and "/api/sources/s2/restart" in r.json()["detail"]

    os.kill(server.children()["worker:s1"], signal.SIGKILL)
    server.wait_source("s1", lambda s: s["worker"]["state"] == "restarting", timeout=5)
    whep = server.request("POST", "/api/sources/s1/whep", SDP, b"v=0\r\n")
    probe = server.get("/api/sources/s1/probe")
    assert (whep.status, probe.status) == (503, 503), (whep.body, probe.body)
    # The backoff left (6 s less the 1 s connect grace each request waits out), not a flat 1.
    assert 2 <= int(whep.headers["retry-after"]) <= 6, whep.headers
    assert 1 <= int(probe.headers["retry-after"]) <= 6, probe.headers
