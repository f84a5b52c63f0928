"""What the browser tests do with a page: open one with a bounded action timeout, wait until its video plays,
and read a source's sessions from the server."""

from __future__ import annotations

import time

from playwright.sync_api import Browser, Page

from support.processes import IceyServer

ACTION_TIMEOUT_MS = 15_000


def new_page(browser: Browser) -> Page:
    page = browser.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    return page


def wait_playing(page: Page, min_frames: int = 30, timeout: float = 15.0) -> dict:
    """Poll the page's probe() until the browser has decoded `min_frames` frames."""
    deadline = time.monotonic() + timeout
    probe: dict = {}
    while time.monotonic() < deadline:
        probe = page.evaluate("window.probe()")
        if probe["framesDecoded"] > min_frames and probe["videoWidth"] > 0:
            return probe
        assert probe["state"] != "error", probe
        page.wait_for_timeout(250)
    raise AssertionError(f"fewer than {min_frames} frames decoded in {timeout}s: {probe}")


def source_sessions(server: IceyServer, source_id: str, headers: dict[str, str]) -> list[dict]:
    r = server.get(f"/api/sources/{source_id}/sessions", headers)
    assert r.status == 200, r.body
    return r.json()["items"]
