"""The publish page in a real headless Chromium against a real server: `/publish/<id>` sends
Chromium's fake camera (H.264 through OpenH264) and fake microphone (Opus) over WHIP, to a record
source (an MP4 file, also after a kill -9 of the worker) and to a relay source watched by two
`/watch/<id>` pages, which survive a change of publisher.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from playwright.sync_api import Page, expect
from support.browser_pages import new_page, source_sessions, wait_playing
from support.media import ffprobe
from support.processes import IceyServer, wait_for
from support.servers import LOOPBACK, record_server

TOKEN = "browser-publish-token"

NO_H264 = """(() => {  // a browser without H.264: what the page must refuse before asking for the camera
  const caps = RTCRtpSender.getCapabilities.bind(RTCRtpSender);
  RTCRtpSender.getCapabilities = (kind) => {
    const c = caps(kind);
    return kind === 'video' ? {...c, codecs: c.codecs.filter((x) => x.mimeType.toLowerCase() !== 'video/h264')} : c;
  };
})();"""




def _publishing(page: Page, min_frames: int, min_seconds: float = 0.0, timeout: float = 20.0) -> dict:
    """Poll the publish page's probe() until it has encoded `min_frames` frames and has been
    publishing (connected) for `min_seconds`."""
    deadline = time.monotonic() + timeout
    since: float | None = None
    probe: dict = {}
    while time.monotonic() < deadline:
        probe = page.evaluate("window.probe()")
        assert probe["state"] not in ("error", "stopped"), probe
        if probe["state"] == "publishing" and since is None:
            since = time.monotonic()
        if since is not None and probe["framesEncoded"] > min_frames and time.monotonic() - since >= min_seconds:
            return probe
        page.wait_for_timeout(250)
    raise AssertionError(f"not publishing {min_frames} frames / {min_seconds}s within {timeout}s: {probe}")


def _start_publishing(server: IceyServer, page: Page, source_id: str, min_frames: int = 60,
                      min_seconds: float = 0.0) -> dict:
    page.goto(f"{server.base}/publish/{source_id}")
    probe = _publishing(page, min_frames, min_seconds)
    assert probe["codec"] == "H264" and probe["bytesSent"] > 0 and probe["error"] is None, probe
    server.wait_source(source_id, lambda s: s["state"] == "online", timeout=10)
    return probe


def _check_recording(path: Path, min_frames: int) -> dict:
    info = ffprobe(path)
    assert info["returncode"] == 0, info["errors"]
    video, audio = info["by_type"].get("video"), info["by_type"].get("audio")
    assert video and video["codec_name"] == "h264" and int(video["nb_read_frames"]) > min_frames, info
    assert video["width"] > 0 and video["height"] > 0, info
    assert audio and audio["codec_name"] == "opus" and int(audio["nb_read_frames"]) > 0, info
    assert info["decode_errors"] == "", info["decode_errors"]
    return info


def test_publish_to_record_and_stop(icey, browser, tmp_path: Path):
    server, segments = record_server(icey, tmp_path)
    r = server.get("/publish/desk")
    assert r.status == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'self': no inline script
    r = server.get("/ui/publish.js")
    assert r.status == 200 and r.headers["content-type"].startswith("text/javascript")
    r = server.get("/publish/nope")
    assert r.status == 404 and r.json()["error"] == "not_found"

    page = new_page(browser)
    page.goto(server.base + "/")  # a record source has nothing to watch: Publish only
    row = page.locator("#source-desk")
    expect(row.get_by_role("link", name="Publish")).to_have_attribute("href", "/publish/desk")
    expect(row.get_by_role("link", name="Watch")).to_have_count(0)
    row.get_by_role("link", name="Publish").click()
    page.wait_for_url(server.base + "/publish/desk")
    started = time.monotonic()
    probe = _publishing(page, min_frames=60, min_seconds=4.0)
    print(f"publishing for 4 s after {time.monotonic() - started:.1f}s: {probe}")
    expect(page.locator("#state")).to_have_text("publishing")
    expect(page.locator("#codec")).to_have_text("H264")
    sessions = source_sessions(server, "desk", {})
    assert [(s["kind"], s["state"]) for s in sessions] == [("whip", "active")], sessions
    assert sessions[0]["bytesReceived"] > 0
    assert server.source("desk")["state"] == "online"

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#state")).to_have_text("stopped")
    wait_for(lambda: not source_sessions(server, "desk", {}), 10, what="the publisher's session to end after Stop")
    server.wait_source("desk", lambda s: s["state"] == "offline", timeout=10)
    assert page.locator("#error").text_content() == ""
    files = sorted(wait_for(lambda: list(segments.glob("*.mp4")), 10, what="the recording"))
    # One segment; or two or three when the browser ramped its resolution up mid-publish (a keyframe
    # with a new SPS starts a new segment: whip_recorder.py), depending on its bandwidth estimate.
    assert 1 <= len(files) <= 3, files
    infos = [_check_recording(f, min_frames=0) for f in files]
    for f, info in zip(files, infos, strict=True):
        print(f"recording {f.name}: {info['streams']} duration {info['format']['duration']}")
    assert sum(int(info["by_type"]["video"]["nb_read_frames"]) for info in infos) > 40, infos
    assert sum(float(info["format"]["duration"]) for info in infos) >= 3.0, infos
    page.close()


def test_publish_to_record_survives_kill_of_the_worker(icey, browser, tmp_path: Path):
    server, segments = record_server(icey, tmp_path)
    page = new_page(browser)
    _start_publishing(server, page, "desk", min_frames=60, min_seconds=4.0)
    worker = server.source("desk")["worker"]
    assert worker["pid"] and worker["restarts"] == 0, worker
    os.kill(worker["pid"], signal.SIGKILL)
    files = list(segments.glob("*.mp4"))
    assert len(files) == 1, files
    wait_for(lambda: server.source("desk")["worker"]["restarts"] == 1, 15, what="the worker to restart")
    info = _check_recording(files[0], min_frames=30)  # fragments of 0.5 s: about a second lost at most
    print(f"recording after kill -9: {info['streams']} duration {info['format']['duration']}")
    page.close()


def test_relay_publisher_two_viewers_and_a_new_publisher(icey, browser):
    server = icey(["--no-turn"], {**LOOPBACK, "sources": [{"id": "live", "mode": "relay"}]})
    server.wait_source("live", lambda s: s["state"] == "offline")
    index = new_page(browser)
    index.goto(server.base + "/")
    row = index.locator("#source-live")
    expect(row.get_by_role("link", name="Watch")).to_have_attribute("href", "/watch/live")
    expect(row.get_by_role("link", name="Publish")).to_have_attribute("href", "/publish/live")
    index.close()

    publisher = new_page(browser)
    _start_publishing(server, publisher, "live", min_frames=30)
    viewers = [new_page(browser), new_page(browser)]
    for viewer in viewers:
        viewer.goto(server.base + "/watch/live")
    for viewer in viewers:
        probe = wait_playing(viewer, min_frames=30, timeout=20)
        assert probe["codec"] == "H264", probe
    wait_for(lambda: sorted((s["kind"], s["state"]) for s in source_sessions(server, "live", {})) ==
             [("whep", "active"), ("whep", "active"), ("whip", "active")], 5, what="1 whip + 2 whep sessions")
    second = new_page(browser)  # one publisher at a time
    second.goto(server.base + "/publish/live")
    expect(second.locator("#error")).to_contain_text("WHIP 409 conflict")
    expect(second.locator("#state")).to_have_text("error")
    second.close()

    publisher.get_by_role("button", name="Stop").click()  # the publisher goes; the viewers stay
    expect(publisher.locator("#state")).to_have_text("stopped")
    server.wait_source("live", lambda s: s["state"] == "offline", timeout=10)
    publisher.close()
    time.sleep(1.0)
    for viewer in viewers:
        probe = viewer.evaluate("window.probe()")
        assert probe["state"] in ("playing", "stalled", "connected") and probe["error"] is None, probe
    wait_for(lambda: sorted(s["kind"] for s in source_sessions(server, "live", {})) == ["whep", "whep"], 5,
             what="the two viewers' sessions only")

    before = [viewer.evaluate("window.probe()")["framesDecoded"] for viewer in viewers]
    replacement = new_page(browser)
    _start_publishing(server, replacement, "live", min_frames=30)
    for viewer, frames in zip(viewers, before, strict=True):
        probe = wait_playing(viewer, min_frames=frames + 30, timeout=20)
        assert probe["state"] == "playing" and probe["videoWidth"] > 0, probe
    assert sorted(s["kind"] for s in source_sessions(server, "live", {})) == ["whep", "whep", "whip"]
    replacement.close()  # pagehide sends the DELETE (fetch keepalive)
    wait_for(lambda: sorted(s["kind"] for s in source_sessions(server, "live", {})) == ["whep", "whep"], 5,
             what="the publisher's session to end when its page closes")
    server.wait_source("live", lambda s: s["state"] == "offline", timeout=10)
    for viewer in viewers:
        viewer.close()
    wait_for(lambda: not source_sessions(server, "live", {}), 5, what="the viewers' sessions to end")


def test_publish_errors_are_shown(icey, browser):
    server = icey(["--demo", "--no-turn"], LOOPBACK, {"ICEY_AUTH_TOKEN": TOKEN})
    assert server.get("/publish/nope").status == 200  # without the token: no answer about which ids exist
    assert server.get(f"/publish/nope?token={TOKEN}").status == 404
    headers = {"Authorization": f"Bearer {TOKEN}"}
    server.wait_source("demo-1", lambda s: s["state"] == "online", headers=headers)

    page = new_page(browser)  # a stream source takes no publisher: the page says why
    page.goto(f"{server.base}/publish/demo-1?token={TOKEN}")
    expect(page.locator("#error")).to_contain_text("WHIP 409 conflict")
    expect(page.locator("#error")).to_contain_text("stream mode")
    expect(page.locator("#state")).to_have_text("error")
    assert page.evaluate("window.probe()")["framesEncoded"] == 0

    fresh = new_page(browser)  # a new tab, which has no token kept
    fresh.goto(f"{server.base}/publish/demo-1")
    expect(fresh.locator("#error")).to_contain_text("WHIP 401 unauthorized")
    expect(fresh.locator("#error")).to_contain_text("?token=")
    expect(fresh.locator(".token-form")).to_contain_text("Access token needed")
    fresh.close()

    page.add_init_script(NO_H264)
    page.goto(f"{server.base}/publish/demo-1?token={TOKEN}")
    expect(page.locator("#error")).to_contain_text("cannot send H.264")
    expect(page.locator("#state")).to_have_text("error")
    page.close()
    assert source_sessions(server, "demo-1", headers) == []
