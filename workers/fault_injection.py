"""TEST-ONLY fault hook: makes a worker thread fail on purpose, so process tests can prove that
nothing dies unnoticed. Off unless the environment variable ICEY_TEST_FAULT is set when the
worker starts; nothing in the product, its config or its flags sets it, and an armed worker says
so in its log.

    ICEY_TEST_FAULT=<point>:after:<n>[:hang]

The n-th pass through `fault_point("<point>")` raises InjectedFault (or, with `hang`, blocks
that thread for good, ignoring every interrupt: a call stuck inside a library). It fires once per
server: a marker in the runtime dir keeps a restarted worker from firing it again.

Points: `reader` (per packet read, inside the reader's own recovery), `vision` (per turn of the
analysis loop, outside its per-frame recovery: the thread dies).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("icey.faults")

ENV = "ICEY_TEST_FAULT"
MARKER = "test-fault-fired"


class InjectedFault(RuntimeError):
    """Raised by an armed fault point."""


class _Fault:
    def __init__(self, point: str, after: int, hang: bool, marker: Path) -> None:
        self.point, self.after, self.hang, self.marker = point, after, hang, marker
        self.passes = 0
        self.lock = threading.Lock()


_armed: _Fault | None = None


def arm_from_env(runtime_dir: Path) -> None:
    """Read ICEY_TEST_FAULT once, at worker start."""
    global _armed
    spec = os.environ.get(ENV)
    if not spec:
        return
    marker = runtime_dir / MARKER
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[1] != "after" or not parts[2].isdigit() or parts[3:] not in ([], ["hang"]):
        raise SystemExit(f"{ENV}={spec!r}: expected <point>:after:<n>[:hang]")
    if marker.exists():
        return
    _armed = _Fault(parts[0], int(parts[2]), parts[3:] == ["hang"], marker)
    log.warning("TEST FAULT ARMED: %s (test-only; never set %s in production)", spec, ENV)


def fault_point(point: str) -> None:
    fault = _armed
    if fault is None or fault.point != point:
        return
    with fault.lock:
        fault.passes += 1
        if fault.passes != fault.after:
            return
        fault.marker.touch()
    log.warning("test fault %s firing after %d passes", point, fault.after)
    if fault.hang:
        threading.Event().wait()
    raise InjectedFault(f"injected by {ENV} at {point} after {fault.after}")
