"""Hot source settings (issue 12): a change to a motion threshold, recording on/off, retention or
labels through PATCH /api/config/sources/<id> is taken by the running worker. Its pid stays, a
WebRTC viewer of that source keeps its session and keeps receiving frames, and the change is in
effect. A change that needs a new worker says so. A ConfigMap-style symlink swap of the config
file is picked up by the file watch."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from support.processes import until, wait_for
from support.servers import LOOPBACK
from support.sse import SseClient
from support.webrtc_client import Viewer, wait_frames, watch

DEMO = "demo://testsrc2?size=160x120&rate=15"
FAST = {**LOOPBACK, "supervisor": {"heartbeatMs": 300, "stopTimeoutSec": 3}}
JSON = {"Content-Type": "application/json"}


async def _patch(server, source_id: str, change: dict) -> dict:
    reply = await asyncio.to_thread(server.request, "PATCH", f"/api/config/sources/{source_id}", JSON,
                                    json.dumps(change).encode())
    assert reply.status == 200, reply.body
    return reply.json()


async def _still_watching(server, viewer: Viewer, source_id: str) -> None:
    """The same session, still listed, and new frames after the change."""
    seen = len(viewer.video_frames)
    await wait_frames(viewer, seen + 10)
    sessions = (await asyncio.to_thread(server.get, f"/api/sources/{source_id}/sessions")).json()["items"]
    assert [s["id"] for s in sessions] == [viewer.location.rsplit("/", 1)[-1]]
    assert viewer.pc.connectionState == "connected"


async def _source(server, source_id: str) -> dict:
    return await asyncio.to_thread(server.source, source_id)


async def test_a_motion_threshold_and_labels_change_in_place(icey):
    vision = {"enabled": True, "everyNthFrame": 1, "minIntervalUsec": 0,
              "motion": {"threshold": 0.01, "cooldownUsec": 0}}
    server = icey(["--no-turn"], config={**FAST, "sources": [
        {"id": "a", "source": DEMO, "intelligence": {"vision": vision}}]})
    server.wait_source("a", lambda s: s["state"] == "online" and s["intelligence"]["vision"]["events"] > 0)
    pid = server.children()["worker:a"]
    assert server.source("a")["intelligence"]["vision"]["threshold"] == 0.01
    viewer = await watch(server.base, "a", audio=False)
    assert viewer.status == 201
    await wait_frames(viewer, 10)

    applied = await _patch(server, "a", {"intelligence": {"vision": {"motion": {"threshold": 1.0}}}})
    assert applied["updated"] == ["a"] and applied["restarted"] == []
    assert applied["changed"] == {"a": ["intelligence.vision.motion.threshold"]}
    await until(lambda: server.source("a")["intelligence"]["vision"]["threshold"] == 1.0, 10,
                what="the worker's detector runs on the new threshold")
    await until(lambda: not server.source("a")["intelligence"]["vision"]["active"], 10, what="motion ends")
    quiet = (await _source(server, "a"))["intelligence"]["vision"]["events"]
    await _still_watching(server, viewer, "a")
    assert (await _source(server, "a"))["intelligence"]["vision"]["events"] == quiet  # nothing reaches 1.0

    await _patch(server, "a", {"intelligence": {"vision": {"motion": {"threshold": 0.01}}}})
    await until(lambda: server.source("a")["intelligence"]["vision"]["events"] > quiet, 10, what="detects again")

    labelled = await _patch(server, "a", {"labels": {"site": "lobby", "floor": "2"}})
    assert labelled["updated"] == ["a"] and labelled["changed"] == {"a": ["labels.floor", "labels.site"]}
    assert (await _source(server, "a"))["labels"] == {"site": "lobby", "floor": "2"}
    await until(lambda: "worker:a applied in place: labels.floor, labels.site" in server.stderr(), 5,
                what="the worker's answer")
    await _still_watching(server, viewer, "a")
    status = await asyncio.to_thread(server.status)
    assert status["config"]["updated"] == ["a"] and status["config"]["restarted"] == []
    assert server.children()["worker:a"] == pid
    await viewer.close()


def _segments(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.mp4")} if folder.is_dir() else set()


async def test_recording_switched_on_off_on_and_retention_in_place(icey, tmp_path):
    """The worker was started without recording: switching it on makes the recorder live."""
    record_dir = tmp_path / "rec"
    folder = record_dir / "r"
    server = icey(["--no-turn"], config={**FAST, "media": {"recordDir": str(record_dir)},
                                         "sources": [{"id": "r", "source": DEMO}]})
    server.wait_source("r", lambda s: s["state"] == "online")
    assert server.source("r")["record"]["state"] == "off"
    pid = server.children()["worker:r"]
    events = SseClient(server.base + "/api/events")
    events.start()
    viewer = await watch(server.base, "r", audio=False)
    assert viewer.status == 201
    await wait_frames(viewer, 10)

    on = await _patch(server, "r", {"record": {"enabled": True, "segmentSeconds": 1}})
    assert on["updated"] == ["r"] and on["changed"] == {"r": ["record.enabled", "record.segmentSeconds"]}
    applied = events.wait_for(lambda e: e["event"] == "config.applied")[0]["data"]["data"]
    assert applied["updated"] == ["r"] and applied["changed"] == on["changed"]
    await until(lambda: server.source("r")["record"]["state"] == "recording", 10, what="recording")
    await until(lambda: len(_segments(folder)) >= 3, 20, what="segments written")
    await _still_watching(server, viewer, "r")

    await _patch(server, "r", {"record": {"enabled": False}})
    await until(lambda: server.source("r")["record"]["state"] == "off", 10, what="recording off")
    await until(lambda: not any(i["open"] for i in server.get("/api/sources/r/recordings").json()["items"]), 10,
                what="the last segment finalized")
    stopped = _segments(folder)
    await _still_watching(server, viewer, "r")
    await asyncio.sleep(1.5)  # more than a segment's length
    assert _segments(folder) == stopped  # no new segment while off

    await _patch(server, "r", {"record": {"enabled": True}})
    await until(lambda: server.source("r")["record"]["state"] == "recording", 10, what="recording again")
    await until(lambda: _segments(folder) - stopped, 10, what="a new segment")
    await _still_watching(server, viewer, "r")

    kept = await _patch(server, "r", {"record": {"retention": {"maxAgeHours": 0.0003}}})  # about a second
    assert kept["changed"] == {"r": ["record.retention.maxAgeHours"]}
    await until(lambda: not (_segments(folder) & stopped), 10, what="old segments swept")
    await _still_watching(server, viewer, "r")
    assert server.children()["worker:r"] == pid
    events.close()
    await viewer.close()


async def test_switching_vision_on_restarts_only_that_worker_and_says_why(icey):
    server = icey(["--no-turn"], config={**FAST, "sources": [{"id": "a", "source": DEMO},
                                                             {"id": "b", "source": DEMO}]})
    for source_id in ("a", "b"):
        server.wait_source(source_id, lambda s: s["state"] == "online")
    before = server.children()
    changed = await _patch(server, "a", {"intelligence": {"vision": {"enabled": True}}, "labels": {"k": "v"}})
    assert changed["restarted"] == ["a"] and changed["updated"] == []
    assert changed["changed"] == {"a": ["intelligence.vision.enabled", "labels.k"]}
    assert changed["restartedFor"] == {"a": ["intelligence.vision.enabled"]}
    await until(lambda: "restarted ['a (for intelligence.vision.enabled)']" in server.stderr(), 5, what="the log")
    await until(lambda: server.children().get("worker:a") not in (None, before["worker:a"]), 10, what="a restarted")
    server.wait_source("a", lambda s: s["state"] == "online" and s["intelligence"]["vision"]["enabled"])
    assert server.children()["worker:b"] == before["worker:b"]
    assert server.status()["config"]["restarted"] == ["a"]


def test_a_configmap_symlink_swap_is_picked_up(icey, tmp_path):
    """The file is mounted the way Kubernetes mounts a ConfigMap: config.json -> ..data/config.json,
    ..data -> a versioned directory, replaced by renaming a new symlink over it."""
    mount = tmp_path / "configmap"
    mount.mkdir()
    config = {**FAST, "supervisor": {**FAST["supervisor"], "watchConfig": True},
              "sources": [{"id": "a", "source": DEMO, "maxViewers": 5}]}

    def version(name: str, cfg: dict) -> None:
        (mount / name).mkdir()
        (mount / name / "config.json").write_text(json.dumps(cfg))

    version("..v1", config)
    os.symlink("..v1", mount / "..data")
    os.symlink("..data/config.json", mount / "config.json")
    server = icey(["--no-turn", "-c", str(mount / "config.json")])
    server.wait_source("a", lambda s: s["state"] == "online")
    pid = server.children()["worker:a"]
    version("..v2", {**config, "sources": [{"id": "a", "source": DEMO, "maxViewers": 5,
                                            "labels": {"rev": "2"}}]})
    os.symlink("..v2", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    wait_for(lambda: server.source("a")["labels"] == {"rev": "2"}, 10, what="the swap reloaded")
    status = server.status()
    assert status["config"]["source"] == "file" and status["config"]["generation"] == 2
    assert status["config"]["updated"] == ["a"] and server.children()["worker:a"] == pid
