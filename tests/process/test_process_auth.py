"""Auth on every route, in every accepted form; secrets never leak."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import time

import pytest
from support.processes import free_port, wait_for
from support.turn_client import TurnClient

TOKEN = "s3cret-token-value"
TURN_SECRET = "turn-secret-xyz-0123"
ROUTES = ["/api/status", "/api/config", "/api/sources", "/api/sources/demo-1", "/api/sources/demo-1/probe",
          "/api/sources/demo-1/snapshot.jpg", "/api/nope"]


@pytest.fixture
def secured(icey):
    server = icey(["--demo", "--no-turn"], env={"ICEY_AUTH_TOKEN": TOKEN, "ICEY_TURN_SECRET": TURN_SECRET})
    wait_for(lambda: server.get("/api/ready").status == 200, 20, what="ready")
    headers = {"Authorization": f"Bearer {TOKEN}"}  # online too: a snapshot needs a picture
    wait_for(lambda: all(s["state"] == "online" for s in server.status(headers)["sources"]), 20, what="online")
    return server


@pytest.mark.parametrize("path", ROUTES)
def test_every_api_route_needs_the_token(secured, path):
    r = secured.get(path)
    assert r.status == 401
    assert r.json() == {"status": "error", "error": "unauthorized"}
    assert secured.get(path, {"Authorization": "Bearer wrong"}).status == 401
    assert secured.get(path, {"Authorization": f"bearer {TOKEN}"}).status == 401  # exact "Bearer " prefix


@pytest.mark.parametrize("form", ["bearer", "header", "query"])
def test_each_token_form_is_accepted(secured, form):
    headers = {"bearer": {"Authorization": f"Bearer {TOKEN}"}, "header": {"X-Icey-Token": TOKEN}}.get(form, {})
    suffix = f"?token={TOKEN}" if form == "query" else ""
    for path in ROUTES[:-1]:
        r = secured.get(path + suffix, headers)
        assert r.status == 200, (path, r.status)
    assert secured.get("/api/nope" + suffix, headers).status == 404  # authorized, then not found


def test_health_is_open_and_ready_answers_probes(secured):
    assert secured.get("/api/health").status == 200
    r = secured.get("/api/ready")
    assert r.status == 200 and set(r.json()) == {"status", "ready"}
    full = secured.get("/api/ready", {"X-Icey-Token": TOKEN}).json()
    assert "checks" in full


def test_secrets_never_leak(secured):
    auth = {"X-Icey-Token": TOKEN}
    bodies = b"".join(secured.get(p, auth).body for p in ROUTES[:-1] + ["/api/ready"])
    logs = secured.stderr_path.read_bytes() + secured.stdout_path.read_bytes()
    for secret in (TOKEN.encode(), TURN_SECRET.encode()):
        assert secret not in bodies and secret not in logs


def test_turn_credentials_are_time_limited(icey):
    turn_port = free_port()
    server = icey(["--demo", "--turn-port", str(turn_port), "--turn-external-ip", "203.0.113.7"],
                  env={"ICEY_TURN_SECRET": TURN_SECRET})
    wait_for(lambda: (server.status()["processes"]["turn"] or {}).get("state") == "running", 10, what="turn")
    cfg = server.get("/api/config").json()
    turn = cfg["turn"]
    assert turn["enabled"] is True and turn["host"] == "203.0.113.7" and turn["port"] == turn_port
    expiry, name = turn["username"].split(":")
    assert 3500 < int(expiry) - time.time() <= 3600 and name == "icey"
    digest = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    assert cfg["iceServers"] == [{"urls": [f"turn:203.0.113.7:{turn_port}?transport=udp",
                                           f"turn:203.0.113.7:{turn_port}?transport=tcp"],
                                  "username": turn["username"], "credential": turn["credential"]}]
    ready = server.get("/api/ready").json()
    assert not any("turn.secret" in w for w in ready["warnings"])


@pytest.mark.parametrize("where", ["env", "file"])
async def test_secrets_with_a_trailing_newline_are_trimmed(icey, where):
    """Issue 9, item 5: a token or TURN secret ending in a newline (as Kubernetes secrets and
    `echo > file` leave them) is the same secret without it, for the API and for coturn alike."""
    if shutil.which("turnserver") is None:
        pytest.fail("coturn not installed (see .ci/install-deps)")
    secrets = {"token": TOKEN + "\n", "secret": TURN_SECRET + "\r\n"}
    if where == "env":
        config, env = None, {"ICEY_AUTH_TOKEN": secrets["token"], "ICEY_TURN_SECRET": secrets["secret"]}
    else:
        config, env = {"auth": {"token": secrets["token"]}, "turn": {"secret": secrets["secret"]}}, None
    turn_port = free_port()
    server = icey(["--demo", "--turn-port", str(turn_port)], config=config, env=env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: (server.status(auth)["processes"]["turn"] or {}).get("state") == "running", 10, what="turn")
    assert server.get("/api/status").status == 401
    turn = server.get("/api/config", auth).json()["turn"]
    digest = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    client = await TurnClient(turn_port, turn["username"], turn["credential"]).open()
    try:  # coturn, which reads its config line by line, agrees on the secret
        assert (await client.allocate())[0] == "127.0.0.1"
    finally:
        client.close()
