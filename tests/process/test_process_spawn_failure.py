"""A child that cannot even be started (issue 8 item 11) is a crash like any other: backoff, give-up,
visible in the status. Made to happen honestly: the server runs on an interpreter path that is
removed while it runs (an upgrade replacing the interpreter), so the next exec of a child fails.
With the worker template on, a worker is forked (no exec) while the template runs; once the template
is gone too (it cannot be started again either), workers are spawned, and fail the same way."""

from __future__ import annotations

import os
import re
import signal
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import REPO, IceyServer, cmdline, wait_for

FAST_GIVE_UP = {"supervisor": {"restartInitialMs": 100, "restartMaxMs": 200, "crashLoopLimit": 3,
                               "crashLoopWindowSec": 30, "heartbeatMs": 300}}
SOURCES = ["--source", "a=demo://testsrc2?size=160x90&rate=5", "--source", "b=demo://smptebars?size=160x90&rate=5"]


class RemovablePythonServer:
    def __init__(self, tmp_path: Path, zygote: bool = False) -> None:
        self.python = tmp_path / "bin" / "python3"
        self.python.parent.mkdir()
        self.python.symlink_to(os.path.realpath(sys.executable))
        workdir = tmp_path / "server"
        workdir.mkdir()
        # The interpreter outside its venv finds the project and its dependencies through PYTHONPATH.
        path = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])
        config = {"supervisor": {**FAST_GIVE_UP["supervisor"], "zygote": zygote}}
        self.server = IceyServer(workdir, ["--no-turn", *SOURCES], config, env={"PYTHONPATH": path})
        self.server.argv[0] = str(self.python)  # children are started with the supervisor's sys.executable

    def start_then_remove_python(self) -> IceyServer:
        self.server.start()
        self.server.wait_all_online()
        assert all(cmdline(pid).startswith(f"{self.python} ") for pid in self.server.children().values())
        self.python.unlink()
        return self.server


@pytest.fixture(params=[False, True], ids=["spawned", "zygote"])
def removable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RemovablePythonServer]:
    holder = RemovablePythonServer(tmp_path, zygote=request.param)
    yield holder
    holder.server.kill_all()


def test_worker_that_cannot_be_spawned_is_given_up_and_reported(removable):
    server = removable.start_then_remove_python()
    template = server.status()["processes"]["zygote"]
    if template is not None:  # the template cannot come back: the worker's next starts are spawns
        os.kill(template["pid"], signal.SIGKILL)
        wait_for(lambda: server.status()["processes"]["zygote"]["state"] != "running", 10, what="template down")
    os.kill(server.children()["worker:a"], signal.SIGKILL)
    item = server.wait_source("a", lambda s: s["worker"]["state"] == "given-up", timeout=20)
    assert item["state"] == "failed" and item["worker"]["pid"] is None
    assert item["worker"]["spawnError"].startswith("FileNotFoundError: ")
    assert item["worker"]["restarts"] == 2  # two starts tried after the kill, both failed
    assert server.proc.poll() is None  # the supervisor carries on
    assert server.source("b")["state"] == "online"  # and so do the other workers and the API
    ready = server.get("/api/ready")
    check = next(c for c in ready.json()["checks"] if c["name"] == "source:a")
    assert check["result"] == "fail" and "could not be started: FileNotFoundError" in check["detail"]
    stderr = server.stderr()
    assert "worker:a could not be started (FileNotFoundError" in stderr and "restarting in" in stderr
    assert "crash loop, giving up" in stderr
    if template is not None:
        assert "zygote could not be started (FileNotFoundError" in stderr
        assert re.search(r"no worker template is ready \(it is (restarting|given-up)\); spawning worker:a", stderr)


def test_api_that_cannot_be_spawned_stops_the_service(removable):
    server = removable.start_then_remove_python()
    os.kill(server.children()["api"], signal.SIGKILL)
    # Not a port bound forever with nobody answering: the API gives up and the service stops.
    assert wait_for(lambda: server.proc.poll() is not None, 20, what="the supervisor to exit")
    assert server.proc.returncode == 1
    stderr = server.stderr()
    assert "api could not be started (FileNotFoundError" in stderr
    assert "the API process keeps crashing; stopping the service" in stderr
