"""What the server opens to other web pages and other hosts (issue 9, items 2-4): CORS only for
listed origins, requests only for this server's names (no DNS rebinding), no id oracle in
OPTIONS, no Quart static route, and, without a token, nothing but reading for other hosts."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from support.netns import LAN_CLIENT_IP, SERVER_IP, Netns
from support.processes import IceyServer

TOKEN = "exposure-token-0123456789"
SDP = {"Content-Type": "application/sdp"}
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers")


def _cors(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def test_cors_only_for_listed_origins(icey):
    """Item 2: by default no origin gets CORS (it was `*`); a listed one gets itself echoed."""
    plain = icey(["--demo", "--no-turn"])
    for method, path in (("OPTIONS", "/api/sources/demo-1/whep"), ("GET", "/api/status"),
                         ("DELETE", "/api/sources/demo-1/sessions/x")):
        r = plain.request(method, path, {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert _cors(r) == {}, (method, path, r.headers)
    listed = icey(["--demo", "--no-turn"], config={"auth": {"allowedOrigins": ["https://Dash.example/"]}})
    r = listed.request("OPTIONS", "/api/sources/demo-1/whep", {"Origin": "https://dash.example"})
    assert r.status == 204
    assert r.headers["access-control-allow-origin"] == "https://dash.example"
    assert all(name in r.headers for name in CORS_HEADERS) and "Origin" in r.headers["vary"]
    assert "Link" in r.headers["access-control-expose-headers"]
    r = listed.get("/api/status", {"Origin": "http://evil.example"})
    assert r.status == 200 and _cors(r) == {} and "Origin" in r.headers["vary"]


def test_foreign_host_header_is_refused(icey):
    """Item 2: a Host that is not one of the server's names is refused (DNS rebinding)."""
    server = icey(["--demo", "--no-turn"], config={"http": {"allowedHosts": ["cams.example"]}})
    port = server.port
    for host in ("evil.example", f"evil.example:{port}", "localhost.evil.example", f"127.0.0.1.nip.io:{port}"):
        for path in ("/api/status", "/", "/api/health"):
            r = server.get(path, {"Host": host})
            assert r.status == 421, (host, path, r.status)
            assert r.json()["error"] == "misdirected_request" and "http.allowedHosts" in r.json()["detail"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", "10.1.2.3",
                 f"cams.example:{port}", "CAMS.example"):
        assert server.get("/api/status", {"Host": host}).status == 200, host


def test_options_does_not_reveal_source_ids(icey):
    """Item 2: without the token, OPTIONS answers the same for a known and an unknown id."""
    server = icey(["--demo", "--no-turn"], env={"ICEY_AUTH_TOKEN": TOKEN})
    answers = [server.request("OPTIONS", f"/api/sources/{sid}/{kind}") for sid in ("demo-1", "nope")
               for kind in ("whep", "whip")]
    assert {r.status for r in answers} == {204}
    assert len({(tuple(sorted(r.headers.keys() - {"date"})), r.body) for r in answers}) == 1


def test_quart_static_route_is_gone(icey):
    """Item 3: Quart's default /static/<path> served <cwd>/static to anyone; it must not exist."""
    server = icey(["--demo", "--no-turn"])
    static = server.workdir / "static"
    static.mkdir()
    (static / "notes.txt").write_text("private notes")
    r = server.get("/static/notes.txt")
    assert r.status == 404 and b"private notes" not in r.body
    assert r.json()["error"] == "not_found"


@pytest.fixture
def netns():
    if shutil.which("ip") is None or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode:
        pytest.fail("`ip netns` is not usable here (needs iproute2 and root)")
    ns = Netns().create()
    yield ns
    ns.delete()


def _start_in(ns: Netns, tmp_path, name: str, env: dict[str, str] | None = None) -> IceyServer:
    """The default bind (every interface, here lo and the namespace's LAN) with a stream source
    and a record source; started inside the namespace and reached only from inside it."""
    workdir = tmp_path / name
    workdir.mkdir()
    config = {"sources": [{"id": "cam", "source": "demo://testsrc2?size=160x90&rate=5"},
                          {"id": "desk", "mode": "record"}]}
    server = IceyServer(workdir, ["--host", "0.0.0.0", "--no-turn"], config, env)
    server.argv = ns.command(server.argv)
    server.proc = subprocess.Popen(server.argv, cwd=workdir, env=server.env, stdin=subprocess.DEVNULL,
                                   stdout=server.stdout_path.open("wb"), stderr=server.stderr_path.open("wb"))
    return server


WRITES = [  # what only this host may do without a token, each as it reaches the API
    {"method": "POST", "path": "/api/sources/desk/whip", "headers": SDP, "body": "v=0\r\n"},
    {"method": "DELETE", "path": "/api/sources/cam/sessions/some-session"},
    {"method": "DELETE", "path": "/api/sources/cam/whep/some-session"},
    {"method": "DELETE", "path": "/api/sources/desk/whip/some-session"},
]
READS = [
    {"method": "GET", "path": "/api/status"},
    {"method": "GET", "path": "/"},
    {"method": "POST", "path": "/api/sources/cam/whep", "headers": SDP, "body": "v=0\r\n"},  # watching reads
]


def test_lan_client_without_token_is_read_only(netns, tmp_path):
    """Item 4: with the default bind and no token, a client at another address (10.203.0.2, in a
    private network namespace) can read and watch, but gets 403 for every write; a client on the
    server's own host can still write; with a token configured the token decides, not the address."""
    server = _start_in(netns, tmp_path, "open")
    try:
        target = f"{SERVER_IP}:{server.port}"
        lan = netns.requests(LAN_CLIENT_IP, target, WRITES + READS)
        for call, answer in zip(WRITES, lan[:len(WRITES)], strict=True):
            assert answer["status"] == 403, (call, answer)
            assert '"error":"forbidden"' in answer["body"] and "auth.token" in answer["body"]
        assert [a["status"] for a in lan[len(WRITES):]] == [200, 200, 400]  # the bad SDP got through to the worker
        local = netns.requests("127.0.0.1", f"127.0.0.1:{server.port}", WRITES)
        assert [a["status"] for a in local] == [400, 404, 404, 404]  # reached the route: bad SDP, no session
        assert "only clients on this host can publish" in server.stderr()
    finally:
        server.kill_all()
    secured = _start_in(netns, tmp_path, "token", {"ICEY_AUTH_TOKEN": TOKEN})
    try:
        with_token = [{**c, "headers": {**c.get("headers", {}), "Authorization": f"Bearer {TOKEN}"}} for c in WRITES]
        answers = netns.requests(LAN_CLIENT_IP, f"{SERVER_IP}:{secured.port}", with_token + WRITES[:1])
        assert [a["status"] for a in answers] == [400, 404, 404, 404, 401]
    finally:
        secured.kill_all()
