"""The `browser` fixture shared by the browser tests: a headless Chromium per test, bounded in time,
with its own HOME, and no Chromium process of ours left running after it.

Chromium is Debian's /usr/bin/chromium driven by the PyPI `playwright` package (never
`playwright install`). `--use-fake-device-for-media-stream` gives getUserMedia a test-pattern camera
and a beeping microphone without a prompt.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from support.processes import alive, children_of, cmdline, kill_pids, wait_for

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
TEST_BUDGET_SEC = 120  # a hung browser call fails the test instead of hanging the run
TEARDOWN_BUDGET_SEC = 30


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        found += kids
        todo += kids
    return found


def _chromium_pids(home: Path) -> set[int]:
    """Our Chromium processes: those under this test process (browser, zygotes, renderers, GPU,
    network) and the crashpad handlers, which double-fork away but name a path in our HOME."""
    ours = {pid for pid in _descendants(os.getpid()) if "chromium" in cmdline(pid).split(" ", 1)[0]}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and "chrome_crashpad_handler" in (argv := cmdline(int(entry.name))) \
                and str(home) in argv:
            ours.add(int(entry.name))
    return ours


class BudgetExceeded(Exception):
    """Not an OSError (TimeoutError is one), so no retry loop swallows it."""


def _expired(signum, frame):
    raise BudgetExceeded("browser test exceeded its time budget")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium for one test, bounded in time; after it no Chromium process of ours may
    be left running."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install the Debian packages chromium and fonts-liberation "
                    "(see .ci/install-deps)")
    home = tmp_path / "chromium-home"  # crash reports and config land here, not in the real HOME
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(TEST_BUDGET_SEC)
    pw = sync_playwright().start()
    seen: set[int] = set()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS, env=env, timeout=30_000)
        seen |= _chromium_pids(home)
        yield browser
        signal.alarm(TEARDOWN_BUDGET_SEC)
        seen |= _chromium_pids(home)
        browser.close()
    finally:
        try:
            seen |= _chromium_pids(home)
            pw.stop()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        try:
            wait_for(lambda: not any(alive(pid) for pid in seen), 10, what="chromium to exit")
        except AssertionError:
            left = [pid for pid in seen if alive(pid)]
            kill_pids(left)
            pytest.fail(f"chromium processes left running after the browser closed: {left}")
