"""The camera wall at / and the source page at /sources/<id> in a real headless Chromium against a real
server: stills from the snapshot endpoint, live WHEP video on click, on motion and always (within the
live cap, and never while hidden), badges that follow a camera that drops and a worker that is killed,
the token form with the token kept out of every log line, and a wall of two boxes (?box=, CORS, the other
box's token).

The `browser` fixture (Debian's /usr/bin/chromium driven by Playwright) is in conftest.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import av
from playwright.sync_api import expect
from support.browser_pages import new_page
from support.processes import RtspCamera, wait_for
from support.servers import LOOPBACK
from support.wall_pages import screenshot, set_hidden, wait_tiles, whep_sessions

TOKEN = "wall-token-8f3a61c2"


def _online(server, headers: dict[str, str] | None = None) -> None:
    wait_for(lambda: all(s["state"] == "online" for s in server.status(headers)["sources"]), 30,
             what="every source online")


def _decodes_a_picture(path: Path) -> None:
    with av.open(str(path)) as png:
        pixels = next(png.decode(video=0)).to_ndarray(format="rgb24")
    assert pixels.std() > 10, f"the screenshot looks blank: {path}"


def test_wall_stills_click_to_live_keys_and_the_source_page(icey, browser, tmp_path: Path):
    server = icey(["--demo", "--no-turn"], LOOPBACK)
    _online(server)
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.set_default_timeout(15_000)
    page.goto(server.base + "/")
    shown = wait_tiles(page, lambda t: len(t) == 3 and all(x["stillWidth"] > 0 for x in t.values()),
                       what="3 tiles with stills")
    assert list(shown) == ["demo-1", "demo-2", "demo-3"]  # configured order
    assert not any(t["live"] for t in shown.values()) and whep_sessions(server) == 0  # stills only until asked
    tile = page.locator("#source-demo-2")
    expect(tile).to_contain_text("online")
    expect(tile).to_contain_text("H264 640×360")
    expect(tile.get_by_role("link", name="Watch")).to_have_attribute("href", "/watch/demo-2")

    tile.click()  # live over WHEP
    shown = wait_tiles(page, lambda t: t["demo-2"]["playing"] and t["demo-2"]["videoWidth"] == 640,
                       what="demo-2 playing")
    assert not shown["demo-1"]["live"] and not shown["demo-3"]["live"]
    wait_for(lambda: whep_sessions(server) == 1, 5, what="one WHEP session")
    expect(tile.locator(".live-badge")).to_be_visible()
    expect(tile.locator(".viewers")).to_have_text("1", timeout=5000)
    _decodes_a_picture(screenshot(page, tmp_path, "wall-1920x1080.png"))
    tile.click()  # and back to stills: the session ends
    wait_for(lambda: whep_sessions(server) == 0, 5, what="the session to end")
    wait_tiles(page, lambda t: not t["demo-2"]["live"], what="demo-2 back to stills")

    page.goto(server.base + "/?src=demo-3&src=demo-1&cols=1")  # picked and ordered; one column
    wait_tiles(page, lambda t: list(t) == ["demo-3", "demo-1"], what="the picked tiles")
    assert len(page.evaluate("getComputedStyle(document.getElementById('wall')).gridTemplateColumns").split()) == 1

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(server.base + "/")
    wait_tiles(page, lambda t: len(t) == 3 and t["demo-1"]["stillWidth"] > 0, what="phone tiles")
    assert len(page.evaluate("getComputedStyle(document.getElementById('wall')).gridTemplateColumns").split()) == 1
    _decodes_a_picture(screenshot(page, tmp_path, "wall-390x844.png"))

    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(server.base + "/")
    page.locator("#source-demo-1").focus()
    page.keyboard.press("Enter")  # the source page
    page.wait_for_url(server.base + "/sources/demo-1")
    probe = wait_for(lambda: (p := page.evaluate("window.probe()"))["framesDecoded"] > 10 and p, 15,
                     what="the source page's live video")
    assert probe["videoWidth"] == 640 and probe["sessionId"]
    expect(page.locator(f"#session-{probe['sessionId']}")).to_contain_text("(this page)")
    expect(page.locator("#events")).to_contain_text("session.opened")
    expect(page.locator("#links")).to_contain_text("/api/sources/demo-1/snapshot.jpg")
    expect(page.locator("#facts")).to_contain_text("H264 640×360")
    page.wait_for_timeout(1500)  # a stats sample or two
    expect(page.locator("#bitrate")).to_contain_text("kbit/s")
    _decodes_a_picture(screenshot(page, tmp_path, "source-page.png", full_page=True))

    page.locator(f"#session-{probe['sessionId']}").get_by_role("button", name="Kick").click()
    wait_for(lambda: whep_sessions(server) == 0, 5, what="the kicked session to end")
    page.close()


def test_live_on_motion(icey, browser):
    square = "demo://square?size=320x180&rate=10&gop=10&move=2&period=6"
    server = icey(["--no-turn"], {**LOOPBACK, "stun": {"urls": []}, "sources": [
        {"id": "quiet", "source": "demo://smptehdbars?size=320x180&rate=10"},
        {"id": "square", "source": square,
         "intelligence": {"vision": {"enabled": True, "motion": {"threshold": 0.02}}}},
    ]})
    _online(server)
    page = new_page(browser)
    page.goto(server.base + "/?live=motion")
    wait_tiles(page, lambda t: len(t) == 2 and all(x["stillWidth"] > 0 for x in t.values()), what="stills")
    regions = page.locator("#source-square .region")
    expect(regions.first).to_be_attached(timeout=20_000)  # the outline of the moving square
    shown = wait_tiles(page, lambda t: t["square"]["playing"], what="the moving square live")
    assert not shown["quiet"]["live"]
    assert whep_sessions(server) == 1
    page.close()
    wait_for(lambda: whep_sessions(server) == 0, 5, what="closing the wall to end its session")


def test_badges_follow_a_camera_that_drops_and_a_worker_that_is_killed(icey, browser, rtsp_camera):
    server = icey(["--no-turn"], {**LOOPBACK, "stun": {"urls": []},
                                  "supervisor": {"restartInitialMs": 1500, "heartbeatMs": 500},
                                  "sources": [{"id": "cam", "source": rtsp_camera.url},
                                              {"id": "demo", "source": "demo://testsrc2?size=160x90&rate=10"}]})
    _online(server)
    page = new_page(browser)
    page.goto(server.base + "/")
    wait_tiles(page, lambda t: all(x["state"] == "online" and x["stillWidth"] > 0 for x in t.values()),
               what="both online with stills")

    rtsp_camera.stop()
    dropped = time.monotonic()
    shown = wait_tiles(page, lambda t: t["cam"]["state"] != "online", timeout=2.0, what="the camera's badge to flip")
    print(f"camera drop shown after {time.monotonic() - dropped:.2f}s: {shown['cam']}")
    assert shown["cam"]["state"] in ("reconnecting", "failed"), shown["cam"]
    wait_tiles(page, lambda t: "Reconnecting" in t["cam"]["notice"] and "retry in" in t["cam"]["notice"],
               what="the retry countdown")
    back = RtspCamera(port=rtsp_camera.port).start()  # the camera comes back on the same address
    try:
        wait_tiles(page, lambda t: t["cam"]["state"] == "online" and not t["cam"]["notice"], timeout=20,
                   what="the camera back online")
    finally:
        back.stop()

    os.kill(server.source("demo")["worker"]["pid"], signal.SIGKILL)
    killed = time.monotonic()
    shown = wait_tiles(page, lambda t: t["demo"]["state"] == "restarting", timeout=2.0,
                       what="the restarting badge")
    print(f"worker kill shown after {time.monotonic() - killed:.2f}s: {shown['demo']}")
    assert "Worker restarting" in shown["demo"]["notice"]
    wait_tiles(page, lambda t: t["demo"]["state"] == "online", timeout=20, what="the worker back")
    page.close()


def test_token_form_and_the_token_in_no_log(icey, browser):
    server = icey(["--demo", "--no-turn"], LOOPBACK, {"ICEY_AUTH_TOKEN": TOKEN})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    _online(server, headers)
    assert server.get("/api/sources/demo-1/snapshot.jpg").status == 401

    page = new_page(browser)
    page.goto(server.base + "/")
    form = page.locator(".token-form")
    expect(form).to_contain_text("Access token needed")  # not a blank wall
    form.get_by_label("Token").fill("not-the-token")
    form.get_by_role("button", name="Use token").click()
    expect(page.locator(".token-form")).to_contain_text("That token was refused")
    page.locator(".token-form").get_by_label("Token").fill(TOKEN)
    page.locator(".token-form").get_by_role("button", name="Use token").click()
    wait_tiles(page, lambda t: len(t) == 3 and all(x["stillWidth"] > 0 for x in t.values()),
               what="stills with the token")
    expect(page.locator(".token-form")).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('icey.token ' + location.origin)") == TOKEN
    page.locator("#source-demo-3").click()
    wait_tiles(page, lambda t: t["demo-3"]["playing"], what="live with the token")

    page.goto(server.base + "/sources/demo-1")  # the token follows within the tab; SSE takes it as ?token=
    wait_for(lambda: page.evaluate("window.probe()")["framesDecoded"] > 5, 15, what="the source page playing")
    expect(page.locator("#events")).to_contain_text("session.opened")
    page.goto(f"{server.base}/?token={TOKEN}&live=click")  # an old-style link: kept, then out of the address
    wait_tiles(page, lambda t: len(t) == 3, what="tiles")
    assert "token" not in page.url and page.url.endswith("/?live=click"), page.url
    page.close()
    wait_for(lambda: whep_sessions(server, headers) == 0, 5, what="the sessions to end")
    server.terminate()
    logs = server.stdout() + server.stderr()
    assert "session" in logs  # the log was written...
    assert TOKEN not in logs  # ...and says nothing of the token, not even from a query string


def test_nine_sources_within_the_live_cap_and_not_while_hidden(icey, browser):
    sources = [{"id": f"cam-{i}", "source": f"demo://testsrc2?size=160x90&rate=10&tone={300 + 50 * i}"}
               for i in range(1, 10)]
    server = icey(["--no-turn"], {**LOOPBACK, "stun": {"urls": []}, "sources": sources})
    _online(server)
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.set_default_timeout(15_000)
    page.goto(server.base + "/?live=always&maxLive=4")
    most = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        most = max(most, whep_sessions(server))
        page.wait_for_timeout(200)
    shown = wait_tiles(page, lambda t: sum(x["playing"] for x in t.values()) == 4, what="4 live tiles")
    assert most <= 4 and whep_sessions(server) == 4, most
    assert [i for i, t in enumerate(shown.values()) if t["live"]] == [0, 1, 2, 3]  # the first four, in order
    assert all(t["stillWidth"] > 0 for t in shown.values() if not t["live"])

    set_hidden(page, True)  # a forgotten wall holds no viewers
    wait_for(lambda: whep_sessions(server) == 0, 3, what="hiding the page to end every session")
    set_hidden(page, False)
    wait_tiles(page, lambda t: sum(x["playing"] for x in t.values()) == 4, what="4 live again")

    page.set_viewport_size({"width": 480, "height": 300})  # one column: most tiles off screen
    page.goto(server.base + "/?live=always&maxLive=4&cols=1")
    shown = wait_tiles(page, lambda t: any(x["playing"] for x in t.values()), what="the visible tile live")
    assert all(not t["live"] for t in shown.values() if not t["onScreen"]), shown
    page.locator("#source-cam-9").scroll_into_view_if_needed()
    shown = wait_tiles(page, lambda t: t["cam-9"]["playing"] and not t["cam-1"]["live"], what="scrolled live")
    assert whep_sessions(server) <= sum(t["onScreen"] for t in shown.values()), shown
    page.close()


def test_source_page_recordings_snapshots_and_clips(icey, browser, tmp_path: Path):
    yard = "demo://square?size=320x180&rate=10&gop=10&move=2&period=4"
    vision = {"enabled": True, "motion": {"threshold": 0.02}, "snapshots": {"enabled": True, "minIntervalUsec": 0},
              "clips": {"enabled": True, "preRollUsec": 500_000, "postRollUsec": 500_000}}
    server = icey(["--no-turn"], {**LOOPBACK, "stun": {"urls": []}, "media": {"recordDir": "rec"}, "sources": [
        {"id": "yard", "source": yard, "record": {"enabled": True, "segmentSeconds": 2},
         "intelligence": {"vision": vision}}]})
    _online(server)
    wait_for(lambda: [r for r in server.get("/api/sources/yard/recordings").json()["items"] if not r["open"]], 20,
             what="a closed segment")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(server.base + "/sources/yard")
    expect(page.locator("#badges .rec")).to_be_visible()
    snapshot = page.locator(".artifact img").first
    expect(snapshot).to_be_visible(timeout=20_000)
    wait_for(lambda: snapshot.evaluate("img => img.naturalWidth") == 320, 10, what="the motion snapshot decoded")
    expect(page.locator(".artifact video").first).to_be_attached(timeout=20_000)  # a motion clip
    page.locator("#filter-motion").uncheck()  # the type filters hide what is not wanted
    expect(page.locator("#events .ev-motion").first).to_be_hidden()
    expect(page.locator("#events .ev-snapshot").first).to_be_visible()

    page.locator("#recordings").get_by_role("button", name="Play").last.click()  # the oldest segment
    player = page.locator("#recording-player")
    expect(player).to_be_visible()
    wait_for(lambda: player.evaluate("v => v.readyState >= 1 && v.duration > 1.5"), 10, what="the segment's metadata")
    player.evaluate("v => { v.pause(); v.currentTime = 1.0; }")  # seekable: the server answers Range requests
    wait_for(lambda: player.evaluate("v => !v.seeking && Math.abs(v.currentTime - 1.0) < 0.2"), 10, what="a seek")
    screenshot(page, tmp_path, "source-page-media.png", full_page=True)
    page.close()


def test_live_falls_back_to_stills_and_retries(icey, browser):
    server = icey(["--no-turn"], {**LOOPBACK, "stun": {"urls": []}, "sources": [
        {"id": "one", "source": "demo://testsrc2?size=160x90&rate=10", "maxViewers": 1}]})
    _online(server)
    watcher = new_page(browser)  # takes the only viewer slot
    watcher.goto(server.base + "/watch/one")
    wait_for(lambda: watcher.evaluate("window.probe()")["framesDecoded"] > 5, 15, what="the watcher playing")
    page = new_page(browser)
    page.goto(server.base + "/")
    wait_tiles(page, lambda t: t["one"]["stillWidth"] > 0, what="the still")
    page.locator("#source-one").click()
    shown = wait_tiles(page, lambda t: "Live video failed" in t["one"]["notice"], what="the failure shown")
    assert "503" in shown["one"]["notice"] and "retry in" in shown["one"]["notice"], shown
    assert shown["one"]["stillWidth"] > 0 and not shown["one"]["playing"]  # the still stays
    watcher.close()  # the slot frees: the next retry plays
    wait_tiles(page, lambda t: t["one"]["playing"] and not t["one"]["notice"], timeout=20, what="live after retrying")
    page.close()


def test_wall_of_two_boxes_with_the_other_box_token_and_cors(icey, browser):
    """?box=: box A's wall shows box B's sources with B's own token, because B lists A's origin in
    auth.allowedOrigins; a page of an origin B does not list gets nothing from B."""
    box_a = icey(["--source", "front=demo://testsrc2?size=320x180&rate=10", "--no-turn"], LOOPBACK)
    token_b = "box-b-token-5d1e07a9c3"
    box_b = icey(["--source", "yard=demo://smptebars?size=320x180&rate=10", "--no-turn"],
                 {**LOOPBACK, "auth": {"allowedOrigins": [box_a.base]}}, {"ICEY_AUTH_TOKEN": token_b})
    headers_b = {"Authorization": f"Bearer {token_b}"}
    _online(box_a)
    _online(box_b, headers_b)

    for path in ("/api/status", "/api/sources/yard/snapshot.jpg", "/api/events", "/api/sources/yard/whep"):
        r = box_b.request("OPTIONS", path, {"Origin": box_a.base, "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "authorization"})
        assert r.status in (200, 204) and r.headers["access-control-allow-origin"] == box_a.base, (path, r.headers)
        assert "authorization" in r.headers["access-control-allow-headers"].lower(), path
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"etag", "x-icey-frame-time", "location"} <= exposed, path
    r = box_b.get("/api/status", {**headers_b, "Origin": "http://evil.example"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers

    page = new_page(browser)
    page.goto(f"{box_a.base}/?box={box_b.base}")
    form = page.locator(".token-form")
    expect(form).to_contain_text(f"{box_b.base} asks for its access token")  # B's, not A's (A has none)
    form.get_by_label("Token").fill(token_b)
    form.get_by_role("button", name="Use token").click()
    shown = wait_tiles(page, lambda t: set(t) == {"front", "yard"} and all(x["stillWidth"] > 0 for x in t.values()),
                       what="A's and B's tiles with stills")
    assert shown["front"]["box"] == "" and shown["yard"]["box"] == f"127.0.0.1:{box_b.port}"
    assert page.evaluate(f"sessionStorage.getItem('icey.token {box_b.base}')") == token_b
    assert page.evaluate("sessionStorage.getItem('icey.token ' + location.origin)") in (None, "")

    # What the wall reads from B, straight from the browser: the exposed headers and the event stream.
    seen = page.evaluate("""async ([base, token]) => {
        const r = await fetch(base + '/api/sources/yard/snapshot.jpg', {headers: {Authorization: 'Bearer ' + token}});
        const events = new EventSource(base + '/api/events?token=' + encodeURIComponent(token));
        const opened = await new Promise((done) => {
            events.onopen = () => done(true);
            events.onerror = () => done(false);
            setTimeout(() => done(false), 5000);
        });
        events.close();
        return {status: r.status, etag: r.headers.get('ETag'), frameTime: r.headers.get('X-Icey-Frame-Time'), opened};
    }""", [box_b.base, token_b])
    assert seen["status"] == 200 and seen["etag"] and seen["frameTime"] and seen["opened"], seen

    page.locator(f"#source-127_0_0_1_{box_b.port}-yard").click()  # live over WHEP from B, with B's token
    wait_tiles(page, lambda t: t["yard"]["playing"] and t["yard"]["videoWidth"] == 320, what="yard playing")
    wait_for(lambda: whep_sessions(box_b, headers_b) == 1, 5, what="one WHEP session on B")
    assert whep_sessions(box_a) == 0
    page.close()
    wait_for(lambda: whep_sessions(box_b, headers_b) == 0, 10, what="B's session to end with the page")

    stranger = new_page(browser)  # the same wall from an origin B does not list: B's data stays out of it
    stranger.goto(f"http://localhost:{box_a.port}/?box={box_b.base}")
    expect(stranger.locator("#boxes")).to_contain_text("cannot be reached")
    expect(stranger.locator("#boxes")).to_contain_text("auth.allowedOrigins")
    assert set(wait_tiles(stranger, lambda t: "front" in t, what="A's own tile")) == {"front"}
    stranger.close()
    assert token_b not in box_a.stderr() + box_b.stderr()
