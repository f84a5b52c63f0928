"""Issue 8, item 9: 200 WHEP viewers joining and leaving leave the worker as they found it.

Viewers come in concurrent batches and leave three ways: DELETE, closing their peer connection
without DELETE, and vanishing (their network gone: no word at all). After a warm-up, the
worker's RSS may not grow by more than 5 MB, its descriptors and threads come back to their
baseline, and vanished viewers are closed within the silence window plus
`webrtc.disconnectGraceSec`. A leak grows in every round of churn, while the allocator's arenas
settle after a round or two: so up to MEASURED_ROUNDS rounds are measured, and one of them must
stay under the limit."""

from __future__ import annotations

import asyncio
import time

from support.hostile_peer import vanish
from support.proc_stats import footprint
from support.processes import until
from support.webrtc_client import Viewer, wait_frames, watch

GRACE_SEC = 2.0
SILENCE_SEC = 3.0  # the worker's own: a peer unheard for this long is `disconnected`
CONFIG = {"webrtc": {"hostAddresses": ["127.0.0.1"], "disconnectGraceSec": GRACE_SEC,
                     "maxSessionsPerAddress": 0},  # every viewer here is 127.0.0.1
          # Peers that leave without DELETE linger for silence + grace: more than 64 at a time.
          "sources": [{"id": "cam", "source": "demo://testsrc2?size=160x90&rate=10", "maxViewers": 500}]}
BATCH = 10
WARMUP_CYCLES = 200  # the same churn once first: the heap grows to its working size
SETTLE_SEC = 2.5  # the worker collects closed peer connections a second after the last close
CYCLES = 200
MEASURED_ROUNDS = 3
MAX_RSS_GROWTH_KB = 5 * 1024


async def _leave(server, viewer: Viewer, how: int) -> None:
    if how == 0:
        r = await asyncio.to_thread(server.request, "DELETE", viewer.location)
        assert r.status == 200, r.body
    elif how == 2:
        vanish(viewer.pc)
    await viewer.close()


async def _cycle(server, n: int) -> None:
    viewer = await watch(server.base, "cam")
    try:
        assert viewer.status == 201, viewer.body
        await wait_frames(viewer, 1, timeout=20)
    finally:
        await _leave(server, viewer, n % 3)


async def _churn(server, cycles: int) -> None:
    for start in range(0, cycles, BATCH):
        await asyncio.gather(*(_cycle(server, n) for n in range(start, min(start + BATCH, cycles))))


def _sessions(server) -> int:
    return server.get("/api/sources/cam/sessions").json()["itemCount"]


async def _all_gone(server) -> float:
    """Seconds until the worker has no session left; vanished ones need SILENCE_SEC + GRACE_SEC."""
    started = time.monotonic()
    await until(lambda: _sessions(server) == 0, SILENCE_SEC + GRACE_SEC + 5, interval=0.2, what="no session left")
    return time.monotonic() - started


async def test_churn_leaves_the_worker_as_it_was(icey):
    server = icey(["--no-turn"], config=CONFIG)
    server.wait_source("cam", lambda s: s["state"] == "online")
    pid = server.source("cam")["worker"]["pid"]
    await _churn(server, WARMUP_CYCLES)
    await _all_gone(server)
    await asyncio.sleep(SETTLE_SEC)
    growths: list[int] = []
    for _ in range(MEASURED_ROUNDS):
        baseline = footprint(pid)
        started = time.monotonic()
        await _churn(server, CYCLES)
        churn_sec = time.monotonic() - started
        gone_sec = await _all_gone(server)
        await asyncio.sleep(SETTLE_SEC)
        after = footprint(pid)
        print(f"\n{CYCLES} join/leave cycles in {churn_sec:.1f} s; last sessions gone {gone_sec:.1f} s after the last "
              f"batch\nworker before the round: {baseline}\nworker after the round:  {after}")
        assert gone_sec <= SILENCE_SEC + GRACE_SEC + 2.0
        assert after.fds == baseline.fds, (baseline, after)
        assert after.threads == baseline.threads, (baseline, after)
        growths.append(after.rss_kb - baseline.rss_kb)
        if growths[-1] < MAX_RSS_GROWTH_KB:
            break
    status = server.status()
    assert status["sessions"] == {"active": 0, "total": WARMUP_CYCLES + len(growths) * CYCLES}
    assert min(growths) < MAX_RSS_GROWTH_KB, f"RSS grew by {growths} kB in every round"
