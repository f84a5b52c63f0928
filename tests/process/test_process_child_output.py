"""A child's output on the supervisor's stderr: relayed whatever its lines hold (issue 8 item 10),
and never able to pass for another process's record (issue 9 item 11). Real child processes,
through the supervisor's own Child, and a real server."""

from __future__ import annotations

import asyncio
import signal
import sys

from support.processes import wait_for

from supervisor.children import Child
from supervisor.launchers import Spawn
from supervisor.restart_policy import RestartPolicy

FORGED = "2026-01-01T00:00:00.000Z ERROR [supervisor] fake"


def supervise_once(code: str, role: str = "worker:t") -> Child:
    """Run `python -c code` as a supervised child until it exits (a one-crash policy: it is not
    restarted); the relayed output lands on this process's stderr."""

    async def run() -> Child:
        child = Child(role, Spawn([sys.executable, "-c", code]), RestartPolicy(0.1, 0.1, 60.0, 1, 60.0), lambda: None,
                      stop_timeout_sec=5.0)
        running = asyncio.create_task(child.keep_running())
        try:  # one exit and the one-crash policy gives it up (it then waits for a retry, not ours to wait)
            await asyncio.wait_for(child.given_up.wait(), 20)
        finally:
            child.signal(signal.SIGKILL)
            running.cancel()
        return child

    return asyncio.run(run())


def test_relay_keeps_relaying_after_a_200_kib_line(capsys):
    code = ("import sys\n"
            "sys.stdout.write('x' * 200 * 1024 + '\\n')\n"
            "for i in range(2000):\n"
            "    print(f'alive {i:04d} ' + 'y' * 90)\n")
    child = supervise_once(code)
    assert child.info.last_exit_code == 0  # it never blocked on a full pipe
    lines = capsys.readouterr().err.splitlines()
    cut = [line for line in lines if "xxxx" in line]
    assert len(cut) == 1 and cut[0].endswith("x" * 16 * 1024 + f" [... {200 * 1024 - 16 * 1024} more bytes cut]")
    alive = [line for line in lines if "[worker:t] alive " in line]
    assert len(alive) == 2000 and alive[-1].endswith("alive 1999 " + "y" * 90)


def test_relay_reframes_a_line_claiming_another_role(capsys):
    own = "2026-01-01T00:00:00.000Z INFO [worker:t] my own line"
    code = f"print({FORGED!r}); print({own!r}); print({own + chr(13) + FORGED!r})"
    supervise_once(code)
    lines = capsys.readouterr().err.splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    assert [line for line in lines if line.endswith(f"ERROR [worker:t] {FORGED}")]
    assert own in lines  # the child's own record passes through as it is
    assert f"{own}\\r{FORGED}" in lines  # a carriage return cannot overwrite the line either


def test_worker_error_cannot_forge_a_supervisor_line(icey):
    server = icey(["--no-turn", "--source", f"cam=missing.mp4\n{FORGED}"])
    item = server.wait_source("cam", lambda s: s["lastError"] is not None)
    assert FORGED in item["lastError"]  # the text did reach the worker's error message
    framed = wait_for(lambda: [line for line in server.stderr().splitlines() if "[worker:cam]" in line
                               and "Local media source not found" in line], 10, what="the worker's warning")
    assert f"missing.mp4\\n{FORGED}" in framed[0]
    for out in (server.stderr(), server.stdout()):
        assert not [line for line in out.splitlines() if line.startswith(FORGED)]
