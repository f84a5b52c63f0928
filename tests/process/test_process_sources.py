"""Real sources: a local media file, a missing file, and a real RTSP camera that drops and returns."""

from __future__ import annotations

import time


def test_local_file_is_paced_and_looped(icey, media_file):
    server = icey(["--source", f"clip={media_file}", "--no-turn"])
    item = server.wait_source("clip", lambda s: s["state"] == "online")
    assert item["source"] == {"value": "clip.mp4", "kind": "file", "remote": False, "loop": True}
    first = server.get("/api/sources/clip/probe").json()
    time.sleep(3.0)  # longer than the 2 s file: it must have looped, at real-time speed
    second = server.get("/api/sources/clip/probe").json()
    item = server.source("clip")
    assert item["state"] == "online" and item["reconnects"] == 0
    video = item["media"]["video"]
    assert video["codec"] == "h264" and (video["width"], video["height"]) == (320, 180)
    assert 12 <= video["fps"] <= 18  # 15 fps file, paced to its timestamps
    assert item["media"]["audio"]["codec"] == "aac"
    packets = second["packets"] - first["packets"]
    # ~3 s of 15 fps video plus ~47 AAC packets/s: far fewer than disk speed would give.
    assert 3 * (15 + 40) * 0.7 < packets < 3 * (15 + 50) * 1.5, packets
    assert server.get("/api/ready").status == 200


def test_missing_file_fails_its_source_not_the_box(icey, tmp_path, media_file):
    missing = tmp_path / "media" / "gone.mp4"
    server = icey(["--source", f"gone={missing}", "--source", f"ok={media_file}", "--no-turn"])
    item = server.wait_source("gone", lambda s: s["state"] == "failed")
    assert "gone.mp4" in item["lastError"] and str(tmp_path) not in item["lastError"]
    # The other source is unaffected, and with it online the box is ready (requireSources "any").
    assert server.wait_source("ok", lambda s: s["state"] == "online")
    r = server.get("/api/ready")
    body = r.json()
    assert r.status == 200 and body["ready"] is True and body["status"] == "degraded"
    check = next(c for c in body["checks"] if c["name"] == "source:gone")
    assert check["result"] == "fail" and "not found" in check["detail"]
    assert server.get("/api/ready?source=gone").status == 503
    # The file appearing later brings the source online without a restart.
    missing.parent.mkdir()
    missing.write_bytes(media_file.read_bytes())
    server.wait_source("gone", lambda s: s["state"] == "online", timeout=20)
    assert server.get("/api/ready?source=gone").status == 200


def test_rtsp_camera_drop_and_return(icey, rtsp_camera):
    url = rtsp_camera.url.replace("rtsp://", "rtsp://admin:hunter2@")
    server = icey(["--source", f"cam={url}", "--no-turn"])
    item = server.wait_source("cam", lambda s: s["state"] == "online", timeout=20)
    assert item["source"]["kind"] == "rtsp" and item["source"]["remote"] is True
    assert "hunter2" not in item["source"]["value"] and "admin" not in item["source"]["value"]
    video = server.wait_source("cam", lambda s: (s["media"]["video"] or {}).get("fps", 0) > 10)["media"]["video"]
    assert video["codec"] == "h264" and (video["width"], video["height"]) == (320, 180)
    assert server.source("cam")["media"]["audio"]["codec"] == "opus"

    rtsp_camera.stop()
    item = server.wait_source("cam", lambda s: s["state"] == "reconnecting", timeout=15)
    assert item["online"] is False and item["lastError"] and item["nextRetryAt"]
    ready = server.get("/api/ready")
    # The check warns (the worker retries), but the box's only source is not online: with
    # requireSources "any" nothing is there to serve.
    assert ready.status == 503 and ready.json()["status"] == "error"
    check = next(c for c in ready.json()["checks"] if c["name"] == "source:cam")
    assert check["result"] == "warn" and "next retry" in check["detail"]

    rtsp_camera.start()
    item = server.wait_source("cam", lambda s: s["state"] == "online", timeout=30)
    assert item["reconnects"] >= 1
    assert server.get("/api/ready").status == 200
    assert server.source("cam")["worker"]["restarts"] == 0  # recovered in place, not by a restart
    everything = server.get("/api/status").body + server.stderr_path.read_bytes() + server.stdout_path.read_bytes()
    assert b"hunter2" not in everything
