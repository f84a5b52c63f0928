"""The API's merged state view (api.state_view) and the documents built on it (api.documents),
fed with real msgpack-encoded wire messages."""

from __future__ import annotations

import json
import os

import msgspec
import pytest

from api.documents import SILENT_HEARTBEATS, Documents
from api.state_view import StateView
from protocol.config import ReadyConfig
from protocol.messages import (
    AudioInfo,
    Check,
    ProcessInfo,
    SourceStatus,
    SupervisorState,
    VideoInfo,
    WorkerState,
    encode,
)
from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags

CAM_URL = "rtsp://viewer:campass77@cam.local:554/stream1"
FILE_URL = "/srv/media/lobby.mp4"
STATIC_CHECKS = [Check("config", "pass", "Loaded config from /etc/icey/config.json"),
                 Check("ffmpeg", "pass", "libavformat 1.2.3"),
                 Check("ports", "pass", "HTTP/WS on 4500, TURN on 3478")]


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return load_settings(parse_flags(["--source", f"cam={CAM_URL}", "--source", f"lobby={FILE_URL}"]), {})


def worker(source_id: str, pid: int, seq: int, state: str = "online", started: float | None = None,
           **kw) -> WorkerState:
    """`started` defaults to the pid: in these tests a higher pid is a later incarnation. Keyword
    arguments go to the SourceStatus or, for the session counts and intelligence, to WorkerState."""
    source_kw = {k: kw.pop(k) for k in list(kw) if k in SourceStatus.__struct_fields__}
    return WorkerState(source_id=source_id, pid=pid, started_mono=float(pid if started is None else started),
                       seq=seq, source=SourceStatus(state=state, **source_kw), **kw)


def as_json(doc: msgspec.Struct) -> dict:
    """A document as a client reads it."""
    return json.loads(msgspec.json.encode(doc))


def proc(source_id: str, pid: int | None, state: str = "running", **kw) -> ProcessInfo:
    return ProcessInfo(role=f"worker:{source_id}", pid=pid, state=state, **kw)


def supervisor(pid: int = 1, seq: int = 1, started: float = 100.0, workers: dict | None = None,
               checks: list[Check] | None = None, degrading: list[str] | None = None,
               warnings: list[str] | None = None, runtime: str = "running") -> SupervisorState:
    return SupervisorState(
        pid=pid, seq=seq, runtime_state=runtime, started_mono=started,
        checks=list(STATIC_CHECKS if checks is None else checks), warnings=warnings or [],
        degrading_warnings=degrading or [], api=ProcessInfo(role="api", pid=2, state="running", restarts=1),
        workers=workers or {})


def both_running() -> dict[str, ProcessInfo]:
    return {"cam": proc("cam", 11, started_mono=100.0), "lobby": proc("lobby", 12, started_mono=100.0)}


# -- StateView.apply --------------------------------------------------------------------------


def test_latest_worker_snapshot_wins():
    view = StateView()
    view.apply(encode(worker("cam", 11, 1, "connecting")), now=1.0)
    view.apply(encode(worker("cam", 11, 2, "online")), now=2.0)
    got = view.workers["cam"]
    assert (got.worker.seq, got.worker.source.state, got.at_mono) == (2, "online", 2.0)
    assert (view.received, view.dropped) == (2, 0)


def test_out_of_order_seq_from_same_pid_is_dropped():
    view = StateView()
    view.apply(encode(worker("cam", 11, 5, "online")), now=1.0)
    view.apply(encode(worker("cam", 11, 4, "reconnecting")), now=2.0)
    got = view.workers["cam"]
    assert (got.worker.seq, got.worker.source.state, got.at_mono) == (5, "online", 1.0)


def test_restarted_worker_with_lower_seq_is_accepted():
    view = StateView()
    view.apply(encode(worker("cam", 11, 900, "online")), now=1.0)
    view.apply(encode(worker("cam", 22, 1, "starting")), now=2.0)
    got = view.workers["cam"].worker
    assert (got.pid, got.seq, got.source.state) == (22, 1, "starting")


def test_late_words_of_a_dead_incarnation_are_dropped():
    view = StateView()
    view.apply(encode(worker("cam", 22, 1, "starting", started=50.0)), now=2.0)
    view.apply(encode(worker("cam", 11, 901, "stopped", started=10.0)), now=2.1)  # the old process, late
    got = view.workers["cam"].worker
    assert (got.pid, got.source.state) == (22, "starting")


def test_workers_are_kept_per_source():
    view = StateView()
    view.apply(encode(worker("cam", 11, 3)), now=1.0)
    view.apply(encode(worker("lobby", 12, 1, "connecting")), now=1.0)
    assert view.workers["cam"].worker.source.state == "online"
    assert view.workers["lobby"].worker.source.state == "connecting"


def test_supervisor_latest_wins_and_out_of_order_dropped_but_new_pid_accepted():
    view = StateView()
    view.apply(encode(supervisor(pid=1, seq=10, runtime="running")), now=1.0)
    view.apply(encode(supervisor(pid=1, seq=9, runtime="starting")), now=2.0)
    assert (view.supervisor.seq, view.supervisor.runtime_state, view.supervisor_at) == (10, "running", 1.0)
    view.apply(encode(supervisor(pid=1, seq=11, runtime="stopping")), now=3.0)
    assert (view.supervisor.seq, view.supervisor_at) == (11, 3.0)
    view.apply(encode(supervisor(pid=7, seq=1, runtime="starting")), now=4.0)
    assert (view.supervisor.pid, view.supervisor.seq) == (7, 1)


@pytest.mark.parametrize("garbage", [
    b"", b"\xc1", b"not msgpack at all \xff\xfe",
    msgspec.msgpack.encode({"type": "bogus", "pid": 1}),
    msgspec.msgpack.encode({"type": "worker", "pid": 1}),  # known tag, required fields missing
    msgspec.msgpack.encode([1, 2, 3]),
    msgspec.msgpack.encode({"type": "worker", "source_id": "cam", "pid": "x", "seq": 1, "state": "online"}),
])
def test_garbage_is_counted_and_not_fatal(garbage):
    view = StateView()
    view.apply(encode(worker("cam", 11, 1)), now=1.0)
    view.apply(garbage, now=2.0)
    assert view.dropped == 1
    assert view.received == 1
    assert view.workers["cam"].worker.seq == 1
    view.apply(encode(worker("cam", 11, 2)), now=3.0)
    assert view.workers["cam"].worker.seq == 2


# -- Documents: source items ------------------------------------------------------------------


def item_of(docs: Documents, source_id: str, now: float):
    src = docs.settings.source(source_id)
    return src, docs.source_item(src, now)


def test_no_state_yet_is_starting(settings):
    docs = Documents(settings, StateView())
    src, item = item_of(docs, "cam", now=10.0)
    assert item.state == "starting"
    assert item.online is False
    assert item.worker.pid is None
    assert docs.source_check(src, item).result == "warn"


def test_running_process_without_worker_state_is_starting(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=10.0)
    _, item = item_of(Documents(settings, view), "cam", now=10.0)
    assert item.state == "starting"
    assert item.worker.pid == 11


def test_given_up_worker_is_failed_and_fails_the_check(settings):
    view = StateView()
    workers = both_running()
    workers["cam"] = proc("cam", None, state="given-up", restarts=5, last_exit_code=139, next_restart_mono=250.0)
    view.apply(encode(supervisor(workers=workers)), now=10.0)
    docs = Documents(settings, view)
    src, item = item_of(docs, "cam", now=10.0)
    assert item.state == "failed"
    assert item.online is False
    assert item.worker.state == "given-up"
    assert item.worker.next_restart_in_ms == 240_000  # the slow retry after giving up
    check = docs.source_check(src, item)
    assert (check.name, check.result) == ("source:cam", "fail")
    assert "139" in check.detail
    assert "next automatic try in 240s" in check.detail and "POST /api/sources/cam/restart" in check.detail


def test_online_worker_passes(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=110.0)
    video = VideoInfo(codec="h264", width=1280, height=720, fps=30.0, bitrate_kbps=2000, keyframe_interval_sec=1.0)
    audio = AudioInfo(codec="opus", sample_rate=48000, channels=2)
    view.apply(encode(worker("cam", 11, 3, "online", online_since="2024-05-01T10:00:00Z", video=video,
                             audio=audio, last_packet_mono=109.5, sessions_active=1, sessions_total=4)), now=110.0)
    docs = Documents(settings, view)
    src, item = item_of(docs, "cam", now=110.25)
    assert (item.state, item.online, item.online_since) == ("online", True, "2024-05-01T10:00:00Z")
    assert item.media.video == video and item.media.audio == audio
    assert item.media.last_packet_age_ms == 750
    assert (item.sessions.active, item.sessions.total) == (1, 4)
    assert item.worker.uptime_sec == 10  # process started_mono=100.0
    assert item.worker.last_heartbeat_age_ms == 250
    check = docs.source_check(src, item)
    assert (check.name, check.result) == ("source:cam", "pass")


def test_reconnecting_with_error_warns_with_scrubbed_detail(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=10.0)
    error = "cannot open rtsp://admin:secret-pw-9@cam.local:554/stream1 (/var/lib/icey/probe/trace.log): refused"
    view.apply(encode(worker("cam", 11, 3, "reconnecting", last_error=error, reconnects=2,
                             next_retry_at="2024-05-01T10:00:05Z")), now=10.0)
    docs = Documents(settings, view)
    src, item = item_of(docs, "cam", now=10.0)
    assert item.state == "reconnecting"
    assert item.reconnects == 2
    assert "secret-pw-9" not in item.last_error
    assert "rtsp://cam.local:554/stream1" in item.last_error
    assert "/var/lib/icey" not in item.last_error
    check = docs.source_check(src, item)
    assert check.result == "warn"
    assert "secret-pw-9" not in check.detail
    assert "refused" in check.detail
    assert "2024-05-01T10:00:05Z" in check.detail
    doc = as_json(docs.readiness(now=10.0)[0])
    assert "secret-pw-9" not in json.dumps(doc)
    assert item.media.video is None


def test_stalled_source_warns_since_its_last_packet(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=110.0)
    view.apply(encode(worker("cam", 11, 3, "stalled", last_packet_mono=104.0, reconnects=1, reconnect_attempts=3,
                             dropped_units=7)), now=110.0)
    docs = Documents(settings, view)
    src, item = item_of(docs, "cam", now=110.0)
    assert (item.state, item.online, item.reconnects, item.reconnect_attempts) == ("stalled", False, 1, 3)
    assert item.media.dropped_units == 7 and item.media.last_packet_age_ms == 6000
    check = docs.source_check(src, item)
    assert check.result == "warn"
    assert check.detail.startswith("Source stalled: no packet since 20") and "(6.0s ago)" in check.detail
    # A stalled source serves nothing: with no other source online, requireSources "any" is not met.
    assert as_json(docs.readiness(now=110.0)[0])["ready"] is False


def test_restarting_worker_is_not_online_and_says_why(settings):
    """The worker died: its last heartbeat said `online`, which no longer holds; a thread death
    it reported on the way out is named by the check."""
    view = StateView()
    view.apply(encode(worker("cam", 11, 3, "online", online_since="2024-05-01T10:00:00Z")), now=10.0)
    view.apply(encode(worker("lobby", 12, 9, "failed", last_error="worker thread vision died: KeyError: 3")),
               now=10.0)
    workers = {"cam": proc("cam", None, "restarting", last_exit_code=137, next_restart_mono=11.0),
               "lobby": proc("lobby", None, "restarting", last_exit_code=1, next_restart_mono=11.0)}
    view.apply(encode(supervisor(workers=workers)), now=10.5)
    docs = Documents(settings, view)
    src, item = item_of(docs, "cam", now=10.5)
    assert (item.state, item.online) == ("starting", False)
    assert docs.source_check(src, item) == Check("source:cam", "warn", "worker exited with code 137; restarting")
    src, item = item_of(docs, "lobby", now=10.5)
    assert item.state == "failed"
    assert docs.source_check(src, item) == Check(
        "source:lobby", "warn", "worker exited with code 1; restarting: worker thread vision died: KeyError: 3")


def test_silent_worker_warns(settings):
    view = StateView()
    heartbeat = settings.supervisor.heartbeat_ms / 1000
    view.apply(encode(worker("cam", 11, 3, "online", online_since="2024-05-01T10:00:00Z")), now=10.0)
    docs = Documents(settings, view)
    late = 10.0 + SILENT_HEARTBEATS * heartbeat + 0.5
    view.apply(encode(supervisor(workers=both_running())), now=late)
    src, fresh_item = item_of(docs, "cam", now=10.0 + heartbeat)
    assert docs.source_check(src, fresh_item).result == "pass"
    src, item = item_of(docs, "cam", now=late)
    assert item.worker.last_heartbeat_age_ms == int((late - 10.0) * 1000)
    check = docs.source_check(src, item)
    assert check.result == "warn"
    assert "silent" in check.detail


def test_state_from_a_previous_worker_pid_is_ignored(settings):
    view = StateView()
    workers = both_running()
    workers["cam"] = proc("cam", 22, restarts=1, started_mono=100.0, last_exit_code=1)
    view.apply(encode(supervisor(workers=workers)), now=10.0)
    view.apply(encode(worker("cam", 11, 50, "online", sessions_active=3, sessions_total=3)), now=10.0)
    docs = Documents(settings, view)
    _, item = item_of(docs, "cam", now=10.0)
    assert item.state == "starting"
    assert item.online is False
    assert (item.sessions.active, item.sessions.total) == (0, 0)
    assert item.worker.pid == 22
    view.apply(encode(worker("cam", 22, 1, "online")), now=11.0)
    _, item = item_of(docs, "cam", now=11.0)
    assert item.state == "online"


def test_source_values_are_scrubbed(settings):
    docs = Documents(settings, StateView())
    _, cam = item_of(docs, "cam", now=1.0)
    _, lobby = item_of(docs, "lobby", now=1.0)
    assert cam.source.value == "rtsp://cam.local:554/stream1"
    assert (cam.source.kind, cam.source.remote, cam.source.loop) == ("rtsp", True, False)
    assert lobby.source.value == "lobby.mp4"
    assert (lobby.source.kind, lobby.source.remote) == ("file", False)


# -- Documents: readiness and status ----------------------------------------------------------


def online_everywhere(view: StateView, now: float, **cam_kw) -> None:
    view.apply(encode(worker("cam", 11, 1, "online", online_since="2024-05-01T10:00:00Z", **cam_kw)), now=now)
    view.apply(encode(worker("lobby", 12, 1, "online", online_since="2024-05-01T10:00:00Z")), now=now)


def test_ipc_fails_before_any_supervisor_state(settings):
    view = StateView()
    online_everywhere(view, now=10.0)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    ipc = [c for c in doc["checks"] if c["name"] == "ipc"]
    assert len(ipc) == 1 and ipc[0]["result"] == "fail"
    assert doc["ready"] is False
    assert doc["status"] == "error"


def test_all_good_is_ok_and_checks_keep_contract_order(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=10.0)
    online_everywhere(view, now=10.0)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert [c["name"] for c in doc["checks"]] == ["config", "ffmpeg", "ports", "source:cam", "source:lobby", "ipc"]
    assert (doc["ready"], doc["status"]) == (True, "ok")
    assert doc["mode"] == "stream"
    # Static check details are scrubbed for the API (paths cut, prose kept).
    assert doc["checks"][0]["detail"] == "Loaded config from config.json"
    assert doc["checks"][2]["detail"] == "HTTP/WS on 4500, TURN on 3478"


def test_a_warning_check_makes_it_degraded(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=10.0)
    online_everywhere(view, now=10.0)
    view.apply(encode(worker("lobby", 12, 2, "reconnecting", last_error="eof")), now=10.0)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert (doc["ready"], doc["status"]) == (True, "degraded")


def given_up_cam(view: StateView) -> None:
    workers = both_running()
    workers["cam"] = proc("cam", None, state="given-up", restarts=5, last_exit_code=137)
    view.apply(encode(supervisor(workers=workers)), now=10.0)
    view.apply(encode(worker("lobby", 12, 1, "online", online_since="2024-05-01T10:00:00Z")), now=10.0)


def test_a_given_up_source_leaves_the_box_ready_by_default(settings):
    view = StateView()
    given_up_cam(view)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert (doc["ready"], doc["status"]) == (True, "degraded")  # the old rule said (False, "error")
    assert next(c for c in doc["checks"] if c["name"] == "source:cam")["result"] == "fail"


@pytest.mark.parametrize(("require", "ready"), [("any", True), ("all", False), (["lobby"], True), (["cam"], False)])
def test_require_sources_names_the_sources_that_must_be_online(settings, require, ready):
    view = StateView()
    given_up_cam(view)
    settings = msgspec.structs.replace(settings, ready=ReadyConfig(require_sources=require))
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert doc["ready"] is ready
    assert doc["status"] == ("degraded" if ready else "error")


def test_no_source_online_is_not_ready(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=10.0)
    view.apply(encode(worker("cam", 11, 1, "reconnecting", last_error="refused")), now=10.0)
    view.apply(encode(worker("lobby", 12, 1, "connecting")), now=10.0)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert (doc["ready"], doc["status"]) == (False, "error")


def test_one_source_readiness_has_the_service_checks_and_its_own(settings):
    view = StateView()
    given_up_cam(view)
    docs = Documents(settings, view)
    cam = as_json(docs.readiness(10.0, settings.source("cam"))[0])
    lobby = as_json(docs.readiness(10.0, settings.source("lobby"))[0])
    assert cam["ready"] is False and lobby["ready"] is True
    assert [c["name"] for c in lobby["checks"]] == ["config", "ffmpeg", "ports", "source:lobby", "ipc"]
    assert lobby["status"] == "ok"  # the dead camera is not this source's business


def test_a_degrading_warning_makes_it_degraded(settings):
    view = StateView()
    warning = "TURN is disabled; direct local/LAN calls may work, but remote NAT traversal will be limited."
    view.apply(encode(supervisor(workers=both_running(), degrading=[warning])), now=10.0)
    online_everywhere(view, now=10.0)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert (doc["ready"], doc["status"]) == (True, "degraded")
    assert warning in doc["warnings"]


def test_a_failed_static_check_is_not_ready(settings):
    view = StateView()
    checks = [*STATIC_CHECKS, Check("tls", "fail", "TLS certificate not found: /etc/icey/cert.pem")]
    view.apply(encode(supervisor(workers=both_running(), checks=checks)), now=10.0)
    online_everywhere(view, now=10.0)
    doc = as_json(Documents(settings, view).readiness(now=10.0)[0])
    assert (doc["ready"], doc["status"]) == (False, "error")
    tls = next(c for c in doc["checks"] if c["name"] == "tls")
    assert tls["detail"] == "TLS certificate not found: cert.pem"


def test_stale_supervisor_state_fails_ipc(settings):
    view = StateView()
    view.apply(encode(supervisor(workers=both_running())), now=10.0)
    online_everywhere(view, now=10.0)
    docs = Documents(settings, view)
    stale = 10.0 + SILENT_HEARTBEATS * docs.heartbeat_sec + 1.0
    doc = as_json(docs.readiness(now=stale)[0])
    ipc = next(c for c in doc["checks"] if c["name"] == "ipc")
    assert ipc["result"] == "fail"
    assert doc["ready"] is False


def test_status_uptime_sessions_and_processes(settings):
    view = StateView()
    view.apply(encode(supervisor(pid=4242, started=100.0, workers=both_running())), now=3700.0)
    view.apply(encode(worker("cam", 11, 1, "online", sessions_active=2, sessions_total=5)), now=3700.0)
    view.apply(encode(worker("lobby", 12, 1, "online", sessions_active=1, sessions_total=3)), now=3700.0)
    view.apply(b"junk", now=3700.0)
    doc = as_json(Documents(settings, view).status(now=3700.9))
    assert doc["uptimeSec"] == int(3700.9 - 100.0)
    assert doc["sessions"] == {"active": 3, "total": 8}
    assert doc["runtime"] == {"state": "running"}
    assert doc["processes"]["supervisor"]["pid"] == 4242
    assert doc["processes"]["api"]["pid"] == os.getpid()
    assert doc["processes"]["api"]["restarts"] == 1
    assert doc["processes"]["api"]["ipcDropped"] == 1
    assert doc["stream"] == {"source": "rtsp://cam.local:554/stream1", "sourceKind": "rtsp", "loop": False}
    assert doc["record"] == {"dir": "recordings"}
    assert [i["id"] for i in doc["sources"]] == ["cam", "lobby"]
    encoded = msgspec.json.encode(doc)
    assert b"campass77" not in encoded
    assert b"/srv/media" not in encoded


def test_status_before_supervisor_state(settings):
    doc = as_json(Documents(settings, StateView()).status(now=50.0))
    assert doc["uptimeSec"] == 0
    assert doc["runtime"] == {"state": "starting"}
    assert doc["sessions"] == {"active": 0, "total": 0}
    assert doc["ready"] is False
