"""Where the ZeroMQ endpoints live: a private per-instance runtime directory (mode 0700), so
two servers on one box never collide and other local users cannot inject state."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import zmq
import zmq.asyncio

API_SETTINGS_FILE = "settings-api.json"
# Bounded queues: a stalled API must never block a worker (PUB drops past the HWM).
STATE_HWM = 256
# Bounded messages: a peer that sends more is disconnected by ZeroMQ before it is buffered.
MAX_STATE_MESSAGE = 1 << 20  # a WorkerState with a few hundred sessions is ~100 KiB
MAX_CONTROL_MESSAGE = 256 * 1024  # an SDP offer is refused above 64 KiB anyway
MAX_SUBSCRIPTION_MESSAGE = 256  # what an XPUB hears: (un)subscribe frames


def worker_settings_file(source_id: str) -> str:
    return f"settings-worker-{source_id}.json"  # ids are [A-Za-z0-9_-], 64 at most


# An AF_UNIX socket path holds at most 107 bytes (sun_path is 108 with the NUL), so the runtime
# dir's parent must leave room for `/icey-<pid>-<8 random>/` and the longest socket file name.
MAX_SOCKET_PATH = 107
SOCKET_NAME_MAX = 24  # every socket file name in the runtime dir (`state.sock`, `ctl-<n>.sock`) fits
_DIR_NAME_MAX = len("icey-4194304-") + 8  # pid_max is at most 2**22; mkdtemp adds 8 characters
MAX_BASE_PATH = MAX_SOCKET_PATH - _DIR_NAME_MAX - SOCKET_NAME_MAX - 2  # two "/" separators


class RuntimeDirError(Exception):
    """No candidate directory can hold the IPC sockets."""


def runtime_base_candidates(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Where the runtime dir may go, best first: the session's runtime dir, the temp dirs the
    environment names, then the usual fixed ones (a long $TMPDIR must not stop the server)."""
    named = [environ.get(name, "") for name in ("XDG_RUNTIME_DIR", "TMPDIR", "TEMP", "TMP")]
    return list(dict.fromkeys(path for path in [*named, "/tmp", "/dev/shm", "/var/tmp"] if path))


def choose_runtime_base(candidates: Iterable[str]) -> Path:
    """The first writable directory whose path is short enough for every socket path below it."""
    tried = []
    for candidate in candidates:
        path = os.path.abspath(candidate)
        if len(os.fsencode(path)) > MAX_BASE_PATH:
            tried.append(f"{candidate} (path too long)")
        elif not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
            tried.append(f"{candidate} (not a writable directory)")
        else:
            return Path(path)
    raise RuntimeDirError(
        f"no writable directory with a path of at most {MAX_BASE_PATH} bytes for the IPC sockets (socket paths "
        f"are limited to {MAX_SOCKET_PATH} bytes); tried {', '.join(tried) or 'nothing'}. "
        "Set XDG_RUNTIME_DIR to a short writable directory.")


def create_runtime_dir() -> Path:
    """`icey-<supervisor pid>-<random>`, created 0700 under `choose_runtime_base`; leftovers of
    supervisors that died without cleaning up (SIGKILL) are removed on the way."""
    base = choose_runtime_base(runtime_base_candidates())
    _remove_stale(base)
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


def supervisor_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir}/supervisor.sock"


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
        self._async.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION_MESSAGE)
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
