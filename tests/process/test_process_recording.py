"""Continuous recording and /artifacts against the real server: segments of the source's own
packets (demo, MP4 file, RTSP camera), kill -9 safety, retention while recording, and serving
with auth, Range, HEAD and MIME types that never leaves the recording directories."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import av
import pytest
from support.media import ffprobe, make_media_file
from support.processes import IceyServer, wait_for

TOKEN = "rec-t0ken-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMO = "demo://testsrc2?size=320x240&rate=25"  # a keyframe every second


# -- helpers ---------------------------------------------------------------------------------



def annexb_nals(data: bytes) -> list[bytes]:
    return [n.lstrip(b"\0") for n in data.replace(b"\0\0\0\1", b"\0\0\1").split(b"\0\0\1") if n.strip(b"\0")]


def parameter_sets(extradata: bytes) -> list[bytes]:
    """SPS and PPS NAL units from avcC or Annex B extradata."""
    if extradata[:1] != b"\x01":
        return [n for n in annexb_nals(extradata) if n[0] & 0x1F in (7, 8)]
    nals, pos = [], 5
    for count_mask in (0x1F, 0xFF):
        count = extradata[pos] & count_mask
        pos += 1
        for _ in range(count):
            size = int.from_bytes(extradata[pos:pos + 2], "big")
            nals.append(extradata[pos + 2:pos + 2 + size])
            pos += 2 + size
    return nals


def recorded_video(path: Path) -> tuple[bytes, list[bytes]]:
    """(extradata, sample payloads) of a recorded segment's video track."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return bytes(v.codec_context.extradata or b""), [bytes(p) for p in c.demux(v) if p.size]


def avcc_sample_nals(sample: bytes) -> list[bytes]:
    nals, pos = [], 0
    while pos + 4 <= len(sample):
        size = int.from_bytes(sample[pos:pos + 4], "big")
        nals.append(sample[pos + 4:pos + 4 + size])
        pos += 4 + size
    return nals


def listing(server: IceyServer, source_id: str) -> list[dict]:
    r = server.get(f"/api/sources/{source_id}/recordings", AUTH)
    assert r.status == 200, r.body
    body = r.json()
    assert body["itemCount"] == len(body["items"])
    return body["items"]


def closed(items: list[dict]) -> list[dict]:
    return [i for i in items if not i["open"]]


def file_of(record_dir: Path, item: dict) -> Path:
    prefix = "/artifacts/recordings/"
    assert item["url"].startswith(prefix)
    return record_dir / item["url"][len(prefix):]


def start_server(workdir: Path, config: dict) -> IceyServer:
    workdir.mkdir(parents=True, exist_ok=True)
    return IceyServer(workdir, ["--no-turn"], config).start()


def record_config(record_dir: Path, sources: list[dict], token: str = TOKEN) -> dict:
    return {"auth": {"token": token}, "media": {"recordDir": str(record_dir)}, "sources": sources,
            "supervisor": {"restartInitialMs": 200}}


# -- demo source: segments, their codec parameters, the listing; /artifacts on the same server --

@pytest.fixture(scope="module")
def demo_server(tmp_path_factory) -> Iterator[tuple[IceyServer, Path]]:
    root = tmp_path_factory.mktemp("recording-demo")
    record_dir = root / "rec"
    server = start_server(root / "server", record_config(record_dir, [
        {"id": "demo", "source": DEMO, "record": {"enabled": True, "segmentSeconds": 2}},
        {"id": "idle", "mode": "relay"},  # no reader, no recording
    ]))
    try:
        # ~7 s of recording: at least three closed 2-second segments and the open one.
        wait_for(lambda: len(closed(listing(server, "demo"))) >= 3, 25, 0.25, what="three closed segments")
        yield server, record_dir
    finally:
        server.kill_all()


def test_demo_segments_roll_play_and_keep_the_source_parameters(demo_server):
    server, record_dir = demo_server
    items = listing(server, "demo")
    probe = server.get("/api/sources/demo/probe", AUTH).json()
    source_video = next(s for s in probe["streams"] if s["type"] == "video")
    assert source_video["codec"] == "h264"
    done = closed(items)
    assert len(done) >= 3 and items[-1]["open"] is True  # the newest one is being written
    starts = [datetime.fromisoformat(i["start"].replace("Z", "+00:00")) for i in items]
    assert starts == sorted(starts) and all(i["start"].endswith("Z") for i in items)
    parameter_sets_seen = set()
    for item in done:
        path = file_of(record_dir, item)
        assert path.parent == record_dir / "demo" and path.name.endswith("Z.mp4")
        assert item["bytes"] == path.stat().st_size > 0
        info = ffprobe(path)
        video = info["by_type"]["video"]
        assert info["decode_errors"] == "", (path.name, info["decode_errors"])
        assert video["codec_name"] == "h264" and (video["width"], video["height"]) == (320, 240)
        assert (video["width"], video["height"]) == (source_video["width"], source_video["height"])
        # The probe has no profile for the demo's encoder (None): it is configured as baseline.
        assert video["profile"] == (source_video["profile"] or "Constrained Baseline")
        assert info["by_type"]["audio"]["codec_name"] == "opus"
        duration = float(info["format"]["duration"])
        assert duration == pytest.approx(2.0, abs=0.25), (path.name, duration)
        assert int(video["nb_read_frames"]) == pytest.approx(50, abs=4)
        assert item["durationSec"] == pytest.approx(duration, abs=0.15)
        # No re-encode: the track's parameter sets are the ones the encoder put in band.
        extradata, samples = recorded_video(path)
        in_band = [n for n in avcc_sample_nals(samples[0]) if n[0] & 0x1F in (7, 8)]
        assert parameter_sets(extradata) == in_band
        parameter_sets_seen.add(tuple(in_band))
    assert len(parameter_sets_seen) == 1  # one encoder, one SPS/PPS for every segment
    assert listing(server, "idle") == []
    r = server.get("/api/sources/nope/recordings", AUTH)
    assert r.status == 404 and r.json()["error"] == "not_found"


def test_artifacts_auth_range_head_mime(demo_server):
    server, record_dir = demo_server
    item = closed(listing(server, "demo"))[0]
    path = file_of(record_dir, item)
    data = path.read_bytes()
    size = len(data)

    r = server.get(item["url"])
    assert r.status == 401 and r.json()["error"] == "unauthorized"
    r = server.get(item["url"] + f"?token={TOKEN}")
    assert r.status == 200 and r.body == data
    assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == size and r.headers["etag"] and r.headers["last-modified"]
    etag = r.headers["etag"]

    r = server.get(item["url"], {**AUTH, "Range": "bytes=100-1099"})
    assert r.status == 206 and r.body == data[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{size}" and int(r.headers["content-length"]) == 1000
    r = server.get(item["url"], {"X-Icey-Token": TOKEN, "Range": "bytes=-64"})
    assert r.status == 206 and r.body == data[-64:]
    r = server.get(item["url"], {**AUTH, "Range": f"bytes={size - 10}-"})
    assert r.status == 206 and r.body == data[-10:]
    r = server.get(item["url"], {**AUTH, "Range": f"bytes={size}-"})
    assert r.status == 416 and r.headers["content-range"] == f"bytes */{size}"
    assert r.json()["status"] == "error"
    r = server.get(item["url"], {**AUTH, "Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status == 200 and r.body == data  # the file changed since: the whole of it
    r = server.get(item["url"], {**AUTH, "If-None-Match": etag})
    assert r.status == 304 and r.body == b""

    r = server.request("HEAD", item["url"], AUTH)
    assert r.status == 200 and r.body == b"" and int(r.headers["content-length"]) == size
    assert r.headers["content-type"] == "video/mp4"
    r = server.request("HEAD", item["url"], {**AUTH, "Range": "bytes=0-99"})
    assert r.status == 206 and r.body == b"" and r.headers["content-range"] == f"bytes 0-99/{size}"

    # Snapshots and clips: the rest of /artifacts/ maps onto media.recordDir.
    snapshots = record_dir / "snapshots" / "demo"
    snapshots.mkdir(parents=True, exist_ok=True)
    (snapshots / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    (snapshots / "b.png").write_bytes(b"\x89PNGpng")
    r = server.get("/artifacts/snapshots/demo/a.jpg", AUTH)
    assert r.status == 200 and r.headers["content-type"] == "image/jpeg" and r.body == b"\xff\xd8jpeg"
    r = server.get("/artifacts/snapshots/demo/b.png", AUTH)
    assert r.status == 200 and r.headers["content-type"] == "image/png"
    r = server.get("/artifacts/demo/index.json", AUTH)
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert server.get("/artifacts/snapshots/demo/a.jpg").status == 401


def test_a_suffix_range_longer_than_the_file_is_the_whole_file(demo_server):
    """Issue 9 item 14: `bytes=-N` with N past the size is all of it (RFC 9110 14.1.3), not 416."""
    server, record_dir = demo_server
    item = closed(listing(server, "demo"))[0]
    data = file_of(record_dir, item).read_bytes()
    r = server.get(item["url"], {**AUTH, "Range": "bytes=-99999999"})
    assert r.status == 206 and r.body == data
    assert r.headers["content-range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    assert int(r.headers["content-length"]) == len(data)


def test_artifacts_never_leave_the_roots(demo_server):
    server, record_dir = demo_server
    workdir = server.workdir  # holds config.json (with the token), next to record_dir's parent
    assert (workdir / "config.json").exists()
    outside = record_dir.parent / "outside.mp4"
    outside.write_bytes(b"secret")
    (record_dir / "escape.mp4").symlink_to(outside)
    (record_dir / "demo" / "escape.mp4").symlink_to(outside)
    (record_dir / "folder.mp4").mkdir(exist_ok=True)
    (record_dir / ".hidden.mp4").write_bytes(b"x")
    (record_dir / "notes.txt").write_bytes(b"x")
    attempts = [
        "/artifacts/../config.json", "/artifacts/%2e%2e/config.json", "/artifacts/%2E%2E/server/config.json",
        "/artifacts/recordings/demo/../../config.json", "/artifacts/recordings/demo/..%2f..%2foutside.mp4",
        "/artifacts/recordings/demo/%2e%2e/%2e%2e/outside.mp4", "/artifacts/..%2foutside.mp4",
        "/artifacts/%2fetc%2fpasswd", "/artifacts//etc/passwd", "/artifacts/recordings//etc/passwd",
        "/artifacts/escape.mp4", "/artifacts/recordings/demo/escape.mp4", "/artifacts/folder.mp4",
        "/artifacts/recordings/demo", "/artifacts/recordings/demo/", "/artifacts/demo", "/artifacts/.hidden.mp4",
        "/artifacts/notes.txt", "/artifacts/recordings/nope/x.mp4", "/artifacts/recordings/idle/x.mp4",
        "/artifacts/a%00.mp4", "/artifacts/recordings/demo/%00", "/artifacts/recordings/demo/.index.json.tmp",
        "/artifacts/./demo/index.json", "/artifacts/recordings/%2e%2e/demo/index.json",
    ]
    for url in attempts:
        r = server.get(url, AUTH)
        assert r.status in (404, 308), (url, r.status, r.body)
        if r.status == 404:
            assert r.headers["content-type"] == "application/json" and r.json()["error"] == "not_found", url
            assert b"secret" not in r.body and TOKEN.encode() not in r.body
    assert "internal error" not in server.stderr() and "Traceback" not in server.stderr()


# -- an MP4 file (avcC) and an RTSP camera (Annex B) -----------------------------------------

def test_file_source_segments_are_the_files_own_packets(tmp_path):
    media = make_media_file(tmp_path / "clip.mp4", seconds=4.0, fps=15)  # looped; a keyframe per second
    record_dir = tmp_path / "rec"
    server = start_server(tmp_path / "server", record_config(record_dir, [
        {"id": "clip", "source": str(media), "record": {"enabled": True, "segmentSeconds": 2}}]))
    try:
        wait_for(lambda: len(closed(listing(server, "clip"))) >= 3, 30, 0.25, what="three closed segments")
        with av.open(str(media)) as c:
            v = c.streams.video[0]
            source_extradata = bytes(v.codec_context.extradata)
            source_samples = {bytes(p) for p in c.demux(v) if p.size}
        for item in closed(listing(server, "clip"))[:3]:
            path = file_of(record_dir, item)
            info = ffprobe(path)
            video = info["by_type"]["video"]
            assert info["decode_errors"] == "", info["decode_errors"]
            assert video["codec_name"] == "h264" and (video["width"], video["height"]) == (320, 180)
            assert info["by_type"]["audio"]["codec_name"] == "aac"
            assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.25)
            assert item["bytes"] == path.stat().st_size
            extradata, samples = recorded_video(path)
            assert extradata == source_extradata  # the file's own avcC
            assert samples and set(samples) <= source_samples  # its own packets, not a re-encode
    finally:
        server.kill_all()


def test_rtsp_camera_drop_closes_the_segment_and_a_new_one_follows(tmp_path, rtsp_camera):
    record_dir = tmp_path / "rec"
    server = start_server(tmp_path / "server", record_config(record_dir, [
        {"id": "cam", "source": rtsp_camera.url, "record": {"enabled": True, "segmentSeconds": 60}}]))
    try:
        first = wait_for(lambda: [i for i in listing(server, "cam") if i["open"] and i["durationSec"] >= 2.0], 30,
                         0.25, what="recording from the camera")[0]
        rtsp_camera.stop()
        gone = wait_for(lambda: [i for i in listing(server, "cam") if i["url"] == first["url"] and not i["open"]],
                        20, 0.25, what="the segment closed after the drop")[0]
        assert not [i for i in listing(server, "cam") if i["open"]]  # nothing is open while it is away
        rtsp_camera.start()
        second = wait_for(lambda: [i for i in listing(server, "cam") if i["open"] and i["durationSec"] >= 1.5], 40,
                          0.25, what="a new segment after the camera came back")[0]
        assert second["url"] != first["url"] and second["start"] > gone["start"]
        # A second client mid-recording: GStreamer's shared mount then re-bases each stream's clock
        # by seconds, one stream after the other; the recording must stay continuous and clean.
        with av.open(rtsp_camera.url, options={"rtsp_transport": "tcp"}, timeout=5) as cam:
            camera_sets = parameter_sets(bytes(cam.streams.video[0].codec_context.extradata or b""))
        time.sleep(1.0)
        assert server.terminate() == 0  # a clean stop closes the open segment
        items = listing_after_stop(record_dir / "cam")
        assert [i["file"] for i in items] == [Path(first["url"]).name, Path(second["url"]).name]
        assert not any(i["open"] for i in items)
        for item in items:
            path = record_dir / "cam" / item["file"]
            info = ffprobe(path)
            video = info["by_type"]["video"]
            assert info["decode_errors"] == "", info["decode_errors"]
            assert video["codec_name"] == "h264" and (video["width"], video["height"]) == (320, 180)
            assert video["profile"] == "Constrained Baseline"
            assert info["by_type"]["audio"]["codec_name"] == "opus"
            assert float(info["format"]["duration"]) >= 1.5
            assert int(video["nb_read_frames"]) >= 20
            extradata, samples = recorded_video(path)
            assert parameter_sets(extradata) == camera_sets  # the camera's own SPS/PPS (from its SDP)
    finally:
        server.kill_all()


def listing_after_stop(directory: Path) -> list[dict]:
    return json.loads((directory / "index.json").read_text())["segments"]


# -- kill -9 and retention -------------------------------------------------------------------

def test_kill_9_leaves_a_playable_segment_and_recording_resumes(tmp_path):
    record_dir = tmp_path / "rec"
    server = start_server(tmp_path / "server", record_config(record_dir, [
        {"id": "demo", "source": DEMO, "record": {"enabled": True, "segmentSeconds": 60}}]))
    try:
        item = wait_for(lambda: [i for i in listing(server, "demo") if i["open"] and i["durationSec"] >= 3.0], 30,
                        0.2, what="three seconds recorded")[0]
        os.kill(server.children()["worker:demo"], signal.SIGKILL)
        killed = file_of(record_dir, item)
        info = ffprobe(killed)
        video = info["by_type"]["video"]
        assert info["decode_errors"] == "", info["decode_errors"]
        assert int(video["nb_read_frames"]) > 0 and (video["width"], video["height"]) == (320, 240)
        assert float(info["format"]["duration"]) >= 2.0  # ≥3 s recorded, a second lost at most
        wait_for(lambda: server.source("demo", AUTH)["worker"]["restarts"] == 1, 15, what="worker restarted")
        items = wait_for(lambda: (items := listing(server, "demo")) and items[-1]["open"] and len(items) == 2
                         and items, 20, 0.2, what="a new segment after the restart")
        old = items[0]
        assert old["url"] == item["url"] and old["open"] is False
        assert old["durationSec"] == pytest.approx(float(info["format"]["duration"]), abs=0.2)
        assert old["bytes"] == killed.stat().st_size
    finally:
        server.kill_all()


def test_retention_deletes_old_segments_while_recording(tmp_path):
    record_dir = tmp_path / "rec"
    retention = {"maxAgeHours": 0.0005, "maxTotalMB": 0}  # 1.8 s
    server = start_server(tmp_path / "server", record_config(record_dir, [
        {"id": "demo", "source": DEMO, "record": {"enabled": True, "segmentSeconds": 1, "retention": retention}}]))
    try:
        first = wait_for(lambda: (items := listing(server, "demo")) and items[0], 20, 0.1, what="a first segment")
        first_path = file_of(record_dir, first)
        wait_for(lambda: not first_path.exists(), 15, 0.2, what="the first segment deleted")
        time.sleep(3.0)
        files = sorted((record_dir / "demo").glob("*.mp4"))
        assert 1 <= len(files) <= 4, files
        items = listing(server, "demo")
        assert first["url"] not in [i["url"] for i in items]
        listed = [file_of(record_dir, i) for i in items]
        assert listed == sorted(listed) and all(f.exists() for f in listed)  # deleted ones are not listed
        assert items[-1]["open"] is True  # recording goes on
        newest = file_of(record_dir, items[-1])
        size = newest.stat().st_size
        wait_for(lambda: not newest.exists() or newest.stat().st_size > size or
                 listing(server, "demo")[-1]["url"] != items[-1]["url"], 5, 0.1, what="recording continues")
        index = json.loads((record_dir / "demo" / "index.json").read_text())
        assert first_path.name not in [s["file"] for s in index["segments"]]
    finally:
        server.kill_all()
