"""Start real processes for tests and look at them from outside (/proc, HTTP, their output)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-gi is built for it, not for the venv


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, ValueError, KeyError):
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
                what: str = "condition") -> Any:
    """`wait_for` for async tests: the predicate (blocking HTTP) runs in a thread, so the event
    loop keeps serving the test's own peer connections meanwhile."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = await asyncio.to_thread(predicate)
        except (OSError, ValueError, KeyError):
            result = None
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each of `pids` that still exists: the last resort of a cleanup."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None,
         timeout: float = 5.0) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


class IceyServer:
    """A real `icey-server` started as a subprocess on free ports."""

    def __init__(self, workdir: Path, args: list[str], config: dict | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stdout_path = workdir / "server.stdout"
        self.stderr_path = workdir / "server.stderr"
        argv = [sys.executable, "-m", "supervisor", "--host", "127.0.0.1", "--port", str(self.port)]
        if config is not None:
            cfg_path = workdir / "config.json"
            cfg_path.write_text(json.dumps(config))
            argv += ["-c", str(cfg_path)]
        self.argv = argv + args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None

    def start(self) -> IceyServer:
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.stdout_path.open("wb"), stderr=self.stderr_path.open("wb"))
        wait_for(lambda: self.get("/api/health").status == 200 or self.proc.poll() is not None, 30,
                 what="/api/health")
        assert self.proc.poll() is None, f"server exited {self.proc.returncode}: {self.stderr()}"
        return self

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> Response:
        return http("GET", self.base + path, headers, timeout=timeout)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Response:
        return http(method, self.base + path, headers, body)

    def status(self, headers: dict[str, str] | None = None) -> dict:
        r = self.get("/api/status", headers)
        assert r.status == 200, r.body
        return r.json()

    def source(self, source_id: str, headers: dict[str, str] | None = None) -> dict:
        r = self.get(f"/api/sources/{source_id}", headers)
        assert r.status == 200, r.body
        return r.json()

    def wait_source(self, source_id: str, predicate: Callable[[dict], bool], timeout: float = 20.0,
                    headers: dict[str, str] | None = None) -> dict:
        return wait_for(lambda: (s := self.source(source_id, headers)) and predicate(s) and s, timeout,
                        what=f"source {source_id}")

    def wait_all_online(self, timeout: float = 20.0) -> None:
        """Until the runtime is running and every source is online."""
        wait_for(lambda: (st := self.status())["runtime"]["state"] == "running"
                 and all(s["state"] == "online" for s in st["sources"]), timeout, what="every source online")

    def children(self) -> dict[str, int]:
        """role -> pid, from the children's command lines (`-m api`, `-m workers ... --source-id X`)."""
        assert self.proc is not None
        roles = {}
        for pid in children_of(self.proc.pid):
            argv = cmdline(pid).split()
            if "api" in argv and "-m" in argv:
                roles["api"] = pid
            elif "--source-id" in argv:
                roles[f"worker:{argv[argv.index('--source-id') + 1]}"] = pid
        return roles

    def crash_until_given_up(self, source_id: str, timeout: float = 10.0) -> dict:
        """SIGKILL the source's worker, and each respawn, until the supervisor gives it up (after
        `crashLoopLimit` deaths); returns the source item then."""
        role = f"worker:{source_id}"
        while self.source(source_id)["worker"]["state"] != "given-up":
            pid = wait_for(lambda: self.children().get(role), timeout, what=f"{role} running")
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda p=pid: self.children().get(role) not in (None, p)
                     or self.source(source_id)["worker"]["state"] == "given-up", timeout, what="respawn or give up")
        return self.source(source_id)

    def runtime_dir(self) -> str:
        """The private runtime dir, from the API's command line."""
        argv = cmdline(self.children()["api"]).split()
        return argv[argv.index("--runtime-dir") + 1]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill_all(self) -> None:
        """Last-resort cleanup so a failing test never leaks processes."""
        if self.proc is None:
            return
        pids = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        kill_pids(pids)


class RtspCamera:
    """GStreamer's RTSP server as a camera; `stop()` and `start()` simulate a camera dropping."""

    def __init__(self, port: int | None = None, audio: str = "opus", path: str = "/cam") -> None:
        self.port = port or free_port()
        self.audio = audio
        self.path = path
        self.url = f"rtsp://127.0.0.1:{self.port}{path}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RtspCamera:
        script = REPO / "tests" / "support" / "rtsp_camera.py"
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(script), "--port", str(self.port), "--path", self.path,
                                      "--audio", self.audio], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("READY"), f"camera failed: {line} {self.proc.stderr.read().decode()}"
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
