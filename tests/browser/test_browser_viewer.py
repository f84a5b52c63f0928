"""The viewer pages in a real headless Chromium against a real server: `/` shows the sources,
`/watch/<id>` plays one over WHEP (H.264 decoded by the browser), with and without auth.

The `browser` fixture (Debian's /usr/bin/chromium driven by Playwright) is in conftest.py.
The server offers only 127.0.0.1; Chromium may still pick its eth0 address as the local side
of the pair, which stays on this machine.
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect
from support.browser_pages import new_page, source_sessions, wait_playing
from support.processes import IceyServer, wait_for
from support.servers import LOOPBACK

TOKEN = "browser-viewer-token"


def _demo(icey, env: dict[str, str] | None = None) -> tuple[IceyServer, dict[str, str]]:
    server = icey(["--demo", "--no-turn"], LOOPBACK, env)
    headers = {"Authorization": f"Bearer {TOKEN}"} if env and "ICEY_AUTH_TOKEN" in env else {}
    wait_for(lambda: all(s["state"] == "online" for s in server.status(headers)["sources"]), 30,
             what="demo sources online")
    return server, headers


def _ended(server: IceyServer, source_id: str, headers: dict[str, str]) -> bool:
    return not source_sessions(server, source_id, headers) and server.status(headers)["sessions"]["active"] == 0


def test_index_lists_the_sources(icey, browser):
    server, _ = _demo(icey)
    r = server.get("/")
    assert r.status == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    for name, mime in (("common.js", "text/javascript"), ("watch.js", "text/javascript"), ("style.css", "text/css")):
        r = server.get(f"/ui/{name}")
        assert r.status == 200 and r.headers["content-type"].startswith(mime), name
    for path in ("/watch/nope", "/ui/../pages.py", "/ui/nope.js", "/nope"):
        r = server.get(path)
        assert r.status == 404 and r.json()["error"] == "not_found", path

    page = new_page(browser)
    page.goto(server.base + "/")
    for i in (1, 2, 3):
        row = page.locator(f"#source-demo-{i}")
        expect(row).to_contain_text(f"demo-{i}")
        expect(row).to_contain_text("online")
        expect(row).to_contain_text("H264 640×360")
        expect(row.locator(".viewers")).to_have_text("0")
        expect(row.get_by_role("link", name="Watch")).to_have_attribute("href", f"/watch/demo-{i}")
    page.get_by_role("link", name="Watch").first.click()
    page.wait_for_url(server.base + "/watch/demo-1")
    page.go_back()

    watcher = new_page(browser)  # the list refreshes every 2 s: it counts a viewer, then forgets it
    watcher.goto(server.base + "/watch/demo-1")
    wait_playing(watcher, min_frames=5)
    expect(page.locator("#source-demo-1 .viewers")).to_have_text("1", timeout=6000)
    watcher.close()
    expect(page.locator("#source-demo-1 .viewers")).to_have_text("0", timeout=6000)
    page.close()


def test_watch_plays_in_real_time_and_stop_ends_the_session(icey, browser):
    server, headers = _demo(icey)
    page = new_page(browser)
    started = time.monotonic()
    page.goto(server.base + "/watch/demo-1")
    first = wait_playing(page)
    print(f"first 30 frames decoded {time.monotonic() - started:.2f}s after goto; pair {first['pair']}")
    at = time.monotonic()
    page.wait_for_timeout(2000)
    second = page.evaluate("window.probe()")
    wall = time.monotonic() - at
    assert second["currentTime"] - first["currentTime"] >= 1.5, (first, second, wall)
    assert second["framesDecoded"] - first["framesDecoded"] >= 1.5 * 20, (first, second)  # the demo runs at 25 fps
    assert (second["videoWidth"], second["videoHeight"]) == (640, 360)
    assert second["codec"] == "H264", second
    assert second["state"] == "playing" and second["error"] is None, second
    expect(page.locator("#state")).to_have_text("playing")
    expect(page.locator("#resolution")).to_have_text("640×360")
    expect(page.locator("#codec")).to_have_text("H264")

    sessions = wait_for(lambda: (s := source_sessions(server, "demo-1", headers)) and s[0]["state"] == "active" and s,
                        5, what="an active session")
    assert len(sessions) == 1 and sessions[0]["kind"] == "whep", sessions
    assert sessions[0]["bytesSent"] > 0
    wait_for(lambda: server.status(headers)["sessions"]["active"] == 1, 5, what="status to count the viewer")

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#state")).to_have_text("stopped")
    wait_for(lambda: _ended(server, "demo-1", headers), 5, what="the session to end after Stop")
    assert page.locator("#error").text_content() == ""
    page.close()


def test_watch_with_auth_needs_the_token(icey, browser):
    server, headers = _demo(icey, {"ICEY_AUTH_TOKEN": TOKEN})
    assert server.get("/watch/nope").status == 200  # without the token: no answer about which ids exist
    assert server.get(f"/watch/nope?token={TOKEN}").status == 404
    page = new_page(browser)
    page.goto(f"{server.base}/?token={TOKEN}")  # kept for the tab (sessionStorage): links need no token
    expect(page.locator("#source-demo-2").get_by_role("link", name="Watch")).to_have_attribute(
        "href", "/watch/demo-2")
    page.goto(f"{server.base}/watch/demo-2")
    probe = wait_playing(page)
    assert probe["codec"] == "H264" and probe["videoWidth"] == 640, probe
    wait_for(lambda: [s["state"] for s in source_sessions(server, "demo-2", headers)] == ["active"], 5,
             what="the authorized session")
    page.close()
    wait_for(lambda: _ended(server, "demo-2", headers), 5, what="the session to end when the page closes")

    page = new_page(browser)  # a new tab: no token kept
    api_calls: list[tuple[str, str, int]] = []
    page.on("response", lambda r: api_calls.append((r.request.method, r.url.split(server.base, 1)[-1], r.status)))
    page.goto(f"{server.base}/watch/demo-2")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("WHEP 401 unauthorized")
    expect(error).to_contain_text("?token=")
    expect(page.locator("#state")).to_have_text("error")
    assert ("POST", "/api/sources/demo-2/whep", 401) in api_calls, api_calls
    assert page.evaluate("window.probe()")["framesDecoded"] == 0
    assert source_sessions(server, "demo-2", headers) == []
    expect(page.locator(".token-form")).to_contain_text("Access token needed")
    page.goto(f"{server.base}/")  # the wall without the token asks for it rather than showing nothing
    expect(page.locator(".token-form")).to_contain_text("Access token needed")
    expect(page.locator("#boxes")).to_contain_text("needs its access token")
    page.close()


def test_screenshot_shows_the_picture_and_closing_the_page_ends_the_session(icey, browser, tmp_path: Path):
    import av

    server, headers = _demo(icey)
    page = new_page(browser)
    page.goto(server.base + "/watch/demo-3")
    wait_playing(page)
    shot = tmp_path / "video.png"
    page.locator("video").screenshot(path=str(shot))
    page.screenshot(path=str(tmp_path / "page.png"))
    with av.open(str(shot)) as png:
        pixels = next(png.decode(video=0)).to_ndarray(format="rgb24")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 200, pixels.shape
    assert pixels.std() > 5, f"the video element looks uniform (std {pixels.std():.1f}); see {shot}"
    assert len({tuple(p) for p in pixels.reshape(-1, 3)[::97]}) > 20, "too few colours for the test pattern"

    wait_for(lambda: server.status(headers)["sessions"]["active"] == 1, 5, what="status to count the viewer")
    page.close()  # pagehide sends the DELETE (fetch keepalive)
    wait_for(lambda: _ended(server, "demo-3", headers), 5, what="the session to end when the page closes")
