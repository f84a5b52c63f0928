"""Faults from outside: kill children, kill the supervisor, stop it; read what it reports."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from support.processes import alive, children_of, free_port, wait_for

FAST_RESTARTS = {"supervisor": {"restartInitialMs": 500, "restartMaxMs": 1000, "crashLoopLimit": 3,
                                "crashLoopWindowSec": 30, "heartbeatMs": 500}}


class HealthWatcher(threading.Thread):
    """Polls /api/health all along a fault; any non-200 or error is recorded."""

    def __init__(self, server) -> None:
        super().__init__(daemon=True)
        self.server, self.failures, self.count = server, [], 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                r = self.server.get("/api/health", timeout=5)
                if r.status != 200:
                    self.failures.append(r.status)
            except OSError as exc:
                self.failures.append(repr(exc))
            self.count += 1
            time.sleep(0.02)


def _demo(icey):
    server = icey(["--demo", "--no-turn"], config=FAST_RESTARTS)
    server.wait_all_online()
    return server


def test_killed_worker_restarts_alone(icey):
    server = _demo(icey)
    before = server.children()
    others_before = {sid: server.source(sid)["worker"]["pid"] for sid in ("demo-2", "demo-3")}
    watcher = HealthWatcher(server)
    watcher.start()
    os.kill(before["worker:demo-1"], signal.SIGKILL)
    backoff = wait_for(lambda: (w := server.source("demo-1")["worker"])["state"] == "restarting" and w, 5,
                       interval=0.01, what="restarting")
    assert 0 <= backoff["nextRestartInMs"] <= 500  # restartInitialMs of FAST_RESTARTS
    item = server.wait_source("demo-1", lambda s: s["worker"]["restarts"] == 1 and s["state"] == "online")
    watcher.stop.set()
    watcher.join()
    assert item["worker"]["pid"] != before["worker:demo-1"]
    assert item["worker"]["lastExitCode"] == 137
    assert watcher.failures == [] and watcher.count > 10
    for sid, pid in others_before.items():  # other sources unaffected
        other = server.source(sid)
        assert other["worker"]["pid"] == pid and other["worker"]["restarts"] == 0 and other["state"] == "online"
    assert server.children()["api"] == before["api"]
    assert "worker:demo-1 exited with code 137" in server.stderr()


def test_killed_api_comes_back_with_full_state(icey):
    server = _demo(icey)
    time.sleep(2.2)
    before = server.status()
    api_pid = server.children()["api"]
    os.kill(api_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # The port stays bound by the supervisor: requests queue and are answered once the API is back.
    r = server.get("/api/health", timeout=15)
    assert r.status == 200
    after = wait_for(lambda: (s := server.status()) and s["ready"] and
                     all(x["state"] == "online" for x in s["sources"]) and s, 10, what="full state")
    back_in = time.monotonic() - killed_at
    assert back_in < 8, back_in
    assert after["processes"]["api"]["pid"] != api_pid
    assert after["processes"]["api"]["restarts"] == 1
    # Service uptime survives the API restart (it is the supervisor's, not the API's).
    assert after["uptimeSec"] >= before["uptimeSec"]
    assert after["uptimeSec"] - before["uptimeSec"] <= int(back_in) + 2
    assert {s["worker"]["pid"] for s in after["sources"]} == {s["worker"]["pid"] for s in before["sources"]}


def test_crash_loop_gives_up(icey):
    server = _demo(icey)
    item = server.crash_until_given_up("demo-3")
    assert item["state"] == "failed" and item["worker"]["pid"] is None
    r = server.get("/api/ready")
    assert r.status == 200  # requireSources "any": one dead camera does not pull the box out
    assert r.json()["status"] == "degraded"
    check = next(c for c in r.json()["checks"] if c["name"] == "source:demo-3")
    assert check["result"] == "fail" and "gave up" in check["detail"]
    assert server.source("demo-1")["state"] == "online"
    assert server.get("/api/health").status == 200


def test_sigterm_stops_everything(icey):
    server = _demo(icey)
    children = list(server.children().values())
    assert len(children) == 4
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started < 10
    assert not [pid for pid in children if alive(pid)]
    assert "stopped" in server.stderr()
    errors = [line for line in server.stderr().splitlines() if " ERROR " in line]
    assert not errors, errors[:5]  # a clean stop logs no error (once: an unread CancelledError per worker)


def test_sighup_reloads_and_an_unchanged_config_touches_nothing(icey):
    """SIGHUP reloads the config: an unchanged one is a new generation that restarts nothing.
    Children, coturn too, never see the signal."""
    demo = "demo://testsrc2?size=160x120&rate=10"
    server = icey(["--source", f"s1={demo}", "--source", f"s2={demo}", "--turn-port", str(free_port())],
                  config=FAST_RESTARTS, env={"ICEY_TURN_SECRET": "sighup-turn-secret-0123"})
    status = wait_for(lambda: ((s := server.status())["processes"]["turn"] or {}).get("state") == "running"
                      and all(x["state"] == "online" for x in s["sources"]) and s, 20, what="online, turn up")
    turn_pid = status["processes"]["turn"]["pid"]
    children = server.children()
    runtime_dir = server.runtime_dir()
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config generation 2 applied (signal): added none, removed none, restarted none"
             in server.stderr(), 5, what="SIGHUP reload")
    time.sleep(1.0)  # anything SIGHUP killed is gone by now
    assert server.proc.poll() is None
    assert server.children() == children
    assert alive(turn_pid) and server.status()["processes"]["turn"]["pid"] == turn_pid
    assert server.get("/api/ready").status == 200
    assert server.status()["config"]["generation"] == 2 and server.status()["config"]["source"] == "signal"
    assert server.terminate() == 0
    assert not os.path.exists(runtime_dir)
    assert not [pid for pid in [*children.values(), turn_pid] if alive(pid)]


def test_sigkill_of_supervisor_leaves_no_orphans(icey):
    server = _demo(icey)
    children = list(server.children().values())
    grandchildren = [g for pid in children for g in children_of(pid)]
    argv = open(f"/proc/{server.children()['api']}/cmdline").read().split("\0")
    runtime_dir = argv[argv.index("--runtime-dir") + 1]
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: not [pid for pid in children + grandchildren if alive(pid)], 5, what="children to exit")
    assert os.path.isdir(runtime_dir)  # nobody was left to clean up...
    icey(["--demo", "--no-turn"])
    assert not os.path.exists(runtime_dir)  # ...until the next server started


def test_crashing_worker_traceback_reaches_the_log(icey, tmp_path):
    """A worker that dies on a Python exception: its traceback is in the supervisor's stderr,
    framed with the worker's role, and the worker is restarted."""
    server = _demo(icey)
    runtime_dirs = [p for p in os.listdir("/tmp") if re.fullmatch(r"icey-\d+-\w+", p)]
    assert runtime_dirs  # the private runtime dir exists...
    mine = [d for d in runtime_dirs if os.stat(f"/tmp/{d}").st_uid == os.getuid()]
    assert all(os.stat(f"/tmp/{d}").st_mode & 0o777 == 0o700 for d in mine)  # ...and is private
    pid = server.children()["worker:demo-2"]
    # Make the worker's settings unreadable for its next start: it crashes with a traceback.
    settings = next(f"/tmp/{d}/settings-worker-demo-2.json" for d in mine if os.path.exists(f"/tmp/{d}/ctl-1.sock")
                    and _owned_by(server, f"/tmp/{d}"))
    original = open(settings, "rb").read()
    open(settings, "wb").write(b"{garbage")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "Traceback" in server.stderr(), 10, what="traceback in log")
    open(settings, "wb").write(original)
    server.wait_source("demo-2", lambda s: s["state"] == "online", timeout=20)
    lines = [line for line in server.stderr().splitlines() if "Traceback" in line]
    assert lines and all("[worker:demo-2]" in line for line in lines)


def _owned_by(server, runtime_dir: str) -> bool:
    """The runtime dir that belongs to this server: its API was started with it."""
    api = server.children().get("api")
    return api is not None and runtime_dir in open(f"/proc/{api}/cmdline").read()


def test_silent_worker_is_detected(icey):
    server = _demo(icey)
    pid = server.children()["worker:demo-2"]
    os.kill(pid, signal.SIGSTOP)  # alive but silent: no heartbeat
    try:
        item = server.wait_source("demo-2", lambda s: s["worker"]["lastHeartbeatAgeMs"] > 1500, timeout=10)
        check = wait_for(lambda: next(c for c in server.get("/api/ready").json()["checks"]
                                      if c["name"] == "source:demo-2" and c["result"] == "warn"), 10,
                         what="silent warning")
        assert "silent" in check["detail"]
        assert item["worker"]["pid"] == pid
    finally:
        os.kill(pid, signal.SIGCONT)
    server.wait_source("demo-2", lambda s: s["worker"]["lastHeartbeatAgeMs"] < 1500)
