"""Health must stay true: a malformed unit, a thread that dies, a source that stalls or a reader
that blocks never leave a worker silently `online`. Real servers, real media, faults from outside
(SIGSTOP of a camera) or from the test-only hook ICEY_TEST_FAULT (workers/fault_injection.py)."""

from __future__ import annotations

import os
import signal
import time

from support.media import make_mp4_with_cut_avcc, make_ts_with_empty_nals
from support.processes import until, wait_for
from support.webrtc_client import wait_frames, watch

LOOPBACK = {"webrtc": {"hostAddresses": ["127.0.0.1"]}, "stun": {"urls": []}}
DEMO = "demo://testsrc2?size=320x180&rate=15"


def _packets(server, source_id: str) -> int:
    return server.get(f"/api/sources/{source_id}/probe").json()["packets"]


def _check(server, source_id: str) -> dict:
    return next(c for c in server.get("/api/ready").json()["checks"] if c["name"] == f"source:{source_id}")


async def test_malformed_units_are_dropped_and_the_stream_goes_on(icey, tmp_path):
    """Empty NAL units (two start codes in a row, from MPEG-TS) and a cut avcC record with
    corrupt samples (MP4): both sources stay online, packets keep flowing over several loops of
    the 2 s files, bad units are counted, nothing reconnects, and viewers get pictures."""
    ts = make_ts_with_empty_nals(tmp_path / "empty-nals.ts")
    mp4 = make_mp4_with_cut_avcc(tmp_path / "cut-avcc.mp4")
    server = icey(["--source", f"ts={ts}", "--source", f"mp4={mp4}", "--no-turn"], config=LOOPBACK)
    for source_id in ("ts", "mp4"):
        server.wait_source(source_id, lambda s: s["state"] == "online")
    before = {sid: _packets(server, sid) for sid in ("ts", "mp4")}
    viewers = [await watch(server.base, sid, audio=False) for sid in ("ts", "mp4")]
    try:
        for viewer in viewers:
            assert viewer.status == 201, viewer.body
            await wait_frames(viewer, 20, timeout=20)
    finally:
        for viewer in viewers:
            await viewer.close()
    await until(lambda: all(_packets(server, sid) > before[sid] + 60 for sid in ("ts", "mp4")), 15,
                what="packets flowing on both sources")
    ts_item, mp4_item = server.source("ts"), server.source("mp4")
    for item in (ts_item, mp4_item):
        assert item["state"] == "online" and item["reconnects"] == 0 and item["lastError"] is None
    assert ts_item["media"]["droppedUnits"] == 0  # the empty NALs are skipped, the units themselves kept
    assert mp4_item["media"]["droppedUnits"] > 0  # the samples with a NAL length past their end
    assert server.get("/api/ready").status == 200
    assert _check(server, "mp4")["result"] == "pass"


def test_an_unexpected_error_in_the_reader_reopens_the_source(icey):
    server = icey(["--source", f"cam={DEMO}", "--no-turn"], env={"ICEY_TEST_FAULT": "reader:after:40"})
    # a worker forked from the template starts once the template is ready, after the API answers
    pid = wait_for(lambda: server.children().get("worker:cam"), 10, what="worker:cam running")
    item = server.wait_source("cam", lambda s: "InjectedFault" in (s["lastError"] or ""), timeout=20)
    assert item["state"] in ("reconnecting", "online")
    item = server.wait_source("cam", lambda s: s["state"] == "online" and s["reconnects"] == 1)
    assert item["reconnectAttempts"] == 1
    assert item["worker"]["pid"] == pid and item["worker"]["restarts"] == 0  # recovered in place
    first = _packets(server, "cam")
    wait_for(lambda: _packets(server, "cam") > first + 20, 10, what="packets after the reopen")
    assert "Traceback" in server.stderr() and "unexpected error reading the source" in server.stderr()


def test_a_dead_worker_thread_restarts_the_worker(icey):
    """The analysis thread dies outside its per-frame recovery: the worker exits 1, the check
    names the thread while the supervisor waits to restart it, and the new worker is online."""
    config = {"sources": [{"id": "cam", "source": DEMO, "intelligence": {"vision": {"enabled": True}}}],
              "supervisor": {"restartInitialMs": 3000, "heartbeatMs": 500}}
    server = icey(["--no-turn"], config=config, env={"ICEY_TEST_FAULT": "vision:after:5"})
    pid = server.wait_source("cam", lambda s: s["state"] == "online")["worker"]["pid"]
    check = wait_for(lambda: (c := _check(server, "cam"))["detail"].startswith("worker exited") and c, 20,
                     what="the restarting check")
    assert check["result"] == "warn"
    assert "code 1" in check["detail"] and "worker thread vision died: InjectedFault" in check["detail"]
    item = server.wait_source("cam", lambda s: s["worker"]["restarts"] == 1 and s["state"] == "online", timeout=20)
    assert item["worker"]["pid"] != pid and item["worker"]["lastExitCode"] == 1
    assert "thread vision raised" in server.stderr() and "InjectedFault" in server.stderr()
    assert _check(server, "cam")["result"] == "pass"


def test_a_reader_blocked_for_good_is_stalled_then_restarted(icey, media_file):
    """A read that never returns (the hook blocks the reader the way a hung device or mount
    would): the source shows `stalled` with the time of its last packet, then the worker exits
    to be restarted, and the file is online again."""
    config = {"sources": [{"id": "clip", "source": str(media_file), "stallTimeoutSec": 1.5}],
              "supervisor": {"restartInitialMs": 500, "heartbeatMs": 500}}
    server = icey(["--no-turn"], config=config, env={"ICEY_TEST_FAULT": "reader:after:40:hang"})
    pid = server.wait_source("clip", lambda s: s["state"] == "online")["worker"]["pid"]
    started = time.monotonic()
    server.wait_source("clip", lambda s: s["state"] == "stalled", timeout=10)
    check = _check(server, "clip")
    assert check["result"] == "warn" and check["detail"].startswith("Source stalled: no packet since ")
    assert server.get("/api/ready").status == 503  # its only source delivers nothing: requireSources "any"
    item = server.wait_source("clip", lambda s: s["worker"]["restarts"] == 1 and s["state"] == "online", timeout=25)
    assert item["worker"]["pid"] != pid and item["worker"]["lastExitCode"] == 1
    assert time.monotonic() - started < 20
    assert "did not let go" in server.stderr()


def test_a_frozen_camera_is_stalled_and_reconnected(icey, rtsp_camera):
    """SIGSTOP: the camera keeps its connection and sends nothing. Within the stall timeout
    (+2 s) the source is `stalled`, or already reconnecting because of it; after SIGCONT it is
    online again, as one outage, without a worker restart."""
    config = {"sources": [{"id": "cam", "source": rtsp_camera.url, "stallTimeoutSec": 2}]}
    server = icey(["--no-turn"], config=config)
    server.wait_source("cam", lambda s: s["state"] == "online", timeout=20)
    os.kill(rtsp_camera.proc.pid, signal.SIGSTOP)
    try:
        frozen = time.monotonic()
        item = server.wait_source("cam", lambda s: s["state"] == "stalled" or (s["lastError"] or "").startswith(
            "stalled: "), timeout=8)
        assert time.monotonic() - frozen < 2 + 2 + 1  # stallTimeoutSec + 2 s (+1 s of polling slack)
        assert item["online"] is False
        time.sleep(1.0)
    finally:
        os.kill(rtsp_camera.proc.pid, signal.SIGCONT)
    item = server.wait_source("cam", lambda s: s["state"] == "online", timeout=30)
    assert item["reconnects"] == 1 and item["worker"]["restarts"] == 0


def test_one_outage_is_one_reconnect_of_several_attempts(icey, rtsp_camera):
    server = icey(["--source", f"cam={rtsp_camera.url}", "--no-turn"])
    server.wait_source("cam", lambda s: s["state"] == "online", timeout=20)
    rtsp_camera.stop()
    server.wait_source("cam", lambda s: s["reconnectAttempts"] >= 3, timeout=20)
    rtsp_camera.start()  # the same port
    item = server.wait_source("cam", lambda s: s["state"] == "online", timeout=30)
    assert item["reconnects"] == 1
    assert item["reconnectAttempts"] > 1
