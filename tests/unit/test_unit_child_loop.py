"""Issue 13: a child runs on uvloop unless it asks for the stdlib loop, and SIGTERM still stops
it cleanly there (uvloop has its own signal handling)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, sys
from protocol.child import run_child

async def main():
    loop = asyncio.get_running_loop()
    print(type(loop).__module__ + "." + type(loop).__name__, flush=True)
    if sys.argv[1] == "wait":
        await asyncio.Event().wait()
    return 3

factory = asyncio.new_event_loop if sys.argv[2] == "stdlib" else None
run_child("test-child", "info", main, **({"loop_factory": factory} if factory else {}))
"""


def _child(mode: str, loop: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, loop], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_child_runs_on_uvloop_and_exits_with_what_main_returns():
    proc = _child("return", "default")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert out.strip() == "uvloop.Loop"


def test_a_child_can_ask_for_the_stdlib_loop():
    proc = _child("return", "stdlib")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert out.strip().startswith("asyncio.")


def test_sigterm_stops_a_child_on_uvloop_with_code_0():
    proc = _child("wait", "default")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "uvloop.Loop"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
