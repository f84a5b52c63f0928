"""GET /metrics on real servers, read with prometheus_client's parser: the families, their
agreement with /api/status, auth, the /metrics-only listener (metrics.port), a camera that drops,
and counters across a kill -9 of the API."""

from __future__ import annotations

import json
import os
import re
import signal

import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from support.metrics_scrape import scrape
from support.processes import REPO, free_port, http, until, wait_for
from support.servers import LOOPBACK
from support.webrtc_client import wait_frames, watch

DEPLOY = REPO / "deploy"
FAST = {"supervisor": {"heartbeatMs": 500, "restartInitialMs": 200}}
REQUIRED = {
    "icey_build_info", "icey_source_up", "icey_source_state", "icey_source_reconnects_total",
    "icey_source_receive_bytes_total", "icey_source_video_fps", "icey_source_video_bitrate_bits_per_second",
    "icey_source_keyframe_interval_seconds", "icey_source_last_packet_age_seconds", "icey_source_sessions",
    "icey_source_sessions_created_total", "icey_source_send_bytes_total", "icey_motion_active",
    "icey_motion_events_total", "icey_speech_events_total", "icey_vision_queue_drops_total",
    "icey_recording_bytes_total", "icey_recording_segments_total", "icey_storage_free_bytes", "icey_process_up",
    "icey_process_restarts_total", "icey_process_resident_memory_bytes", "icey_process_cpu_seconds_total",
    "icey_state_age_seconds", "icey_ipc_dropped_total",
}
STATES = {"starting", "connecting", "online", "reconnecting", "offline", "failed", "stopped"}
INTELLIGENCE = {"intelligence": {"vision": {"enabled": True}, "speech": {"enabled": True}}}


def _demo_with_everything(icey, tmp_path):
    """Three demo sources recording continuously, vision and speech on the first."""
    config = {**FAST, **LOOPBACK, "media": {"record": {"enabled": True, "segmentSeconds": 2},
                                            "recordDir": str(tmp_path / "rec")},
              "sources": [{"id": "demo-1", "source": "demo://testsrc2?size=320x180&rate=15", **INTELLIGENCE},
                          {"id": "demo-2", "source": "demo://smptehdbars?size=320x180&rate=15"},
                          {"id": "demo-3", "source": "demo://life?size=320x180&rate=15"}]}
    server = icey(["--no-turn"], config)
    server.wait_all_online()
    return server


def test_every_family_is_named_typed_and_agrees_with_status(icey, tmp_path):
    server = _demo_with_everything(icey, tmp_path)
    wait_for(lambda: (m := scrape(server)).value("icey_recording_segments_total", source="demo-2") and
             all(m.value("icey_source_keyframe_interval_seconds", source=s) for s in ("demo-1", "demo-2", "demo-3")),
             15, what="a recording segment and two keyframes of each source")
    before = server.status()
    metrics = scrape(server)
    after = server.status()

    names = {s.name for f in metrics.families.values() for s in f.samples}
    assert REQUIRED <= names, REQUIRED - names
    for family in metrics.families.values():
        assert family.name.startswith("icey_")
        assert family.documentation, family.name
        assert family.type in ("counter", "gauge"), (family.name, family.type)
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
    assert "# HELP icey_source_up " in metrics.text and "# TYPE icey_source_up gauge" in metrics.text

    v = metrics.value
    for item, later in zip(before["sources"], after["sources"], strict=True):
        sid = item["id"]
        assert v("icey_source_up", source=sid) == 1.0 == float(item["online"])
        assert {state: v("icey_source_state", source=sid, state=state) for state in STATES} == \
            {state: float(state == item["state"]) for state in STATES}
        assert v("icey_source_reconnects_total", source=sid) == item["reconnects"]
        assert v("icey_source_sessions_created_total", source=sid) == item["sessions"]["total"]
        assert v("icey_source_sessions", source=sid, kind="whep") + v("icey_source_sessions", source=sid,
                                                                      kind="whip") == item["sessions"]["active"]
        assert v("icey_process_up", role=f"worker:{sid}") == 1.0
        assert v("icey_process_restarts_total", role=f"worker:{sid}") == item["worker"]["restarts"]
        # Measured rates move between two requests: within what the two status reads saw.
        fps = sorted((item["media"]["video"]["fps"], later["media"]["video"]["fps"]))
        assert fps[0] * 0.9 <= v("icey_source_video_fps", source=sid) <= fps[1] * 1.1
        kbps = sorted((item["media"]["video"]["bitrateKbps"], later["media"]["video"]["bitrateKbps"]))
        assert kbps[0] * 1000 * 0.8 <= v("icey_source_video_bitrate_bits_per_second", source=sid) <= \
            kbps[1] * 1000 * 1.2
        assert v("icey_source_keyframe_interval_seconds", source=sid) == item["media"]["video"]["keyframeIntervalSec"]
        assert 0 <= v("icey_source_last_packet_age_seconds", source=sid) < 2
        assert 0 <= v("icey_state_age_seconds", source=sid) < 2
        assert v("icey_source_receive_bytes_total", source=sid, media="video") > 0
        assert v("icey_source_receive_bytes_total", source=sid, media="audio") > 0
        assert v("icey_recording_bytes_total", source=sid) > 0
    vision = before["sources"][0]["intelligence"]["vision"]
    assert v("icey_motion_events_total", source="demo-1") == vision["events"]
    assert v("icey_vision_queue_drops_total", source="demo-1") == vision["queueDrops"]
    assert v("icey_motion_active", source="demo-1") == float(vision["active"])
    assert v("icey_speech_events_total", source="demo-1") == before["sources"][0]["intelligence"]["speech"]["events"]
    assert v("icey_motion_events_total", source="demo-2") is None  # vision off there: no series
    assert v("icey_process_up", role="api") == 1.0
    assert v("icey_process_restarts_total", role="api") == before["processes"]["api"]["restarts"]
    for role in ("api", "worker:demo-1"):
        assert 10e6 < v("icey_process_resident_memory_bytes", role=role) < 2e9
        assert v("icey_process_cpu_seconds_total", role=role) > 0
    assert v("icey_storage_free_bytes", path="rec") > 0
    assert v("icey_ipc_dropped_total") == before["processes"]["api"]["ipcDropped"]
    assert v("icey_build_info", version=before["version"]) == 1.0

    # OpenMetrics when the scraper asks for it, read by the OpenMetrics parser.
    r = server.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    families = {f.name: f for f in openmetrics_families(r.body.decode())}
    assert families["icey_source_reconnects"].type == "counter" and families["icey_build"].type == "info"
    # A malformed version is not an error: plain Prometheus text.
    r = server.get("/metrics", {"Accept": "application/openmetrics-text; version=abc"})
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_metrics_auth_and_nothing_secret(icey, tmp_path):
    secrets = {"ICEY_AUTH_TOKEN": "admin-token-123456", "ICEY_METRICS_TOKEN": "scrape-token-654321",
               "ICEY_TURN_SECRET": "turn-secret-abcdef"}
    camera = f"rtsp://admin:hunter2-pw@127.0.0.1:{free_port()}/stream"
    server = icey(["--source", f"cam={camera}", "--source", "demo=demo://testsrc2?size=160x90&rate=10",
                   "--no-turn"], FAST, secrets)
    assert server.get("/metrics").status == 401
    assert server.get("/metrics", {"Authorization": "Bearer wrong"}).status == 401
    scraper = {"Authorization": f"Bearer {secrets['ICEY_METRICS_TOKEN']}"}
    admin = {"X-Icey-Token": secrets["ICEY_AUTH_TOKEN"]}
    assert server.get(f"/metrics?token={secrets['ICEY_METRICS_TOKEN']}").status == 200
    assert server.get("/metrics", admin).status == 200
    assert server.get("/api/status", scraper).status == 401  # the scraper's token opens /metrics only
    wait_for(lambda: scrape(server, scraper).value("icey_source_state", source="cam", state="reconnecting"), 20,
             what="the dead camera reconnecting")
    text = scrape(server, scraper).text
    for secret in (*secrets.values(), "hunter2-pw", "admin:"):
        assert secret not in text


def test_metrics_port_serves_metrics_alone(icey):
    secrets = {"ICEY_AUTH_TOKEN": "admin-token-123456", "ICEY_METRICS_TOKEN": "scrape-token-654321"}
    port = free_port()
    server = icey(["--demo", "--no-turn"], {**FAST, "metrics": {"port": port}}, secrets)
    base = f"http://127.0.0.1:{port}"
    scraper = {"Authorization": f"Bearer {secrets['ICEY_METRICS_TOKEN']}"}
    admin = {"Authorization": f"Bearer {secrets['ICEY_AUTH_TOKEN']}"}
    wait_for(lambda: scrape(server, scraper, base).value("icey_source_up", source="demo-1") == 1, 20,
             what="demo-1 up on the metrics port")
    assert scrape(server, admin, base).value("icey_source_up", source="demo-2") is not None  # the API token too
    assert http("GET", f"{base}/metrics").status == 401  # the same token rule as on the API port
    assert http("GET", f"{base}/metrics", {"Authorization": "Bearer wrong-token-0123456789"}).status == 401
    for path in ("/api/status", "/api/health", "/api/openapi.json", "/", "/sources/demo-1", "/artifacts/x.jpg"):
        for headers in (admin, scraper):  # nothing but /metrics there, whatever the token
            r = http("GET", base + path, headers)
            assert r.status == 404 and r.json()["error"] == "not_found", (path, r.status)
    r = http("POST", f"{base}/metrics", admin, b"")
    assert r.status == 405 and r.json()["error"] == "method_not_allowed"
    r = http("GET", f"{base}/metrics", {**scraper, "Host": "evil.example"})  # DNS rebinding: refused there too
    assert r.status == 421 and r.json()["error"] == "misdirected_request"
    assert server.get("/metrics", scraper).status == 200  # still on the API port too
    assert server.get("/api/status", scraper).status == 401
    assert all(s not in server.stderr() for s in secrets.values())


def test_metrics_port_without_tokens_is_open(icey):
    port = free_port()
    server = icey(["--demo", "--no-turn"], FAST, {"ICEY_METRICS_PORT": str(port)})
    assert "icey_source_up" in scrape(server, base=f"http://127.0.0.1:{port}").families
    assert http("GET", f"http://127.0.0.1:{port}/api/status").status == 404


def test_camera_drop_flips_up_and_bumps_reconnects(icey, rtsp_camera):
    server = icey(["--source", f"cam={rtsp_camera.url}", "--no-turn"], FAST)
    server.wait_source("cam", lambda s: s["state"] == "online")
    first = scrape(server)
    assert first.value("icey_source_up", source="cam") == 1.0
    reconnects = first.value("icey_source_reconnects_total", source="cam")

    rtsp_camera.stop()
    down = wait_for(lambda: (m := scrape(server)).value("icey_source_up", source="cam") == 0.0 and m, 20,
                    what="icey_source_up 0")
    assert down.value("icey_source_state", source="cam", state="online") == 0.0
    assert down.value("icey_source_reconnects_total", source="cam") > reconnects
    assert down.value("icey_source_video_fps", source="cam") == 0.0

    rtsp_camera.start()
    back = wait_for(lambda: (m := scrape(server)).value("icey_source_up", source="cam") == 1.0 and m, 30,
                    what="icey_source_up 1 again")
    assert back.value("icey_source_reconnects_total", source="cam") >= down.value("icey_source_reconnects_total",
                                                                                   source="cam")
    assert back.value("icey_source_receive_bytes_total", source="cam", media="video") > \
        first.value("icey_source_receive_bytes_total", source="cam", media="video")


async def test_counters_survive_a_kill_of_the_api(icey, tmp_path):
    server = _demo_with_everything(icey, tmp_path)
    viewer = await watch(server.base, "demo-2", audio=False)
    try:
        await wait_frames(viewer, 10)
        before = (await until(lambda: (m := scrape(server)).value("icey_source_send_bytes_total", source="demo-2")
                              and m, 10, what="bytes sent")).counters()
        api = server.children()["api"]
        os.kill(api, signal.SIGKILL)
        after_scrapes = []
        # Scrape as the API comes back: no counter may ever read lower than before the kill.
        await until(lambda: after_scrapes.append(m := scrape(server)) or
                    all(m.value("icey_state_age_seconds", source=s) is not None for s in ("demo-1", "demo-2",
                                                                                         "demo-3")),
                    20, interval=0.05, what="the API back with every worker's state")
        await wait_frames(viewer, 5)  # the media path never depended on the API
    finally:
        await viewer.close()
    assert server.children()["api"] != api
    api_local = {"icey_ipc_dropped_total"}  # the API's own count, and its own CPU, start again with it
    compared = 0
    for metrics in after_scrapes:
        for key, value in metrics.counters().items():
            name, labels = key
            if name in api_local or dict(labels).get("role") == "api" and name == "icey_process_cpu_seconds_total":
                continue
            if key in before:
                assert value >= before[key], (key, before[key], value)
                compared += 1
    last = after_scrapes[-1]
    assert last.value("icey_process_restarts_total", role="api") == before[("icey_process_restarts_total",
                                                                           (("role", "api"),))] + 1
    assert last.value("icey_source_send_bytes_total", source="demo-2") >= \
        before[("icey_source_send_bytes_total", (("source", "demo-2"),))]
    assert compared > 30


def test_the_dashboard_and_scrape_example_name_only_exported_metrics(icey, tmp_path):
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    assert len(exprs) > 10
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("up", "frame rate", "bitrate", "viewers", "motion", "restarts", "cpu", "memory"):
        assert topic in titles, topic

    server = _demo_with_everything(icey, tmp_path)
    metrics = wait_for(lambda: (m := scrape(server)).value("icey_recording_segments_total", source="demo-2") and m,
                       15, what="recording counters")
    exported = {s.name for f in metrics.families.values() for s in f.samples}
    used = {name for expr in exprs for name in re.findall(r"\bicey_[a-z_]+\b", expr)}
    assert used and used <= exported, used - exported
    for expr in exprs:  # rate() and increase() only over counters
        for name in re.findall(r"(?:rate|increase)\((icey_[a-z_]+)", expr):
            assert name.endswith("_total"), expr

    scrape_config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = scrape_config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    assert all(t.endswith(":4500") for c in job["static_configs"] for t in c["targets"])
