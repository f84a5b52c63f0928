"""Changing the cameras while the service runs (issue 12): real servers, real workers, real
WebRTC viewers. Only the workers a change concerns start or stop; the others keep their pids and
their viewers keep receiving frames."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest
from support.media import ffprobe
from support.metrics_scrape import scrape
from support.processes import alive, until, wait_for
from support.servers import LOOPBACK
from support.sse import SseClient
from support.webrtc_client import wait_frames, watch

DEMO = "demo://testsrc2?size=160x120&rate=15"
OTHER = "demo://smptehdbars?size=160x120&rate=15"
FAST = {**LOOPBACK, "supervisor": {"heartbeatMs": 300, "stopTimeoutSec": 3}}


def _config(*ids: str, **extra) -> dict:
    return {**FAST, "sources": [{"id": i, "source": DEMO} for i in ids], **extra}


def _json(body: dict) -> bytes:
    return json.dumps(body).encode()


def _online(server, *ids: str) -> None:
    for source_id in ids:
        server.wait_source(source_id, lambda s: s["state"] == "online")


def _max_gap(viewer) -> float:
    arrivals = [t for t, *_ in viewer.video_frames]
    return max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))


async def test_add_a_source_while_another_is_watched(icey):
    server = icey(["--no-turn"], config=_config("a", "b"))
    _online(server, "a", "b")
    before = server.children()
    viewer = await watch(server.base, "a", audio=False)
    assert viewer.status == 201
    await wait_frames(viewer, 10)
    added = await asyncio.to_thread(server.request, "POST", "/api/config/sources",
                                    {"Content-Type": "application/json"}, _json({"id": "c", "source": OTHER}))
    assert added.status == 200, added.body
    assert added.json()["added"] == ["c"] and added.json()["restarted"] == [] and added.headers["etag"] == '"2"'
    await until(lambda: server.source("c")["state"] == "online", 20, what="c online")
    # The supervisor's heartbeat measures the workers of now, not those it started with.
    await until(lambda: scrape(server).value("icey_process_resident_memory_bytes", role="worker:c"), 10,
                what="worker:c measured")
    seen = len(viewer.video_frames)
    await asyncio.sleep(1.0)
    assert len(viewer.video_frames) > seen and _max_gap(viewer) < 1.0
    after = server.children()
    assert {k: after[k] for k in before} == before and "worker:c" in after
    status = server.status()
    assert status["config"]["generation"] == 2 and status["config"]["source"] == "api"
    assert [s["id"] for s in server.get("/api/sources").json()["items"]] == ["a", "b", "c"]
    written = json.loads((server.workdir / "config.json").read_text())
    assert [s["id"] for s in written["sources"]] == ["a", "b", "c"] and written["webrtc"] == FAST["webrtc"]
    second = await watch(server.base, "c", audio=False)
    assert second.status == 201
    await wait_frames(second, 5)
    await viewer.close()
    await second.close()


async def test_remove_a_watched_source(icey):
    server = icey(["--no-turn"], config=_config("a", "b"))
    _online(server, "a", "b")
    events = SseClient(server.base + "/api/events")
    events.start()
    pid = server.children()["worker:b"]
    viewer = await watch(server.base, "b", audio=False)
    await wait_frames(viewer, 5)
    gone = await asyncio.to_thread(server.request, "DELETE", "/api/config/sources/b")
    assert gone.status == 200 and gone.json()["removed"] == ["b"], gone.body
    await until(lambda: not alive(pid), 10, what="worker b gone")
    await until(lambda: viewer.pc.connectionState in ("closed", "failed")
                or all(t.done() for t in viewer.tasks), 10, what="the viewer's session ends")
    assert server.get("/api/sources/b").status == 404
    assert server.request("POST", "/api/sources/b/whep", {"Content-Type": "application/sdp"}, b"v=0").status == 404
    assert "worker:b" not in server.children() and not alive(pid)
    events.wait_for(lambda e: e["event"] == "source.removed" and e["data"]["sourceId"] == "b")
    events.wait_for(lambda e: e["event"] == "session.closed" and e["data"]["sourceId"] == "b")  # its last word
    applied = events.wait_for(lambda e: e["event"] == "config.applied")[0]["data"]
    assert applied["sourceId"] == "" and applied["data"]["removed"] == ["b"]
    events.close()
    await viewer.close()
    assert "removed ['b']" in server.stderr()


def test_change_a_url_restarts_only_that_worker_and_survives_a_restart(icey, tmp_path):
    server = icey(["--no-turn"], config=_config("a", "b"))
    _online(server, "a", "b")
    before = server.children()
    etag = server.get("/api/config/sources").headers["etag"]
    changed = server.request("PATCH", "/api/config/sources/b", {"If-Match": etag, "Content-Type": "application/json"},
                             _json({"source": OTHER}))
    assert changed.status == 200 and changed.json()["restarted"] == ["b"], changed.body
    wait_for(lambda: server.children().get("worker:b") not in (None, before["worker:b"]), 10, what="b restarted")
    _online(server, "b")
    after = server.children()
    assert after["worker:a"] == before["worker:a"] and after["api"] == before["api"]
    assert "smptehdbars" in server.source("b")["source"]["value"]
    listed = server.get("/api/config/sources").json()
    assert [i["source"] for i in listed["items"]] == [DEMO, OTHER] and listed["generation"] == 2
    assert listed["storedIn"] == "config: config.json"  # a file name, never a path
    assert server.terminate() == 0
    again = icey(["--no-turn"], config=None, env={"ICEY_CONFIG": str(server.workdir / "config.json")})
    _online(again, "a", "b")
    assert [i["source"] for i in again.get("/api/config/sources").json()["items"]] == [DEMO, OTHER]


def test_flag_sources_persist_in_the_state_file(icey, tmp_path):
    record_dir = tmp_path / "rec"
    args = ["--no-turn", "--record-dir", str(record_dir), "--source", f"a={DEMO}"]
    server = icey(args, config=FAST)
    _online(server, "a")
    added = server.request("POST", "/api/config/sources", {"Content-Type": "application/json"},
                           _json({"id": "z", "source": OTHER}))
    assert added.status == 200, added.body
    state = json.loads((record_dir / ".icey-sources.json").read_text())
    assert [s["id"] for s in state["sources"]] == ["a", "z"]
    assert server.terminate() == 0
    again = icey(args, config=FAST)
    _online(again, "a", "z")


def test_concurrent_edits_with_the_same_generation(icey):
    server = icey(["--no-turn"], config=_config("a"))
    _online(server, "a")
    etag = server.get("/api/config/sources").headers["etag"]
    headers = {"If-Match": etag, "Content-Type": "application/json"}

    async def both() -> list[int]:
        calls = [asyncio.to_thread(server.request, "PATCH", "/api/config/sources/a", headers,
                                   _json({"maxViewers": n})) for n in (3, 4)]
        return sorted(r.status for r in await asyncio.gather(*calls))

    assert asyncio.run(both()) == [200, 412]
    stale = server.request("DELETE", "/api/config/sources/a", {"If-Match": etag})
    assert stale.status == 412 and "generation 2" in stale.json()["detail"]
    assert server.get("/api/config/sources").json()["items"][0]["maxViewers"] in (3, 4)


def test_bad_configs_are_refused_whole(icey):
    server = icey(["--no-turn"], config=_config("a"))
    _online(server, "a")
    events = SseClient(server.base + "/api/events")
    events.start()
    cfg_path = server.workdir / "config.json"
    good = cfg_path.read_text()
    children = server.children()
    dup = server.request("POST", "/api/config/sources", {"Content-Type": "application/json"},
                         _json({"id": "b", "source": DEMO, "mode": "nope"}))
    assert dup.status == 400 and "sources[1].mode 'nope'" in dup.json()["detail"], dup.body
    assert server.request("POST", "/api/config/sources", {"Content-Type": "application/json"},
                          _json({"id": "a", "source": DEMO})).status == 409
    assert cfg_path.read_text() == good
    cfg_path.write_text('{"sources": [{"id": "a"}, {"id": "a"}]}')
    server.proc.send_signal(signal.SIGHUP)
    rejected = events.wait_for(lambda e: e["event"] == "config.rejected")[0]["data"]["data"]
    assert "duplicate sources[1].id 'a'" in rejected["detail"] and rejected["generation"] == 1
    wait_for(lambda: "rejected; still running generation 1" in server.stderr(), 5, what="log line")
    cfg_path.write_text("{not json")
    reload = server.request("POST", "/api/config/reload")
    assert reload.status == 400 and "JSON syntax error" in reload.json()["detail"]
    assert server.children() == children and server.source("a")["state"] == "online"  # still serving
    assert server.status()["config"]["generation"] == 1
    stun = {"urls": ["stun:stun.example.org:3478"]}
    cfg_path.write_text(json.dumps({**_config("a"), "stun": stun, "sources": [{"id": "a", "source": DEMO,
                                                                                "maxViewers": 2}]}))
    ok = server.request("POST", "/api/config/reload")
    assert ok.status == 200 and ok.json()["updated"] == ["a"] and ok.json()["requiresRestart"] == ["stun.urls"]
    status = server.status()
    assert status["config"]["generation"] == 2 and status["config"]["requiresRestart"] == ["stun.urls"]
    assert server.get("/api/config").json()["stun"]["urls"] == []  # not applied half-way
    assert server.children() == children
    events.close()


def test_a_config_that_cannot_be_written_is_not_applied(icey):
    server = icey(["--no-turn"], config=_config("a"))
    _online(server, "a")
    folder = Path(server.workdir)
    folder.chmod(0o555)
    try:
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        try:
            refused = server.request("POST", "/api/config/sources", {"Content-Type": "application/json"},
                                     _json({"id": "b", "source": DEMO}))
        finally:
            if immutable:
                subprocess.run(["chattr", "-i", str(folder)], check=True)
    finally:
        folder.chmod(0o755)
    if not immutable and refused.status == 200:
        pytest.skip("running as root without chattr: a read-only directory cannot be simulated")
    assert refused.status == 503 and "cannot write" in refused.json()["detail"], refused.body
    assert "nothing was changed" in refused.json()["detail"]
    assert server.get("/api/sources/b").status == 404 and "worker:b" not in server.children()
    assert server.status()["config"]["generation"] == 1


def test_a_watched_config_file_reloads_itself(icey):
    config = _config("a", supervisor={**FAST["supervisor"], "watchConfig": True})
    server = icey(["--no-turn"], config=config)
    _online(server, "a")
    before = server.children()
    cfg_path = server.workdir / "config.json"
    cfg_path.write_text(json.dumps({**config, "sources": [*config["sources"], {"id": "b", "source": OTHER}]}))
    wait_for(lambda: server.get("/api/sources/b").status == 200, 10, what="b configured")
    _online(server, "b")
    status = server.status()
    assert status["config"]["source"] == "file" and status["config"]["generation"] == 2
    assert server.children()["worker:a"] == before["worker:a"]
    edited = server.request("DELETE", "/api/config/sources/b", {"If-Match": '"2"'})
    assert edited.status == 200, edited.body
    wait_for(lambda: "worker:b" not in server.children(), 10, what="b stopped")
    assert server.status()["config"]["generation"] == 3  # its own write is not reloaded again


def test_removing_a_recording_source_finalizes_its_segment(icey, tmp_path):
    record_dir = tmp_path / "rec"
    config = {**FAST, "media": {"recordDir": str(record_dir)},
              "sources": [{"id": "r", "source": DEMO, "record": {"enabled": True, "segmentSeconds": 60}}]}
    server = icey(["--no-turn"], config=config)
    _online(server, "r")
    wait_for(lambda: [i for i in server.get("/api/sources/r/recordings").json()["items"] if i["durationSec"] >= 2],
             20, 0.2, what="two seconds recorded")
    pid = server.children()["worker:r"]
    assert server.request("DELETE", "/api/config/sources/r").status == 200
    wait_for(lambda: not alive(pid), 10, what="worker r gone")
    segments = json.loads((record_dir / "r" / "index.json").read_text())["segments"]
    assert len(segments) == 1 and not segments[0].get("open"), segments
    info = ffprobe(record_dir / "r" / segments[0]["file"])
    assert info["decode_errors"] == "" and float(info["format"]["duration"]) >= 2.0


async def test_max_viewers_is_applied_in_place(icey):
    server = icey(["--no-turn"], config=_config("a"))
    _online(server, "a")
    before = server.children()
    first = await watch(server.base, "a", audio=False, decode=False)
    assert first.status == 201
    changed = await asyncio.to_thread(server.request, "PATCH", "/api/config/sources/a",
                                      {"Content-Type": "application/json"}, _json({"maxViewers": 1}))
    assert changed.status == 200 and changed.json()["updated"] == ["a"] and changed.json()["restarted"] == []
    await until(lambda: "worker:a applied in place: maxViewers" in server.stderr(), 5, what="the worker took it")
    second = await watch(server.base, "a", audio=False, decode=False)
    assert second.status == 503 and b"limit of 1 viewers" in second.body
    assert server.children() == before
    await first.close()
