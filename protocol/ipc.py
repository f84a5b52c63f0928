"""Where the ZeroMQ endpoints live: a private per-instance runtime directory (mode 0700), so
two servers on one box never collide and other local users cannot inject state."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import zmq

SETTINGS_FILE = "settings.json"
# Bounded queues: a stalled API must never block a worker (PUB drops past the HWM).
STATE_HWM = 256


def create_runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.access(base, os.W_OK):
        base = tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix="icey-", dir=base))  # mkdtemp creates it 0700
    os.chmod(path, 0o700)
    return path


def state_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir}/state.sock"


def control_endpoint(runtime_dir: Path, source_index: int) -> str:
    # By index, not id: ipc paths are limited to ~107 bytes.
    return f"ipc://{runtime_dir}/ctl-{source_index}.sock"


def state_publisher(ctx: zmq.Context, runtime_dir: Path) -> zmq.Socket:
    """A PUB connected to the API's SUB; sends never block and drop when the API lags."""
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, STATE_HWM)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 50)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
    sock.connect(state_endpoint(runtime_dir))
    return sock
