"""Issue 8, item 6: a worker whose event loop lags behind its reader keeps its memory bounded.

The reader thread handed every unit to the loop with call_soon_threadsafe: a loop that could not
keep up queued callbacks (and the media they hold) without bound. Here the worker's event-loop
thread is frozen for STALL_SEC (ptrace, see support/loop_stall.py) while its reader keeps
reading a high-bitrate file: the hand-off must drop instead of growing, and the viewer must
resume at a keyframe afterwards, its session counting the units it missed."""

from __future__ import annotations

import asyncio
import time

from support.loop_stall import stalled
from support.media import make_noise_file
from support.proc_stats import footprint
from support.processes import until
from support.webrtc_client import wait_frames, watch

STALL_SEC = 6.0
MAX_RSS_GROWTH_KB = 12 * 1024  # the source delivers about 5.5 MB/s: unbounded, it would grow ~33 MB


async def test_a_stalled_event_loop_drops_instead_of_growing(icey, tmp_path):
    noise = make_noise_file(tmp_path / "noise.mp4")
    server = icey(["--source", f"noise={noise}", "--no-turn"], config={"webrtc": {"hostAddresses": ["127.0.0.1"]}})
    server.wait_source("noise", lambda s: s["state"] == "online")
    pid = server.source("noise")["worker"]["pid"]
    viewer = await watch(server.base, "noise", audio=False)
    try:
        assert viewer.status == 201
        await wait_frames(viewer, 10)
        await asyncio.sleep(1.0)
        before = footprint(pid)
        with stalled(pid):
            started = time.monotonic()
            time.sleep(STALL_SEC)  # the test's own loop waits too: nothing reaches the viewer anyway
            during = footprint(pid)
            assert time.monotonic() - started >= STALL_SEC
        frames = len(viewer.video_frames)
        await wait_frames(viewer, frames + 15, timeout=15)  # it resumes
        after = footprint(pid)
        print(f"\nworker before the stall: {before}\nat the end of a {STALL_SEC:.0f} s stall: {during}"
              f"\nafter: {after}")
        assert during.rss_kb - before.rss_kb < MAX_RSS_GROWTH_KB, (before, during)
        session = await until(lambda: next((s for s in server.get("/api/sources/noise/sessions").json()["items"]
                                            if s["droppedUnits"] > 0), None), 5, what="droppedUnits")
        assert session["state"] in ("active", "disconnected")
        assert viewer.pc.connectionState == "connected"
    finally:
        await viewer.close()
