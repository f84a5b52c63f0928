"""Vision and speech in the real worker: motion on a synthetic moving square (and none on a static
scene or a global light step), snapshots and clips of the source's own packets, tone-burst voice
activity, kill -9 during a clip, and the status the API shows."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import av
import pytest
from support.media import ffprobe
from support.processes import wait_for
from support.small_disk import fill, small_disk
from support.sse import SseClient

RATE, GOP = 25, 10  # a keyframe every 0.4 s: the pre-roll starts at most 0.4 s early
PRE, POST = 1.0, 1.0
# The square moves for 2 s of every 6 s (640x360: an 80x80 square, y 140..220, x 40..600).
SQUARE = f"demo://square?size=640x360&rate={RATE}&gop={GOP}&move=2&period=6"
SQUARE_Y0, SQUARE_Y1 = 140 / 360, 220 / 360
TONE_PEAK = 0.125 / 2 ** 0.5


def vision(clips: bool = False, snapshots: bool = False, **extra) -> dict:
    cfg = {"enabled": True, "motion": {"threshold": 0.02},
           "snapshots": {"enabled": snapshots},
           "clips": {"enabled": clips, "preRollUsec": int(PRE * 1e6), "postRollUsec": int(POST * 1e6)}}
    cfg.update(extra)
    return {"vision": cfg}


def config(sources: list[dict]) -> dict:
    return {"media": {"recordDir": "rec"}, "sources": sources, "stun": {"urls": []},
            "supervisor": {"restartInitialMs": 200, "heartbeatMs": 500}}




def playable(path: Path) -> bool:
    info = ffprobe(path)
    video = info["by_type"].get("video")
    return info["returncode"] == 0 and video is not None and int(video.get("nb_read_frames", 0)) > 0


def history(server, source_id: str, types: str = "") -> list[dict]:
    query = f"?limit=1000&type={types}" if types else "?limit=1000"
    r = server.get(f"/api/sources/{source_id}/events{query}")
    assert r.status == 200, r.body
    return r.json()["items"]


def intelligence(server, source_id: str) -> dict:
    return server.source(source_id)["intelligence"]


def test_motion_snapshots_and_clips(icey):
    server = icey(["--no-turn"], config=config([
        {"id": "square", "source": SQUARE, "intelligence": vision(clips=True, snapshots=True)},
        {"id": "still", "source": f"demo://smptehdbars?size=640x360&rate={RATE}&gop={GOP}",
         "intelligence": vision()},
        {"id": "light", "source": f"demo://lightstep?size=640x360&rate={RATE}&gop={GOP}",
         "intelligence": vision()},
    ]))
    record_dir = server.workdir / "rec"
    live = SseClient(server.base + "/api/events?source=square&type=motion")
    live.start()
    wait_for(lambda: live.status == 200, 10, what="SSE stream")

    # Live over SSE: motion starts where the square is, in the band it moves along.
    start = live.wait_for(lambda e: e["event"] == "motion.start", timeout=20)[0]
    data = start["data"]
    assert data["sourceId"] == "square" and data["schema"] == 1 and data["mediaTime"] is not None
    motion = data["data"]
    assert motion["type"] == "motion" and motion["score"] >= 0.02 and motion["cells"] > 0
    assert motion["regions"], motion
    for r in motion["regions"]:
        assert 0 <= r["x"] and r["x"] + r["w"] <= 1 + 1e-9 and 0 <= r["y"] and r["y"] + r["h"] <= 1 + 1e-9
        assert r["y"] >= SQUARE_Y0 - 0.06 and r["y"] + r["h"] <= SQUARE_Y1 + 0.06  # nothing outside its band
    top = motion["regions"][0]
    assert top["y"] <= SQUARE_Y0 + 0.06 and top["y"] + top["h"] >= SQUARE_Y1 - 0.06  # covers its height

    # A whole episode with the pre-roll available (the second one, t = 6..8 s) and its clip.
    def second_episode():
        items = history(server, "square", "motion,clip,snapshot")
        starts = [e for e in items if e["type"] == "motion.start" and e["mediaTime"] > 4]
        if not starts:
            return None
        s = starts[0]
        end = next((e for e in items if e["type"] == "motion.end" and e["mediaTime"] >= s["mediaTime"]), None)
        clip = next((e for e in items if e["type"] == "clip" and e["id"] > s["id"]), None)
        return (s, end, clip, items) if end and clip else None

    start2, end2, clip, items = wait_for(second_episode, 25, interval=0.3, what="second motion episode with clip")
    # The episode's regions cover the square's path (x 40..600 of 640 at 160 px/s).
    path = end2["data"]["regions"]
    assert min(r["x"] for r in path) <= 0.1 and max(r["x"] + r["w"] for r in path) >= 0.9
    assert all(r["y"] >= SQUARE_Y0 - 0.06 and r["y"] + r["h"] <= SQUARE_Y1 + 0.06 for r in path)
    motion_sec = end2["mediaTime"] - start2["mediaTime"]
    assert 1.5 <= motion_sec <= 2.6, motion_sec  # moves 2 s (plus the jump back at the period start)

    # The clip: the source's own packets, pre-roll + motion + post-roll.
    url = clip["data"]["url"]
    assert url.startswith("/artifacts/clips/square-") and url.endswith(".mp4")
    name = url.rsplit("/", 1)[1]
    assert name[len("square-"):].startswith(time.strftime("%Y-", time.gmtime()))
    clip_path = record_dir / "clips" / name
    assert clip_path.is_file() and not Path(str(clip_path) + ".part").exists()
    info = ffprobe(clip_path)
    assert info["returncode"] == 0, info["errors"]
    duration = float(info["format"]["duration"])
    low, high = PRE + motion_sec + POST, PRE + GOP / RATE + motion_sec + POST + 1 / RATE
    assert low - 0.25 <= duration <= high + 0.25, (duration, low, high)
    assert abs(clip["data"]["durationSec"] - duration) < 0.15
    assert clip["data"]["bytes"] == clip_path.stat().st_size
    pre_roll = start2["mediaTime"] - clip["mediaTime"]
    assert PRE - 0.05 <= pre_roll <= PRE + GOP / RATE + 0.05, pre_roll
    probe = server.get("/api/sources/square/probe").json()
    source_video = next(s for s in probe["streams"] if s["type"] == "video")
    source_audio = next(s for s in probe["streams"] if s["type"] == "audio")
    video = info["by_type"]["video"]
    assert (video["codec_name"], video["width"], video["height"], video["pix_fmt"]) == (
        source_video["codec"], source_video["width"], source_video["height"], source_video["pixFmt"])
    # The probe has no profile for the demo's encoder context; it is set to baseline (transcode.py).
    assert video["profile"] == (source_video["profile"] or "Constrained Baseline")
    assert video["r_frame_rate"] == f"{RATE}/1"
    assert int(video["nb_read_frames"]) == pytest.approx(duration * RATE, abs=2)  # every frame, none made up
    audio = info["by_type"]["audio"]
    assert (audio["codec_name"], int(audio["sample_rate"])) == (source_audio["codec"], source_audio["sampleRate"])
    # No re-encode: the source's GOP (a keyframe every 10 frames) is there packet for packet, from
    # the first packet on, and the source's in-band parameter sets are the clip's.
    with av.open(str(clip_path)) as container:
        stream = container.streams.video[0]
        extradata = stream.codec_context.extradata
        packets = [(p.is_keyframe, bytes(p)) for p in container.demux(stream) if p.size]
    keys = [i for i, (key, _) in enumerate(packets) if key]
    assert keys[0] == 0 and all(b - a == GOP for a, b in zip(keys, keys[1:], strict=False)), keys
    sps = extradata[8:8 + int.from_bytes(extradata[6:8], "big")]  # avcC: the first SPS
    assert sps and sps in packets[0][1]

    # The snapshot of that motion: a JPEG written before the event, served at its URL.
    snap = next(e for e in items if e["type"] == "snapshot" and e["id"] > start2["id"])
    snap_url = snap["data"]["url"]
    assert snap_url.startswith("/artifacts/snapshots/square-") and snap_url.endswith(".jpg")
    assert snap["mediaTime"] == pytest.approx(start2["mediaTime"], abs=0.01)
    snap_path = record_dir / "snapshots" / snap_url.rsplit("/", 1)[1]
    assert snap_path.read_bytes()[:3] == b"\xff\xd8\xff" and snap_path.stat().st_size == snap["data"]["bytes"]
    served = server.get(snap_url)
    if served.status != 404:  # the /artifacts route belongs to another part of the server
        assert served.status == 200 and served.headers["content-type"].startswith("image/jpeg")
        assert served.body == snap_path.read_bytes()

    # Neither the static scene nor the light switched on and off (three steps by now) moved.
    assert history(server, "still", "motion") == []
    assert history(server, "light", "motion") == []

    # Status: plausible figures for all three.
    status = intelligence(server, "square")["vision"]
    assert status["enabled"] is True and status["events"] >= 3
    assert status["analysisFps"] == pytest.approx(RATE / 6, abs=0.6)  # everyNthFrame 6
    assert status["queueDrops"] == 0 and 0 < status["latencyMs"] < 500
    assert status["lastSnapshotUrl"].startswith("/artifacts/snapshots/square-")
    assert status["lastClipUrl"].startswith("/artifacts/clips/square-")
    assert isinstance(status["lastScore"], float)
    for quiet in ("still", "light"):
        v = intelligence(server, quiet)["vision"]
        assert v["enabled"] and v["active"] is False and v["events"] == 0 and v["lastScore"] == 0.0
        assert v["analysisFps"] == pytest.approx(RATE / 6, abs=0.6)
        assert v["lastSnapshotUrl"] is None and v["lastClipUrl"] is None
    assert intelligence(server, "square")["speech"]["enabled"] is False
    live.close()
    assert server.terminate() == 0
    assert not list(record_dir.rglob("*.part"))


def test_tone_bursts_start_and_stop_speech(icey):
    # The tone sounds for the first 1 s of every 2 s: lavfi's sine (amplitude 1/8, mono), upmixed to
    # stereo at -3 dB for Opus, averaged back to mono: peak 0.088, RMS 0.0625 of full scale.
    server = icey(["--no-turn"], config=config([
        {"id": "voice", "source": f"demo://smptehdbars?size=320x180&rate={RATE}&burst=1,2",
         "intelligence": {"speech": {"enabled": True}}},
    ]))
    live = SseClient(server.base + "/api/events?source=voice&type=speech")
    live.start()
    live.wait_for(lambda e: len([x for x in live.events if x["event"] == "speech.stop"]) >= 3, timeout=15)
    events = [e for e in live.events if e["data"]["mediaTime"] > 0.5]  # whole bursts only
    while events and events[0]["event"] != "speech.start":
        events.pop(0)
    starts = [e["data"] for e in events if e["event"] == "speech.start"]
    stops = [e["data"] for e in events if e["event"] == "speech.stop"]
    assert len(starts) >= 2 and len(stops) >= 2
    for s in starts:
        phase = s["mediaTime"] % 2.0
        assert phase <= 0.05 or phase >= 1.97, s  # at a burst onset (20 ms windows, Opus delay)
        # the window that crossed startThreshold: part of it may precede the onset
        assert 0.045 <= s["data"]["level"] <= 0.07 and s["data"]["peak"] == pytest.approx(TONE_PEAK, rel=0.15)
    for s, e in zip(starts, stops, strict=False):
        assert e["mediaTime"] - s["mediaTime"] == pytest.approx(1.0, abs=0.05), (s, e)
        assert e["data"]["level"] < 0.02 and e["data"]["peak"] == pytest.approx(TONE_PEAK, rel=0.15)
    # Delivered live: a stop follows its start by the burst plus the 250 ms hold (+ one window).
    times = [(e["event"], e["at"]) for e in events]
    pairs = [(a[1], b[1]) for a, b in zip(times, times[1:], strict=False)
             if a[0] == "speech.start" and b[0] == "speech.stop"]
    assert pairs and all(1.0 <= b - a <= 1.6 for a, b in pairs), pairs
    status = intelligence(server, "voice")["speech"]
    assert status["enabled"] is True and status["events"] >= 4 and status["queueDrops"] == 0
    assert 0 <= status["level"] <= status["peak"] + 1e-6 <= 1
    assert intelligence(server, "voice")["vision"]["enabled"] is False
    # The level meter follows the bursts (250 ms readings).
    levels = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        levels.add(round(intelligence(server, "voice")["speech"]["level"], 2))
        time.sleep(0.1)
    assert min(levels) < 0.02 and max(levels) == pytest.approx(TONE_PEAK / 2 ** 0.5, abs=0.008), levels
    live.close()


def test_kill_during_a_clip_leaves_no_unplayable_file(icey):
    post = 4.0  # a long post-roll keeps the clip open for a while
    server = icey(["--no-turn"], config=config([
        {"id": "square", "source": SQUARE,
         "intelligence": {"vision": {"enabled": True, "motion": {"threshold": 0.02},
                                     "clips": {"enabled": True, "postRollUsec": int(post * 1e6)}}}},
    ]))
    clips = server.workdir / "rec" / "clips"

    def writing():
        parts = [p for p in clips.glob("square-*.mp4.part") if p.stat().st_size > 20_000]
        return parts[0] if parts else None

    part = wait_for(writing, 20, what="a clip being written")
    worker = server.children()["worker:square"]
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: server.children().get("worker:square") not in (None, worker), 15, what="worker restarted")
    server.wait_source("square", lambda s: s["state"] == "online" and s["worker"]["restarts"] >= 1, timeout=15)
    # At restart the killed worker's partial clip was dealt with: kept (renamed) if playable, else removed.
    final = Path(str(part)[: -len(".part")])
    wait_for(lambda: not part.exists(), 10, what="the partial clip tidied")
    if final.exists():
        assert playable(final), ffprobe(final)
    # A clean stop finishes the clip being written: nothing partial, everything plays.
    wait_for(writing, 20, what="the next clip being written")
    assert server.terminate() == 0
    assert not list(clips.glob("*.part"))
    finished = list(clips.glob("square-*.mp4"))
    assert finished and all(playable(p) for p in finished), [ffprobe(p) for p in finished]


def test_a_slow_analysis_drops_frames_not_the_source(icey):
    # A grid of one cell per pixel on 720p makes every analysis take longer than a frame lasts:
    # the analysis queue (depth 2) drops the oldest frames and counts them; the reader keeps pace.
    server = icey(["--no-turn"], config=config([
        {"id": "busy", "source": "demo://testsrc2?size=1280x720&rate=15",
         "intelligence": vision(everyNthFrame=1, minIntervalUsec=0, queueDepth=2,
                                motion={"gridWidth": 1280, "gridHeight": 720, "threshold": 0.02})},
    ]))
    status = wait_for(lambda: (v := intelligence(server, "busy")["vision"])["queueDrops"] >= 10 and v, 30,
                      what="queue drops")
    assert 0 < status["analysisFps"] < 15
    video = server.wait_source("busy", lambda s: (s["media"]["video"] or {}).get("fps", 0) > 0)["media"]["video"]
    assert video["fps"] == pytest.approx(15, abs=2.5)
    assert server.source("busy")["reconnects"] == 0


def test_artifact_retention_deletes_only_what_the_server_named(icey, tmp_path):
    """Issue 9 item 12: the snapshots folder may be shared; retention deletes the artifacts of
    this server's sources and leaves everything else alone, however old."""
    snapshots = tmp_path / "rec" / "snapshots"
    snapshots.mkdir(parents=True)
    two_hours_ago = time.time() - 7200

    def old(name: str) -> Path:
        path = snapshots / name
        path.write_bytes(b"\xff\xd8 a jpeg")
        os.utime(path, (two_hours_ago, two_hours_ago))
        return path

    ours = [old("square-2020-01-01T00-00-00.000Z.jpg"), old("still-2020-01-01T00-00-01.000Z-1.jpg")]
    theirs = [old("holiday.jpg"), old("stranger-2020-01-01T00-00-00.000Z.jpg"), old("square.jpg")]
    retention = {"maxAgeHours": 1, "maxTotalMb": 0, "minFreeMb": 0}
    icey(["--no-turn"], config={
        "media": {"recordDir": str(tmp_path / "rec"), "intelligence": {"artifacts": {"retention": retention}}},
        "sources": [{"id": "square", "source": "demo://square?size=320x180&rate=10",
                     "intelligence": vision(snapshots=True)},
                    {"id": "still", "mode": "relay"}]})
    wait_for(lambda: not any(p.exists() for p in ours), 20, what="the server's own old snapshots deleted")
    assert all(p.exists() for p in theirs), [p.name for p in theirs if not p.exists()]


def test_snapshot_failures_on_a_full_disk_are_visible(icey, tmp_path):
    """Issue 8 item 2: a snapshot the disk refuses shows in the vision status and as a
    record.failed event; the next one that fits clears it (record.resumed)."""
    with small_disk(tmp_path / "disk", 5) as disk:
        server = icey(["--no-turn"], config={
            "media": {"recordDir": str(disk / "rec")}, "supervisor": {"heartbeatMs": 500},
            "sources": [{"id": "square", "source": "demo://square?size=320x180&rate=10&move=1&period=2",
                         "intelligence": vision(snapshots=True)}]})
        wait_for(lambda: history(server, "square", "snapshot"), 20, what="a first snapshot")
        filler = fill(disk)
        status = wait_for(lambda: (v := intelligence(server, "square")["vision"])["lastError"] and v, 20,
                          what="the failure in the vision status")
        assert "No space left" in status["lastError"] and status["lastError"].startswith("snapshots:")
        failed = wait_for(lambda: history(server, "square", "record"), 5, what="a record.failed event")
        assert [e["type"] for e in failed] == ["record.failed"]
        assert failed[0]["data"]["target"] == "snapshots" and "No space left" in failed[0]["data"]["detail"]
        filler.unlink()
        wait_for(lambda: intelligence(server, "square")["vision"]["lastError"] is None, 20, what="snapshots again")
        assert [e["type"] for e in history(server, "square", "record")] == ["record.failed", "record.resumed"]
        server.kill_all()  # before the disk goes
