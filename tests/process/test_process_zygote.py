"""Workers forked from the worker template (`supervisor.zygote`, on by default) keep every
guarantee of spawned ones: their own process and session, their own log role, their real exit
status, a restart after a crash, death with the supervisor; and the template's death touches no
worker. A forked worker is told from a spawned one by the memory it shares with the template
(Shared_Dirty: the template's pages it has not written; a spawned worker shares none)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from support.processes import alive, children_of, cmdline, wait_for

SMALL_DEMO = "demo://testsrc2?size=160x120&rate=10"  # cheap to encode: these tests are about processes
FAST = {"restartInitialMs": 300, "restartMaxMs": 600, "crashLoopLimit": 3, "crashLoopWindowSec": 60,
        "heartbeatMs": 500, "givenUpRetrySec": 0}
FORKED_SHARED_KB = 8 * 1024  # a forked worker shares ~30 MB with the template; a spawned one 0


def start(icey, ids: tuple[str, ...], supervisor: dict | None = None):
    args = [arg for source_id in ids for arg in ("--source", f"{source_id}={SMALL_DEMO}")]
    server = icey([*args, "--no-turn"], config={"supervisor": {**FAST, **(supervisor or {})}})
    server.wait_all_online(timeout=30)
    return server


def shared_dirty_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Shared_Dirty:"):
            return int(line.split()[1])
    raise AssertionError(f"no Shared_Dirty for {pid}")


def stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the comm field: [1] ppid, [2] pgrp, [3] session."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def pipes_and_sockets(pid: int) -> set[str]:
    """What the process's descriptors that are pipes or sockets point at (`pipe:[inode]`, ...)."""
    links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    return {link for link in links if link.startswith(("pipe:", "socket:"))}


def template_pid(server) -> int:
    template = server.status()["processes"]["zygote"]
    assert template is not None and template["state"] == "running", template
    return template["pid"]


def worker_pid(server, source_id: str) -> int:
    return server.source(source_id)["worker"]["pid"]


def test_forked_workers_are_processes_of_their_own(icey):
    server = start(icey, ("a", "b"))
    template = template_pid(server)
    assert "-m workers.zygote" in cmdline(template)
    for source_id in ("a", "b"):
        pid = worker_pid(server, source_id)
        assert pid != template
        _, ppid, pgrp, session = stat(pid)[:4]
        assert int(ppid) == server.proc.pid  # re-parented to the supervisor, which waits for it
        assert int(pgrp) == int(session) == pid  # its own session and process group, as a spawned worker
        assert int(pgrp) != int(stat(template)[2])
        argv = cmdline(pid).split()
        assert argv[1:3] == ["-m", "workers"] and argv[argv.index("--source-id") + 1] == source_id
        assert shared_dirty_kb(pid) > FORKED_SHARED_KB  # forked: the template's memory is shared
        # nothing of the template's own: not its connection to the supervisor, not its output pipe
        assert not pipes_and_sockets(pid) & pipes_and_sockets(template)
    # each worker logs under its own role (the output pipe it was handed), never the template's
    stderr = server.stderr()
    assert "[worker:a] source online" in stderr and "[worker:b] source online" in stderr
    assert "[zygote] ready in" in stderr
    assert not [line for line in stderr.splitlines() if "[zygote]" in line and "source online" in line]
    assert "spawning" not in stderr


def test_killed_forked_worker_exits_137_and_is_forked_again(icey):
    server = start(icey, ("a", "b"))
    first, other = worker_pid(server, "a"), worker_pid(server, "b")
    os.kill(first, signal.SIGKILL)
    item = server.wait_source("a", lambda s: s["worker"]["restarts"] == 1 and s["state"] == "online")
    assert item["worker"]["lastExitCode"] == 137
    assert "worker:a exited with code 137; restarting in" in server.stderr()
    second = item["worker"]["pid"]
    assert second != first and shared_dirty_kb(second) > FORKED_SHARED_KB
    assert worker_pid(server, "b") == other and server.source("b")["worker"]["restarts"] == 0
    assert not alive(first)  # reaped by the supervisor, not left a zombie


def test_killed_template_comes_back_and_workers_keep_serving(icey):
    server = start(icey, ("a", "b"))
    template = template_pid(server)
    workers = {sid: worker_pid(server, sid) for sid in ("a", "b")}
    os.kill(template, signal.SIGKILL)
    status = wait_for(lambda: (st := server.status())["processes"]["zygote"]["restarts"] == 1
                      and st["processes"]["zygote"]["state"] == "running" and st, 20, what="template back")
    assert status["processes"]["zygote"]["pid"] != template
    assert "zygote exited with code 137; restarting in" in server.stderr()
    for sid, pid in workers.items():  # untouched: same process, still online, still answering
        item = server.source(sid)
        assert item["worker"]["pid"] == pid and item["worker"]["restarts"] == 0 and item["state"] == "online"
        assert server.get(f"/api/sources/{sid}/probe").status == 200
    # a later restart is forked from the new template
    wait_for(lambda: "[zygote] ready in" in server.stderr().split("zygote exited with code 137", 1)[1], 20,
             what="the new template ready")
    assert server.request("POST", "/api/sources/a/restart").status == 202
    item = server.wait_source("a", lambda s: s["worker"]["pid"] not in (None, workers["a"]) and s["state"] == "online")
    assert shared_dirty_kb(item["worker"]["pid"]) > FORKED_SHARED_KB
    assert "spawning" not in server.stderr()


def test_worker_is_spawned_while_the_template_is_given_up(icey):
    server = start(icey, ("a",), {"crashLoopLimit": 1})
    os.kill(template_pid(server), signal.SIGKILL)
    wait_for(lambda: server.status()["processes"]["zygote"]["state"] == "given-up", 10, what="template given up")
    old = worker_pid(server, "a")
    assert server.request("POST", "/api/sources/a/restart").status == 202
    item = server.wait_source("a", lambda s: s["worker"]["pid"] not in (None, old) and s["state"] == "online")
    assert shared_dirty_kb(item["worker"]["pid"]) < FORKED_SHARED_KB  # a fresh interpreter
    assert "no worker template is ready (it is given-up); spawning worker:a" in server.stderr()


def test_sigkill_of_supervisor_leaves_no_process(icey):
    server = start(icey, ("a", "b"))
    tree = children_of(server.proc.pid)
    assert template_pid(server) in tree and worker_pid(server, "a") in tree and len(tree) == 4
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: not [pid for pid in tree if alive(pid)], 10, what="every child to exit")
