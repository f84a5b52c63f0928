"""Recording against a real disk that fills up (a small tmpfs), and a worker's start after a lost
index, in the real server: what the status, the checks and the events say, what is left on disk,
and that recording goes on or comes back by itself."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.media import ffprobe
from support.processes import IceyServer, wait_for
from support.small_disk import fill, free_bytes, small_disk

from protocol.recordings import segment_name
from workers.recording.fmp4 import Fmp4Writer, has_fragment
from workers.source.demo import DemoSource

DEMO = "demo://testsrc2?size=320x240&rate=25"  # about 45 kB a second
NO_LIMITS = {"maxAgeHours": 0, "maxTotalMb": 0, "minFreeMb": 0}
MB = 1024 * 1024


def recording_server(icey, record_dir: Path, retention: dict, segment_seconds: float = 1.0) -> IceyServer:
    config = {"media": {"recordDir": str(record_dir)},
              "sources": [{"id": "demo", "source": DEMO,
                           "record": {"enabled": True, "segmentSeconds": segment_seconds, "retention": retention}}],
              "supervisor": {"heartbeatMs": 500}}
    return icey(["--no-turn"], config=config)


def listing(server: IceyServer) -> list[dict]:
    r = server.get("/api/sources/demo/recordings")
    assert r.status == 200, r.body
    return r.json()["items"]


def record_events(server: IceyServer) -> list[str]:
    r = server.get("/api/sources/demo/events?type=record&limit=100")
    assert r.status == 200, r.body
    return [e["type"] for e in r.json()["items"]]


def source_check(server: IceyServer) -> dict:
    return next(c for c in server.get("/api/ready").json()["checks"] if c["name"] == "source:demo")


def test_recording_failures_are_visible_and_recording_resumes(icey, tmp_path):
    """Issue 8 item 2: a full disk shows in the status, a check and events; nothing unplayable or
    temporary is left; recording resumes by itself once there is room again."""
    with small_disk(tmp_path / "disk", 5) as disk:
        server = recording_server(icey, disk / "rec", NO_LIMITS)
        segments = disk / "rec" / "demo"
        wait_for(lambda: len([i for i in listing(server) if not i["open"]]) >= 2, 20, what="two closed segments")
        record = server.source("demo")["record"]
        assert record["state"] == "recording" and record["lastError"] is None
        assert 0 < record["bytesFree"] <= 5 * MB

        filler = fill(disk)
        record = server.wait_source("demo", lambda s: s["record"]["state"] == "failing", 15)["record"]
        assert "No space left" in record["lastError"] and str(disk) not in record["lastError"]  # scrubbed
        assert server.source("demo")["state"] == "online"  # the worker goes on serving
        check = source_check(server)
        assert check["result"] == "warn" and "Recording is failing" in check["detail"]
        assert server.get("/api/ready").json()["status"] == "degraded"
        wait_for(lambda: record_events(server) == ["record.failed"], 5, what="a record.failed event")
        time.sleep(6.0)  # a retry after the back-off fails too: one event, not one per try
        assert record_events(server) == ["record.failed"]
        assert not [p for p in segments.iterdir() if p.name.endswith(".tmp")]
        assert not [i for i in listing(server) if i["open"]]  # nothing is being written

        filler.unlink()
        wait_for(lambda: server.source("demo")["record"]["state"] == "recording", 20, what="recording resumed")
        assert record_events(server) == ["record.failed", "record.resumed"]
        assert source_check(server)["result"] == "pass"
        wait_for(lambda: (items := listing(server)) and items[-1]["open"] and items[-1]["durationSec"] >= 1.5
                 or len([i for i in items if not i["open"]]) >= 4, 15, what="segments after the resume")
        server.terminate()

        # What is left: playable segments, all indexed, no temporary files, nothing listed open.
        index = json.loads((segments / "index.json").read_text())["segments"]
        on_disk = sorted(p.name for p in segments.glob("*.mp4"))
        assert [e["file"] for e in index] == on_disk and not any(e["open"] for e in index)
        assert not [p for p in segments.iterdir() if p.name.startswith(".")]
        for name in on_disk:
            assert has_fragment(segments / name), name
            video = ffprobe(segments / name)["by_type"]["video"]
            assert int(video["nb_read_frames"]) > 0, name


def test_free_space_floor_keeps_recording_going(icey, tmp_path):
    """Issue 8 item 2: under record.retention.minFreeMb the oldest segments go, so a disk that
    something else fills never stops the recording."""
    with small_disk(tmp_path / "disk", 5) as disk:
        server = recording_server(icey, disk / "rec", {**NO_LIMITS, "minFreeMb": 2})
        # Six: filling 100 kB under the floor costs about three ~45 kB segments at once, and from then on
        # each new segment about one old one, so three or more stay (with four, two could be all that is left).
        first = wait_for(lambda: len(items := [i for i in listing(server) if not i["open"]]) >= 6 and items, 30,
                         what="six closed segments")
        fill(disk, leave=2 * MB - 100_000)  # 100 kB under the floor, and the recording goes on adding
        wait_for(lambda: first[0]["url"] not in [i["url"] for i in listing(server)], 10,
                 what="the oldest segment deleted")
        before = len(listing(server))
        time.sleep(8.0)  # about 360 kB more recorded: without the floor it would be short of room soon
        items = listing(server)
        assert {i["url"] for i in first[:3]}.isdisjoint(i["url"] for i in items)
        assert items[-1]["open"] and len(items) >= 3  # the newest ones stay; one is being written
        assert items[-1]["start"] > first[-1]["start"] and len(items) <= before + 3
        assert free_bytes(disk) >= 2 * MB - 200_000  # the floor holds, give or take a segment
        assert server.source("demo")["record"]["state"] == "recording"
        assert record_events(server) == []
        for item in items[:-1]:
            assert (disk / "rec" / "demo" / Path(item["url"]).name).exists()


def _segment(path: Path, seconds: float = 2.0) -> Path:
    """One real segment (fragmented MP4 of the demo's H.264 and Opus), as the recorder writes it."""
    source = DemoSource(DEMO)
    writer = None
    try:
        for kind, packet in source.packets():
            if writer is None:
                if kind != "video" or not packet.is_keyframe:
                    continue
                writer = Fmp4Writer(path)
                writer.add_video(None, bytes(packet))
                writer.add_opus()
                origin = float(packet.pts * packet.time_base)
            at = float(packet.pts * packet.time_base) - origin
            if at > seconds:
                break
            if at >= 0:
                writer.write(kind, bytes(packet), at, at, 0.0, bool(packet.is_keyframe))
    finally:
        source.close()
    assert writer is not None and writer.close() > 0
    return path


def test_startup_recovery_runs_while_the_source_is_online(icey, tmp_path):
    """Issue 8 item 13: recovering a lost index.json (every segment demuxed) no longer holds the
    worker back: the source is online well before the recovered index appears."""
    count = 500  # ~25 ms of demuxing each: ten seconds or more of recovery
    segments = tmp_path / "rec" / "demo"
    segments.mkdir(parents=True)
    template = _segment(tmp_path / "template.mp4")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for n in range(count):
        os.link(template, segments / segment_name(start + timedelta(seconds=2 * n)))
    server = recording_server(icey, tmp_path / "rec", NO_LIMITS, segment_seconds=60)
    server.wait_source("demo", lambda s: s["state"] == "online", 30)
    assert not (segments / "index.json").exists(), "the worker reported only after its recovery"
    wait_for(lambda: [i for i in listing(server) if i["open"]], 10, what="recording while recovering")

    index = wait_for(lambda: json.loads((segments / "index.json").read_text())["segments"], 180, 0.5,
                     what="the recovered index")
    recovered = [e for e in index if e["file"].startswith("2020")]
    assert len(recovered) == count and all(not e["open"] for e in recovered)
    assert all(e["durationSec"] == pytest.approx(2.0, abs=0.1) for e in recovered)
    items = listing(server)
    assert len(items) == count + 1 and items[-1]["open"] and not items[0]["open"]
