"""Where the ZeroMQ endpoints live: a private per-instance runtime directory (mode 0700), so
two servers on one box never collide and other local users cannot inject state."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import zmq
import zmq.asyncio

SETTINGS_FILE = "settings.json"
# Bounded queues: a stalled API must never block a worker (PUB drops past the HWM).
STATE_HWM = 256


def create_runtime_dir() -> Path:
    """`icey-<supervisor pid>-<random>`, created 0700; leftovers of supervisors that died without
    cleaning up (SIGKILL) are removed on the way."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.access(base, os.W_OK):
        base = tempfile.gettempdir()
    _remove_stale(Path(base))
    path = Path(tempfile.mkdtemp(prefix=f"icey-{os.getpid()}-", dir=base))  # mkdtemp creates it 0700
    os.chmod(path, 0o700)
    return path


def _remove_stale(base: Path) -> None:
    for entry in base.glob("icey-*-*"):
        pid = entry.name.split("-")[1]
        try:
            if not pid.isdigit() or entry.stat().st_uid != os.getuid() or Path(f"/proc/{pid}").exists():
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)


def state_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir}/state.sock"


def report_endpoint(runtime_dir: Path) -> str:
    """Where the API reports to the supervisor (ApiReport), for systemd's readiness and watchdog."""
    return f"ipc://{runtime_dir}/api-report.sock"


def control_endpoint(runtime_dir: Path, source_index: int) -> str:
    # By index, not id: ipc paths are limited to ~107 bytes.
    return f"ipc://{runtime_dir}/ctl-{source_index}.sock"


class SnapshotSocket:
    """The sending end of the state plane: an XPUB connected to the API's SUB.

    Sends never block and drop when the API lags. XPUB (not PUB) because it tells us when an API
    subscribes: the owner then sends its full snapshot at once, so a (re)started API is whole
    again as soon as it connects, without waiting for a heartbeat."""

    def __init__(self, runtime_dir: Path, endpoint: str | None = None) -> None:
        self._async = zmq.asyncio.Context.instance().socket(zmq.XPUB)
        self._async.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._async.setsockopt(zmq.SNDHWM, STATE_HWM)
        self._async.setsockopt(zmq.LINGER, 0)
        # Local ipc reconnects are cheap: retry fast so a starting API hears us within ~100 ms.
        self._async.setsockopt(zmq.RECONNECT_IVL, 50)
        self._async.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        self._async.connect(endpoint or state_endpoint(runtime_dir))
        self._sync: zmq.Socket = zmq.Socket.shadow(self._async.underlying)  # same socket, plain non-blocking sends

    def send(self, data: bytes) -> None:
        if self._sync.closed:
            return  # shutting down: a late event has nowhere to go
        try:
            self._sync.send(data, zmq.NOBLOCK)
        except zmq.Again:
            pass  # the API lags; the next snapshot carries the same full state

    async def subscribed(self) -> None:
        """Return when a subscriber (an API process) joins."""
        while True:
            event = await self._async.recv()
            if event[:1] == b"\x01":
                return

    def close(self, linger_ms: int = 0) -> None:
        self._async.close(linger_ms)
