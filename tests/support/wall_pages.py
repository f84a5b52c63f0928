"""What the wall's browser tests do with its page: read its tiles (window.probe()), wait for them, hide
the tab, count a server's WHEP sessions, and keep screenshots where a person can look at them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from support.processes import IceyServer

# A copy of every screenshot, to look at after the run. Private (0700) like the servers' runtime dirs,
# which share its /tmp/icey-* prefix (test_process_faults checks that every such dir of ours is private).
SCREENS = Path("/tmp/icey-screens")


def tiles(page: Page) -> dict[str, dict]:
    """id -> what the tile shows (state, live, playing, stillWidth, videoWidth, notice, onScreen)."""
    return {t["id"]: t for t in page.evaluate("window.probe ? window.probe() : []")}


def wait_tiles(page: Page, predicate: Callable[[dict[str, dict]], bool], timeout: float = 15.0,
               what: str = "tiles") -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    seen: dict[str, dict] = {}
    while time.monotonic() < deadline:
        seen = tiles(page)
        if seen and predicate(seen):
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {seen}")


def set_hidden(page: Page, hidden: bool) -> None:
    """Headless Chromium never hides a page (another tab in front, a minimized window), so the test sets
    what the page reads (document.hidden, visibilityState) and fires the real visibilitychange event."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
                                                            get: () => hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


def whep_sessions(server: IceyServer, headers: dict[str, str] | None = None) -> int:
    """The WHEP sessions the server holds now, whatever their state, over every source."""
    status = server.status(headers)
    total = 0
    for source in status["sources"]:
        r = server.get(f"/api/sources/{source['id']}/sessions", headers)
        assert r.status == 200, r.body
        total += sum(1 for s in r.json()["items"] if s["kind"] == "whep")
    return total


def screenshot(page: Page, folder: Path, name: str, full_page: bool = False) -> Path:
    """A PNG under the test's folder, copied to /tmp/icey-screens/."""
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    SCREENS.mkdir(mode=0o700, exist_ok=True)
    SCREENS.chmod(0o700)
    shutil.copy(path, SCREENS / name)
    return path
