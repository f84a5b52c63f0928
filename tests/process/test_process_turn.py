"""The TURN relay (coturn) run by the supervisor: real allocations with the credentials that
/api/config hands out, a relay-only viewer, and what the relay refuses: private peers, TCP
relays, allocations past the quota, and any credentials at all without a secret."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import aioice
import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from support.processes import alive, children_of, cmdline, free_port, wait_for
from support.turn_client import TCP, TurnClient
from support.webrtc_client import Viewer, _consume, _post, wait_frames

SECRET = "relay-secret-0123456789"
LOOPBACK = {"webrtc": {"hostAddresses": ["127.0.0.1"]}}
# The server's own media is on 127.0.0.1: the relay-only viewer needs that one loopback peer.
CONFIG = {**LOOPBACK, "turn": {"allowPrivatePeers": ["127.0.0.1"], "userQuota": 3}}
FORBIDDEN_IP = (403, "Forbidden IP")


def _need_coturn() -> None:
    if shutil.which("turnserver") is None:
        pytest.fail("coturn not installed (see .ci/install-deps)")


def _start(icey, config: dict, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
    port = free_port()
    server = icey(["--demo", "--turn-port", str(port), *args], config=config, env=env)
    return server, port


def _turn_running(server) -> None:
    wait_for(lambda: (server.status()["processes"]["turn"] or {}).get("state") == "running", 10, what="turn up")


@pytest.fixture
def turn_server(icey):
    _need_coturn()
    server, port = _start(icey, CONFIG, {"ICEY_TURN_SECRET": SECRET})
    _turn_running(server)
    return server, port


def _config_credentials(server) -> tuple[str, str]:
    turn = server.get("/api/config").json()["turn"]
    return turn["username"], turn["credential"]


def _coturn_config(server) -> list[str]:
    """The config file the running coturn was started with (`turnserver -c <path>`)."""
    [pid] = [p for p in children_of(server.proc.pid) if "turnserver" in cmdline(p)]
    path = cmdline(pid).split()[-1]
    return Path(path).read_text().splitlines()


async def test_credentials_from_config_allocate_a_relay(turn_server):
    server, port = turn_server
    cfg = server.get("/api/config").json()
    turn = next(s for s in cfg["iceServers"] if s["urls"][0].startswith("turn:"))
    assert cfg["turn"]["port"] == port
    conn = aioice.Connection(ice_controlling=True, components=1, turn_server=("127.0.0.1", port),
                             turn_username=turn["username"], turn_password=turn["credential"],
                             turn_transport="udp", transport_policy=aioice.TransportPolicy.RELAY)
    await conn.gather_candidates()
    relays = [c for c in conn.local_candidates if c.type == "relay"]
    await conn.close()
    assert relays, "no relay candidate: the TURN server refused the credentials"
    # Wrong credentials give nothing (aioice does not raise): the check above can fail.
    bad = aioice.Connection(ice_controlling=True, components=1, turn_server=("127.0.0.1", port),
                            turn_username=turn["username"], turn_password="wrong", turn_transport="udp",
                            transport_policy=aioice.TransportPolicy.RELAY)
    await bad.gather_candidates()
    assert not [c for c in bad.local_candidates if c.type == "relay"]
    await bad.close()


async def test_relay_only_viewer_plays(turn_server):
    server, port = turn_server
    turn = next(s for s in server.get("/api/config").json()["iceServers"] if s["urls"][0].startswith("turn:"))
    pc = RTCPeerConnection(RTCConfiguration(
        iceServers=[RTCIceServer(urls=f"turn:127.0.0.1:{port}?transport=udp", username=turn["username"],
                                 credential=turn["credential"])],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert " typ relay " in pc.localDescription.sdp and " typ host " not in pc.localDescription.sdp
    viewer = Viewer(pc=pc, location="", status=0, started=0.0)

    @pc.on("track")
    def on_track(track) -> None:
        import asyncio
        viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))

    status, _, body = _post(f"{server.base}/api/sources/demo-1/whep", pc.localDescription.sdp.encode(),
                            {"Content-Type": "application/sdp"})
    assert status == 201
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="answer"))
    try:
        await wait_frames(viewer, 20)
    finally:
        await viewer.close()


def test_turn_dies_with_the_supervisor(turn_server):
    server, _ = turn_server
    turn_pid = server.status()["processes"]["turn"]["pid"]
    assert alive(turn_pid)
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: not alive(turn_pid), 5, what="coturn to exit")


def test_missing_coturn_is_a_warning_not_a_lie(icey):
    venv_bin = os.path.dirname(sys.executable)
    server = icey(["--demo", "--turn-port", str(free_port())], config=CONFIG,
                  env={"PATH": venv_bin, "ICEY_TURN_SECRET": SECRET})
    wait_for(lambda: server.status()["runtime"]["state"] == "running", 10, what="supervisor state")
    ready = server.get("/api/ready").json()
    check = next(c for c in ready["checks"] if c["name"] == "turn")
    assert check["result"] == "warn" and "coturn" in check["detail"]
    cfg = server.get("/api/config").json()
    assert not [s for s in cfg["iceServers"] if s["urls"][0].startswith("turn:")]
    assert server.status()["processes"]["turn"] is None


async def test_turn_is_no_open_relay_into_the_lan(turn_server):
    """Issue 9, item 1: private, loopback, link-local, CGNAT and metadata peers are refused unless
    listed; TCP relays are refused; one credential gets at most userQuota allocations."""
    server, port = turn_server
    username, credential = _config_credentials(server)
    client = await TurnClient(port, username, credential).open()
    try:
        assert (await client.allocate())[0] == "127.0.0.1"
        assert await client.permit("127.0.0.1") == "ok"  # listed in allowPrivatePeers
        assert await client.permit("203.0.113.5") == "ok"  # a public peer (no packet is sent to it)
        for peer in ("127.0.0.2", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254"):
            assert await client.permit(peer) == FORBIDDEN_IP, peer
    finally:
        client.close()
    tcp = await TurnClient(port, username, credential, transport="tcp").open()
    try:
        assert (await tcp.allocate(TCP))[0] == 442  # Unsupported Transport Protocol
    finally:
        tcp.close()
    quota = [await TurnClient(port, username, credential).open() for _ in range(3)]
    try:  # the first client holds one allocation of the three
        assert [(await c.allocate())[0] for c in quota] == ["127.0.0.1", "127.0.0.1", 486]
    finally:
        for c in quota:
            c.close()


async def test_turn_refuses_loopback_unless_listed_and_has_no_static_users(icey):
    """Issue 9, item 1: with the default config even 127.0.0.1 is refused, and coturn's config
    has REST credentials only, the deny list in a form coturn accepts, quotas and a bandwidth cap."""
    _need_coturn()
    server, port = _start(icey, LOOPBACK, {"ICEY_TURN_SECRET": SECRET})
    _turn_running(server)
    client = await TurnClient(port, *_config_credentials(server)).open()
    try:
        assert (await client.allocate())[0] == "127.0.0.1"
        assert await client.permit("127.0.0.1") == FORBIDDEN_IP
        assert await client.permit("10.0.0.1") == FORBIDDEN_IP
    finally:
        client.close()
    lines = _coturn_config(server)
    assert not [line for line in lines if line.startswith(("user=", "lt-cred-mech", "allow-loopback-peers"))]
    assert "use-auth-secret" in lines and "no-tcp-relay" in lines
    assert {"user-quota=32", "total-quota=256", "max-bps=1250000"} <= set(lines)
    denied = {line.split("=", 1)[1] for line in lines if line.startswith("denied-peer-ip=")}
    assert {"169.254.0.0-169.254.255.255", "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1", "100.64.0.0-100.127.255.255"} <= denied
    assert "Wrong address format" not in server.stderr()  # coturn ignores (and logs) what it cannot parse


@pytest.mark.parametrize("case", ["no-secret", "no-turn"])
def test_turn_off_hands_out_no_credentials(icey, case):
    """Issue 9, item 1: TURN enabled without a secret runs nothing (no demo login) and says so;
    neither /api/config nor the WHEP Link headers carry credentials then, and both are no-store."""
    _need_coturn()
    env, args = ({}, ()) if case == "no-secret" else ({"ICEY_TURN_SECRET": SECRET}, ("--no-turn",))
    server, _ = _start(icey, LOOPBACK, env, args)
    wait_for(lambda: server.status()["runtime"]["state"] == "running", 10, what="supervisor state")
    assert server.status()["processes"]["turn"] is None
    r = server.get("/api/config")
    assert r.headers["cache-control"] == "no-store"
    cfg = r.json()
    assert cfg["turn"]["enabled"] is False and "username" not in cfg["turn"] and "credential" not in cfg["turn"]
    assert cfg["iceServers"] == []
    options = server.request("OPTIONS", "/api/sources/demo-1/whep")
    assert options.headers["cache-control"] == "no-store" and "link" not in options.headers
    if case == "no-secret":
        check = next(c for c in server.get("/api/ready").json()["checks"] if c["name"] == "turn")
        assert check["result"] == "warn" and "turn.secret" in check["detail"]
