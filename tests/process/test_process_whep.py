"""WHEP viewing against the real server: real aiortc viewers decode what the worker sends."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket

import pytest
from support.media import make_b_frame_file
from support.processes import until, wait_for
from support.servers import LOOPBACK
from support.webrtc_client import wait_frames, watch

from protocol.messages import MAX_SDP_BYTES

SDP = {"Content-Type": "application/sdp"}


def _online(server, *ids):
    for source_id in ids:
        server.wait_source(source_id, lambda s: s["state"] == "online")


def _probe(server, source_id):
    return server.get(f"/api/sources/{source_id}/probe").json()


async def test_demo_viewer_gets_video_and_audio(icey):
    server = icey(["--demo", "--no-turn"], config=LOOPBACK)
    _online(server, "demo-1")
    viewer = await watch(server.base, "demo-1")
    try:
        assert viewer.status == 201
        assert viewer.location.startswith("/api/sources/demo-1/whep/")
        await wait_frames(viewer, 40)
        assert {(w, h) for _, w, h, _ in viewer.video_frames} == {(640, 360)}
        assert viewer.audio_frames > 20
        session_id = viewer.location.rsplit("/", 1)[1]
        listed = await until(lambda: (b := server.get("/api/sources/demo-1/sessions").json())["items"]
                          and b["items"][0]["state"] == "active" and b, 5, what="active session")
        item = listed["items"][0]
        assert listed["itemCount"] == 1 and item["id"] == session_id and item["kind"] == "whep"
        assert item["remote"] == "127.0.0.1" and item["bytesSent"] > 10_000 and item["packetsSent"] > 10
        st = server.status()
        assert st["sessions"] == {"active": 1, "total": 1}
        assert next(s for s in st["sources"] if s["id"] == "demo-1")["sessions"] == {"active": 1, "total": 1}
        assert server.request("DELETE", viewer.location).status == 200
        await until(lambda: server.get("/api/sources/demo-1/sessions").json()["itemCount"] == 0, 3, what="gone")
        assert server.status()["sessions"] == {"active": 0, "total": 1}
        assert server.request("DELETE", viewer.location).status == 404
    finally:
        await viewer.close()


async def test_mp4_file_passthrough_and_aac_to_opus(icey, media_file):
    """MP4 stores AVCC: the worker converts to Annex B (no re-encode); AAC becomes Opus once."""
    server = icey(["--source", f"clip={media_file}", "--no-turn"], config=LOOPBACK)
    _online(server, "clip")
    probe = _probe(server, "clip")
    assert probe["videoDelivery"] == "passthrough" and probe["audioDelivery"] == "transcode"
    viewer = await watch(server.base, "clip")
    try:
        assert viewer.status == 201
        await wait_frames(viewer, 40)  # more than the 30-frame file: it loops seamlessly
        assert {(w, h) for _, w, h, _ in viewer.video_frames} == {(320, 180)}
        pts = [p for *_, p in viewer.video_frames]
        assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), "timestamps must keep increasing over loops"
        arrivals = [t for t, *_ in viewer.video_frames]
        assert max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) < 0.5  # no stall at the loop
        assert viewer.audio_frames > 10
    finally:
        await viewer.close()


async def test_b_frames_are_transcoded_once(icey, tmp_path):
    path = make_b_frame_file(tmp_path / "bframes.mp4")
    server = icey(["--source", f"bf={path}", "--no-turn"], config=LOOPBACK)
    _online(server, "bf")
    probe = _probe(server, "bf")
    assert probe["videoDelivery"] == "transcode"
    viewers = [await watch(server.base, "bf", audio=False) for _ in range(2)]
    try:
        for viewer in viewers:
            await wait_frames(viewer, 20)
            assert {(w, h) for _, w, h, _ in viewer.video_frames} == {(320, 180)}
    finally:
        for viewer in viewers:
            await viewer.close()
    # Nobody watches: the transcode pauses. The next viewer starts it afresh at a keyframe.
    await until(lambda: server.source("bf")["sessions"]["active"] == 0, 10, what="the viewers gone")
    await asyncio.sleep(1.5)
    later = await watch(server.base, "bf", audio=False)
    try:
        assert later.status == 201
        await wait_frames(later, 20)
        assert {(w, h) for _, w, h, _ in later.video_frames} == {(320, 180)}
    finally:
        await later.close()


async def test_late_joiner_gets_a_picture_before_the_next_keyframe(icey):
    # A 4 s GOP: without the GOP cache a mid-GOP joiner would wait up to 4 s for a keyframe.
    server = icey(["--source", "slow=demo://testsrc2?size=320x180&rate=25&gop=100", "--no-turn"], config=LOOPBACK)
    _online(server, "slow")
    first = await watch(server.base, "slow")
    try:
        await wait_frames(first, 10)
        delays = []
        for wait in (1.3, 1.1):  # land mid-GOP
            await asyncio.sleep(wait)
            late = await watch(server.base, "slow")
            await wait_frames(late, 5, timeout=10)
            delays.append(late.first_frame_delay)
            # and it keeps running at the live pace afterwards (no long fast-forward)
            await asyncio.sleep(2.0)
            count = len(late.video_frames)
            await asyncio.sleep(2.0)
            assert 40 <= len(late.video_frames) - count <= 60
            await late.close()
        assert max(delays) < 2.0, delays
    finally:
        await first.close()


async def test_camera_drop_keeps_viewers_connected(icey, rtsp_camera):
    server = icey(["--source", f"cam={rtsp_camera.url}", "--no-turn"], config=LOOPBACK)
    _online(server, "cam")
    viewer = await watch(server.base, "cam")
    try:
        await wait_frames(viewer, 10)
        rtsp_camera.stop()
        await until(lambda: server.source("cam")["state"] == "reconnecting", 15, what="reconnecting")
        await asyncio.sleep(1.0)
        before = len(viewer.video_frames)
        rtsp_camera.start()
        await until(lambda: server.source("cam")["state"] == "online", 30, what="online again")
        await wait_frames(viewer, before + 15, timeout=20)  # resumes with the next keyframe
        assert viewer.pc.connectionState == "connected"
        sessions = server.get("/api/sources/cam/sessions").json()
        assert sessions["itemCount"] == 1 and sessions["items"][0]["state"] == "active"
    finally:
        await viewer.close()


async def test_kick_and_viewer_limit(icey):
    config = {**LOOPBACK, "sources": [{"id": "one", "source": "demo://testsrc2?size=320x180&rate=15",
                                       "maxViewers": 1}]}
    server = icey(["--no-turn"], config=config)
    _online(server, "one")
    viewer = await watch(server.base, "one")
    try:
        await wait_frames(viewer, 5)
        refused = await watch(server.base, "one")
        assert refused.status == 503
        session_id = viewer.location.rsplit("/", 1)[1]
        r = server.request("DELETE", f"/api/sources/one/sessions/{session_id}")
        assert r.status == 200
        await until(lambda: server.get("/api/sources/one/sessions").json()["itemCount"] == 0, 3, what="kicked")
        count = len(viewer.video_frames)
        await asyncio.sleep(1.0)
        assert len(viewer.video_frames) - count <= 2  # media stopped
        again = await watch(server.base, "one")  # the slot is free again
        assert again.status == 201
        await again.close()
        assert server.request("DELETE", "/api/sources/one/sessions/nope").status == 404
    finally:
        await viewer.close()


def test_signalling_errors(icey):
    server = icey(["--demo", "--no-turn"], config=LOOPBACK)
    _online(server, "demo-1")
    r = server.request("POST", "/api/sources/demo-1/whep", SDP, b"this is not sdp")
    assert r.status == 400 and r.json()["error"] == "bad_request"
    r = server.request("POST", "/api/sources/demo-1/whep", SDP,
                       b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                       b"a=rtpmap:96 VP8/90000\r\n")
    assert r.status == 400 and "H.264" in r.json()["detail"]
    r = server.request("POST", "/api/sources/demo-1/whep", {"Content-Type": "application/json"}, b"{}")
    assert r.status == 415 and r.json()["error"] == "unsupported_media_type"
    assert server.request("POST", "/api/sources/nope/whep", SDP, b"v=0").status == 404
    r = server.request("POST", "/api/sources/demo-1/whip", SDP, b"v=0\r\nm=video 9 x 96\r\n")
    assert r.status == 409 and r.json()["error"] == "conflict"
    r = server.request("PATCH", "/api/sources/demo-1/whep/abc", {"Content-Type": "application/trickle-ice-sdpfrag"},
                       b"a=candidate:1")
    assert r.status == 405
    r = server.request("OPTIONS", "/api/sources/demo-1/whep")
    assert r.status == 204 and "application/sdp" in r.headers["accept-post"]
    assert server.get("/api/sources/nope/sessions").status == 404
    assert server.get("/api/health").status == 200  # none of this hurt the server


def test_an_oversized_offer_is_answered_413_before_its_body(icey):
    """Issue 9 item 15: the API takes no more SDP than a worker does (MAX_SDP_BYTES), and says so
    with a 413 a client gets to read, even one that sends its whole 20 MB first."""
    server = icey(["--no-turn"], config={**LOOPBACK, "sources": [{"id": "live", "mode": "relay"}]})
    path = "/api/sources/live/whep"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    conn.request("POST", path, body=b"v" * 20_000_000, headers=SDP)
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 413 and body["status"] == "error" and body["error"] == "too_large"
    assert str(MAX_SDP_BYTES) in body["detail"]
    conn.close()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:  # headers only: no body sent
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\n"
                  f"Content-Length: 20000000\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    r = server.request("POST", path, SDP, b"v" * (MAX_SDP_BYTES + 1))
    assert r.status == 413 and r.json()["error"] == "too_large"
    r = server.request("POST", path, SDP, b"v" * MAX_SDP_BYTES)  # at the limit: the worker reads it (no SDP)
    assert r.status == 400 and r.json()["error"] == "bad_request"


def test_ice_servers_in_link_headers(icey):
    from support.processes import free_port

    turn_port = free_port()
    server = icey(["--demo", "--turn-port", str(turn_port), "--turn-external-ip", "203.0.113.9"],
                  config={**LOOPBACK, "stun": {"urls": ["stun:stun.example.net:3478"]}},
                  env={"ICEY_TURN_SECRET": "s3cr3t-turn-0123456"})
    wait_for(lambda: (server.status()["processes"]["turn"] or {}).get("state") == "running", 10, what="turn")
    r = server.request("OPTIONS", "/api/sources/demo-1/whep")
    links = r.headers.get("link", "")
    assert '<stun:stun.example.net:3478>; rel="ice-server"' in links
    assert f"<turn:203.0.113.9:{turn_port}?transport=udp>" in links and 'credential-type="password"' in links
    assert "s3cr3t-turn-0123456" not in links


@pytest.mark.parametrize("viewers", [3])
async def test_status_counts_match_sessions_list(icey, viewers):
    server = icey(["--demo", "--no-turn"], config=LOOPBACK)
    _online(server, "demo-2", "demo-3")
    opened = [await watch(server.base, sid, audio=False, decode=False) for sid in ("demo-2", "demo-2", "demo-3")]
    try:
        await until(lambda: server.status()["sessions"]["active"] == viewers, 5, interval=0.02, what="3 active")
        st = server.status()
        listed = sum(server.get(f"/api/sources/{sid}/sessions").json()["itemCount"] for sid in ("demo-2", "demo-3"))
        assert listed == st["sessions"]["active"] == st["sessions"]["total"] == viewers
        await opened[0].close()
        await until(lambda: server.status()["sessions"] == {"active": viewers - 1, "total": viewers}, 5,
                    interval=0.02, what="one closed")
    finally:
        for viewer in opened:
            await viewer.close()


def _viewer_process(server, source_id):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "support" / "viewer_process.py"
    proc = subprocess.Popen([sys.executable, str(script), server.base, source_id], stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    assert line.startswith("READY"), line
    return proc, line.split()[1].rsplit("/", 1)[1]


def test_a_silent_viewer_gets_a_grace_period(icey):
    import os
    import signal

    server = icey(["--demo", "--no-turn"], config={**LOOPBACK, "webrtc": {**LOOPBACK["webrtc"],
                                                                           "disconnectGraceSec": 3}})
    _online(server, "demo-1")
    proc, session_id = _viewer_process(server, "demo-1")

    def state():
        items = server.get("/api/sources/demo-1/sessions").json()["items"]
        return next((s["state"] for s in items if s["id"] == session_id), "gone")

    try:
        wait_for(lambda: state() == "active", 5, what="active")
        os.kill(proc.pid, signal.SIGSTOP)  # frozen: no more receiver reports
        wait_for(lambda: state() == "disconnected", 8, what="disconnected")
        assert server.status()["sessions"]["active"] == 0
        os.kill(proc.pid, signal.SIGCONT)  # back within the grace period
        wait_for(lambda: state() == "active", 5, what="active again")
        os.kill(proc.pid, signal.SIGKILL)  # gone for good: closed after the grace period
        wait_for(lambda: state() == "disconnected", 8, what="disconnected again")
        wait_for(lambda: state() == "gone", 8, what="closed after grace")
        assert server.status()["sessions"] == {"active": 0, "total": 1}
    finally:
        proc.kill()
        proc.wait(5)
