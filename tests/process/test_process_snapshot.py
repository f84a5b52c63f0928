"""GET /api/sources/<id>/snapshot.jpg against a real server: real JPEGs (decoded with PyAV) at the asked
size, conditional GET, 503 for an offline source, 400 for bad parameters, one decode shared by
concurrent requests, the shared decoder's frames reused when vision runs, and a relay source's
pictures taken from its WHIP publisher's keyframes."""

from __future__ import annotations

import asyncio
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor

import av
import pytest
from support.processes import free_port, until
from support.servers import LOOPBACK
from support.webrtc_client import publish

# A keyframe every 10 s: within a test, every request sees the same one.
STILL = "demo://testsrc2?size=320x180&rate=10&gop=100"
SEEN = "demo://square?size=320x180&rate=10&gop=10"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def server(icey):
    gone = f"rtsp://127.0.0.1:{free_port()}/nobody-home"
    srv = icey(["--no-turn"], {"sources": [
        {"id": "still", "source": STILL},
        {"id": "seen", "source": SEEN, "intelligence": {"vision": {"enabled": True}}},
        {"id": "gone", "source": gone},
    ], "stun": {"urls": []}, "supervisor": {"heartbeatMs": 500}})
    for source_id in ("still", "seen"):
        srv.wait_source(source_id, lambda s: s["state"] == "online")
    return srv


def picture(body: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(body), format="mjpeg") as container:
        return next(container.decode(video=0))


def probe(server, source_id: str) -> dict:
    r = server.get(f"/api/sources/{source_id}/probe")
    assert r.status == 200, r.body
    return r.json()


def test_jpeg_at_the_asked_size_and_conditional_get(server):
    r = server.get("/api/sources/still/snapshot.jpg")
    assert r.status == 200, r.body
    assert r.headers["content-type"] == "image/jpeg"
    frame = picture(r.body)
    assert (frame.width, frame.height) == (320, 180)
    assert frame.to_ndarray(format="rgb24").std() > 20  # the test pattern, not a blank picture
    assert RFC3339.match(r.headers["x-icey-frame-time"])
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert r.headers["last-modified"].endswith(" GMT")
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    for query, size in (("w=160", (160, 90)), ("h=45", (80, 45)), ("w=1000", (320, 180)), ("w=100&h=100", (100, 56)),
                        ("w=2000&h=90", (160, 90))):
        r = server.get(f"/api/sources/still/snapshot.jpg?{query}")
        assert r.status == 200, (query, r.body)
        frame = picture(r.body)
        assert (frame.width, frame.height) == size, query  # the aspect kept, never enlarged

    small, best = (server.get(f"/api/sources/still/snapshot.jpg?maxAge=60&q={q}").body for q in (1, 100))
    assert len(small) < len(best) / 2, (len(small), len(best))

    r = server.get("/api/sources/still/snapshot.jpg?maxAge=60", {"If-None-Match": etag})
    assert r.status == 304 and r.body == b"" and r.headers["etag"] == etag
    r = server.get("/api/sources/still/snapshot.jpg?maxAge=60", {"If-None-Match": '"something-else"'})
    assert r.status == 200 and r.headers["etag"] == etag and r.body  # same picture, same tag


def test_concurrent_requests_share_one_decode(server):
    assert probe(server, "still")["snapshotDecodes"] == 0
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: server.get("/api/sources/still/snapshot.jpg?w=160&maxAge=0"), range(8)))
    assert [r.status for r in replies] == [200] * 8
    assert len({r.headers["etag"] for r in replies}) == 1
    counters = probe(server, "still")
    assert (counters["snapshotDecodes"], counters["snapshotEncodes"]) == (1, 1), counters
    # A cached picture young enough is served without any new work.
    assert server.get("/api/sources/still/snapshot.jpg?w=160&maxAge=30").headers["etag"] == replies[0].headers["etag"]
    counters = probe(server, "still")
    assert (counters["snapshotDecodes"], counters["snapshotEncodes"]) == (1, 1), counters


def test_vision_sources_reuse_the_shared_decoder(server):
    for _ in range(3):
        r = server.get("/api/sources/seen/snapshot.jpg?maxAge=0")
        assert r.status == 200 and picture(r.body).width == 320
        time.sleep(0.3)  # past the rate limit: a new picture each time
    counters = probe(server, "seen")
    assert counters["snapshotDecodes"] == 0 and counters["snapshotEncodes"] >= 1, counters


def test_offline_unknown_and_bad_requests(server):
    server.wait_source("gone", lambda s: s["state"] in ("reconnecting", "failed"))
    r = server.get("/api/sources/gone/snapshot.jpg")
    assert r.status == 503 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "unavailable" and "reconnecting" in r.json()["detail"]
    assert int(r.headers["retry-after"]) >= 1

    r = server.get("/api/sources/nope/snapshot.jpg")
    assert r.status == 404 and r.json()["error"] == "not_found"

    for query in ("q=0", "q=101", "q=high", "w=0", "w=-5", "h=abc", "w=99999", "maxAge=-1", "maxAge=nan",
                  "maxAge=soon"):
        r = server.get(f"/api/sources/still/snapshot.jpg?{query}")
        assert r.status == 400, (query, r.status)
        body = r.json()
        assert body["error"] == "bad_request" and body["detail"], query


async def test_relay_source_pictures_come_from_its_publisher(icey):
    server = icey(["--no-turn"], {**LOOPBACK, "sources": [{"id": "live", "mode": "relay"}]})
    server.wait_source("live", lambda s: s["state"] == "offline")
    r = server.get("/api/sources/live/snapshot.jpg")  # nobody publishing: nothing to show, ask again later
    assert r.status == 503 and r.json()["error"] == "unavailable" and int(r.headers["retry-after"]) >= 1

    publisher = await publish(server.base, "live", audio=False)  # aiortc's H.264, 320x240
    try:
        assert publisher.status == 201, publisher.body
        r = await until(lambda: (x := server.get("/api/sources/live/snapshot.jpg")).status == 200 and x, 15,
                        what="a picture of the publisher")
        assert r.headers["content-type"] == "image/jpeg" and RFC3339.match(r.headers["x-icey-frame-time"])
        frame = picture(r.body)
        assert (frame.width, frame.height) == (320, 240)
        assert frame.to_ndarray(format="rgb24").std() > 10  # the white square on black, not a blank picture
        r = await asyncio.to_thread(server.get, "/api/sources/live/snapshot.jpg?w=160")
        assert r.status == 200 and (picture(r.body).width, picture(r.body).height) == (160, 120)
    finally:
        await publisher.close()
    await until(lambda: server.source("live")["state"] == "offline", 10, what="the publisher gone")
    r = server.get("/api/sources/live/snapshot.jpg")  # no stale picture of a publisher that left
    assert r.status == 503 and int(r.headers["retry-after"]) >= 1
    assert "Traceback" not in server.stderr()
