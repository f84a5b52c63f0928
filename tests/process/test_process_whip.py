"""WHIP record and relay against the real server, with real aiortc publishers and viewers."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from support.media import ffprobe
from support.processes import until
from support.servers import LOOPBACK, record_server
from support.small_disk import fill, small_disk
from support.webrtc_client import publish, wait_frames, watch


def recordings(server) -> list[dict]:
    r = server.get("/api/sources/desk/recordings")
    assert r.status == 200, r.body
    return r.json()["items"]


async def test_record_clean_end(icey, tmp_path):
    server, segments = record_server(icey, tmp_path)
    publisher = await publish(server.base, "desk")
    assert publisher.status == 201 and "/api/sources/desk/whip/" in publisher.location
    await until(lambda: server.source("desk")["state"] == "online", 5, what="publisher active")
    await asyncio.sleep(3.0)
    assert server.request("DELETE", publisher.location).status == 200
    await publisher.close()
    files = await until(lambda: list(segments.glob("*.mp4")), 5, what="recording")
    assert len(files) == 1 and files[0].name.endswith("Z.mp4")
    (item,) = recordings(server)  # listed like a continuous recording
    assert item["url"] == f"/artifacts/recordings/desk/{files[0].name}" and not item["open"]
    assert item["bytes"] == files[0].stat().st_size and 2.0 < item["durationSec"] < 5.0
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
    server, segments = record_server(icey, tmp_path)
    publisher = await publish(server.base, "desk")
    try:
        assert publisher.status == 201, publisher.body
        await until(lambda: server.source("desk")["state"] == "online", 5, what="publisher active")
        await asyncio.sleep(3.0)
        os.kill(server.children()["worker:desk"], signal.SIGKILL)
        files = list(segments.glob("*.mp4"))
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


async def test_record_rolls_into_listed_segments_that_retention_sweeps(icey, tmp_path):
    """Issue 8 item 12: a publisher's recording is cut into `record.segmentSeconds` segments (a
    keyframe asked for at each cut), listed, and deleted by the source's retention."""
    retention = {"maxAgeHours": 8 / 3600, "maxTotalMb": 0, "minFreeMb": 0}
    server, segments = record_server(icey, tmp_path, {"segmentSeconds": 1, "retention": retention})
    publisher = await publish(server.base, "desk")
    try:
        assert publisher.status == 201, publisher.body
        items = await until(lambda: len(done := [i for i in recordings(server) if not i["open"]]) >= 3 and done,
                            15, what="three closed segments")
        for item in items[:3]:
            path = segments / item["url"].rsplit("/", 1)[1]
            info = await asyncio.to_thread(ffprobe, path)
            assert info["decode_errors"] == "" and info["by_type"]["audio"]["codec_name"] == "opus"
            assert int(info["by_type"]["video"]["nb_read_frames"]) >= 15
            assert 0.8 < float(info["format"]["duration"]) < 2.5, item  # cut at the keyframe asked for
        first = segments / items[0]["url"].rsplit("/", 1)[1]
        await until(lambda: not first.exists(), 20, what="the first segment swept (8 s old)")
        assert items[0]["url"] not in [i["url"] for i in recordings(server)]
        assert recordings(server)[-1]["open"]  # the recording goes on
    finally:
        await publisher.close()


async def test_record_on_a_full_disk_keeps_the_worker_and_takes_the_next_publisher(icey, tmp_path):
    """Issue 8 items 12 and 2: a disk that fills up under a publisher shows as a failing
    recording; ending that session does not take the worker down; with room again, the next
    publisher is recorded."""
    with small_disk(tmp_path / "disk", 5) as disk:
        server, segments = record_server(icey, tmp_path, record_dir=disk / "rec")
        publisher = await publish(server.base, "desk")
        second = None
        try:
            assert publisher.status == 201, publisher.body
            await until(lambda: recordings(server), 10, what="the publisher recorded")
            filler = await asyncio.to_thread(fill, disk)
            await until(lambda: server.source("desk")["record"]["state"] == "failing", 10, what="recording failing")
            assert server.source("desk")["state"] == "online"  # the publisher is still connected
            started = time.monotonic()
            assert server.request("DELETE", publisher.location).status == 200
            assert time.monotonic() - started < 3.0
            await until(lambda: server.source("desk")["state"] == "offline", 10, what="the publisher gone")
            assert server.source("desk")["worker"]["restarts"] == 0
            filler.unlink()
            second = await publish(server.base, "desk")
            assert second.status == 201, second.body
            await until(lambda: server.source("desk")["record"]["state"] == "recording", 20,
                        what="recording again")
            await until(lambda: [i for i in recordings(server) if i["open"] and i["durationSec"] >= 1.0], 10,
                        what="the next publisher recorded")
            assert server.source("desk")["worker"]["restarts"] == 0
        finally:
            for peer in (publisher, second):
                if peer is not None:
                    await peer.close()
            server.kill_all()  # before the disk goes


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
