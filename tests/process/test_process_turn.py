"""The TURN relay (coturn) run by the supervisor: real allocations with the credentials that
/api/config hands out, and a relay-only viewer."""

from __future__ import annotations

import os
import shutil
import sys

import aioice
import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from support.processes import alive, free_port, wait_for
from support.webrtc_client import Viewer, _consume, _post, wait_frames

CONFIG = {"webrtc": {"hostAddresses": ["127.0.0.1"]}, "turn": {"allowLocalRelay": True}}


@pytest.fixture
def turn_server(icey):
    if shutil.which("turnserver") is None:
        pytest.fail("coturn not installed (see .ci/install-deps)")
    port = free_port()
    server = icey(["--demo", "--turn-port", str(port)], config=CONFIG, env={"ICEY_TURN_SECRET": "relay-secret-1"})
    wait_for(lambda: (server.status()["processes"]["turn"] or {}).get("state") == "running", 10, what="turn up")
    return server, port


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
    server = icey(["--demo", "--turn-port", str(free_port())], config=CONFIG, env={"PATH": venv_bin})
    wait_for(lambda: server.status()["runtime"]["state"] == "running", 10, what="supervisor state")
    ready = server.get("/api/ready").json()
    check = next(c for c in ready["checks"] if c["name"] == "turn")
    assert check["result"] == "warn" and "coturn" in check["detail"]
    cfg = server.get("/api/config").json()
    assert not [s for s in cfg["iceServers"] if s["urls"][0].startswith("turn:")]
    assert server.status()["processes"]["turn"] is None
