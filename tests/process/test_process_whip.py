"""WHIP record and relay against the real server, with real aiortc publishers and viewers."""

from __future__ import annotations

import asyncio
import os
import signal

from support.media import ffprobe
from support.processes import until
from support.servers import LOOPBACK, record_server
from support.webrtc_client import publish, wait_frames, watch


async def test_record_clean_end(icey, tmp_path):
    server, record_dir = record_server(icey, tmp_path)
    publisher = await publish(server.base, "desk")
    assert publisher.status == 201 and "/api/sources/desk/whip/" in publisher.location
    await until(lambda: server.source("desk")["state"] == "online", 5, what="publisher active")
    await asyncio.sleep(3.0)
    assert server.request("DELETE", publisher.location).status == 200
    await publisher.close()
    files = await until(lambda: list(record_dir.glob("desk-*.mp4")), 5, what="recording")
    assert len(files) == 1 and files[0].name.endswith("Z.mp4")
    info = await asyncio.to_thread(ffprobe, files[0])
    streams = info["by_type"]
    assert streams["video"]["codec_name"] == "h264" and (streams["video"]["width"], streams["video"]["height"]) == \
        (320, 240)
    assert int(streams["video"]["nb_read_frames"]) > 40
    assert streams["audio"]["codec_name"] == "opus" and int(streams["audio"]["nb_read_frames"]) > 50
    assert 2.0 < float(info["format"]["duration"]) < 5.0
    assert info["decode_errors"] == ""
    assert server.source("desk")["state"] == "offline"


async def test_record_survives_kill_of_the_worker(icey, tmp_path):
    server, record_dir = record_server(icey, tmp_path)
    publisher = await publish(server.base, "desk")
    try:
        assert publisher.status == 201, publisher.body
        await until(lambda: server.source("desk")["state"] == "online", 5, what="publisher active")
        await asyncio.sleep(3.0)
        os.kill(server.children()["worker:desk"], signal.SIGKILL)
        files = list(record_dir.glob("desk-*.mp4"))
        assert len(files) == 1
        info = await asyncio.to_thread(ffprobe, files[0])
        streams = info["by_type"]
        # fragments of 0.5 s, flushed: about a second lost at most of ~3 s
        assert int(streams["video"]["nb_read_frames"]) >= 40, streams
        assert "audio" in streams
        assert float(info["format"]["duration"]) >= 1.8
        assert info["decode_errors"] == ""
        await until(lambda: server.source("desk")["worker"]["restarts"] == 1, 10, what="worker restarted")
    finally:
        await publisher.close()


async def test_relay_one_publisher_two_viewers(icey):
    config = {**LOOPBACK, "sources": [{"id": "live", "mode": "relay"}]}
    server = icey(["--no-turn"], config=config)
    server.wait_source("live", lambda s: s["state"] == "offline")
    # A viewer that arrives first stays a viewer: roles come from the endpoint, not arrival order.
    early = await watch(server.base, "live")
    publisher = await publish(server.base, "live")
    late = await watch(server.base, "live")
    try:
        assert early.status == late.status == publisher.status == 201
        await wait_frames(early, 20)
        await wait_frames(late, 20)
        assert {(w, h) for _, w, h, _ in late.video_frames} == {(320, 240)}
        assert early.audio_frames > 0
        second = await publish(server.base, "live")
        assert second.status == 409  # one publisher at a time
        await until(lambda: server.source("live")["state"] == "online", 5, what="live")
        sessions = server.get("/api/sources/live/sessions").json()["items"]
        assert sorted(s["kind"] for s in sessions) == ["whep", "whep", "whip"]

        await publisher.close()  # publisher gone: source offline, viewers stay connected
        await until(lambda: server.source("live")["state"] == "offline", 10, what="offline")
        await asyncio.sleep(0.5)
        assert early.pc.connectionState == "connected" and late.pc.connectionState == "connected"
        count = len(late.video_frames)
        replacement = await publish(server.base, "live")
        assert replacement.status == 201
        await wait_frames(late, count + 20)
        await wait_frames(early, len(early.video_frames) + 10)
        await replacement.close()
    finally:
        for peer in (early, late, publisher):
            await peer.close()


def test_whip_errors(icey, tmp_path):
    server, _ = record_server(icey, tmp_path)
    sdp = {"Content-Type": "application/sdp"}
    r = server.request("POST", "/api/sources/desk/whip", sdp, b"garbage")
    assert r.status == 400
    r = server.request("POST", "/api/sources/desk/whip", sdp,
                       b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                       b"a=rtpmap:96 VP8/90000\r\n")
    assert r.status == 400 and "H.264" in r.json()["detail"]
    r = server.request("POST", "/api/sources/desk/whep", sdp, b"v=0\r\nm=video 9 x 96\r\na=rtpmap:96 H264/90000\r\n")
    assert r.status == 409  # nothing to watch on a record source
