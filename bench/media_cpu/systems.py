"""The two systems that run on loopback, each measured with its viewers: icey-server itself and the per-viewer
re-encode baseline (Janus needs a network namespace: janus.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from measure import HOST, children, cpu_seconds, free_port, get_json

from media_cpu.measurement import FIXED_MIN_WINDOW_SEC, Target, count_log_errors, late_joiners, measure_counts
from media_cpu.processes import self_command, spawn, stop_proc

SOURCE_ID = "cam"
IDLE_ID = "idle"  # the idle server's one source: record mode, no publisher (a server needs a source)


def start_icey(tmp: Path, name: str, config: dict, extra: list[str]) -> tuple[subprocess.Popen, int]:
    """The real `icey-server` on 127.0.0.1 (a free port) with `config` and flags `extra`, its log
    in tmp/<name>.log; returns the process and its port."""
    port = free_port()
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps({"webrtc": {"hostAddresses": [HOST]}, **config}))
    server_bin = str(Path(sys.executable).parent / "icey-server")
    if not os.path.exists(server_bin):
        server_bin = shutil.which("icey-server") or "icey-server"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    cmd = [server_bin, *extra, "--no-turn", "-c", str(cfg), "--host", HOST, "--port", str(port),
           "--record-dir", str(tmp / f"{name}-rec"), "--web-root", str(tmp / "web")]
    return spawn(cmd, tmp / f"{name}.log", cwd=tmp, env=env), port


def wait_source(server: subprocess.Popen, port: int, source_id: str, states: set[str], timeout: float,
                log: Path) -> None:
    end = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"icey-server exited with code {server.returncode} (log: {log})")
        doc = get_json(port, f"/api/sources/{source_id}")
        if doc and doc.get("state") in states:
            return
        if time.monotonic() > end:
            raise RuntimeError(f"icey source {source_id} never became {'/'.join(sorted(states))}")
        time.sleep(0.2)


def tree_pids(root: int) -> list[int]:
    """`root` and every process below it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children(pid))
    return found


def tree_cores(root: int, seconds: float) -> float:
    """CPU of `root`'s whole process tree over `seconds`, in cores (processes alive at both ends)."""
    pids = tree_pids(root)
    c0, t0 = {p: cpu_seconds(p) for p in pids}, time.monotonic()
    time.sleep(seconds)
    c1, t1 = {p: cpu_seconds(p) for p in pids}, time.monotonic()
    return sum(c1[p] - c0[p] for p in pids if c0[p] is not None and c1[p] is not None) / (t1 - t0)


def idle_icey_cores(args, tmp: Path) -> float:
    """An idle server's whole tree (supervisor, API and one worker waiting for a WHIP publisher
    that never comes): what a camera's fixed cost is counted on top of."""
    server, port = start_icey(tmp, "icey-idle", {"sources": [{"id": IDLE_ID, "mode": "record"}]}, [])
    try:
        wait_source(server, port, IDLE_ID, {"offline"}, 30, tmp / "icey-idle.log")
        time.sleep(1.0 + args.settle)
        cores = tree_cores(server.pid, max(args.window, FIXED_MIN_WINDOW_SEC))
        print(f"  [icey] idle server (no camera): {cores:.4f} cores", flush=True)
        return cores
    finally:
        stop_proc(server, timeout=10.0)


def run_icey(args, src: Path, tmp: Path) -> dict:
    idle = idle_icey_cores(args, tmp)
    server, port = start_icey(tmp, "icey", {}, ["--source", f"{SOURCE_ID}={src}"])
    base = f"http://{HOST}:{port}"
    try:
        wait_source(server, port, SOURCE_ID, {"online"}, 30, tmp / "icey.log")
        kids = children(server.pid)
        worker = next(pid for pid, cmd in kids.items() if f"--source-id {SOURCE_ID}" in cmd)
        api = next(pid for pid, cmd in kids.items() if " -m api " in f"{cmd} ")

        def drain() -> None:
            end = time.monotonic() + 10
            while time.monotonic() < end:
                doc = get_json(port, f"/api/sources/{SOURCE_ID}/sessions")
                if doc is not None and doc.get("itemCount") == 0:
                    break
                time.sleep(0.2)
            time.sleep(0.5)

        time.sleep(1.0)
        target = Target("icey", {"worker": worker, "api": api, "supervisor": server.pid},
                        {"system": "whep", "url": f"{base}/api/sources/{SOURCE_ID}/whep", "host": HOST}, [], drain)
        rows = measure_counts(target, [0, *args.counts], args, tmp)
        late = late_joiners(target, args, tmp) if args.late else None
        status = get_json(port, f"/api/sources/{SOURCE_ID}") or {}
        return {"rows": rows, "late": late, "headline": "worker", "media": status.get("media"), "idle_tree": idle,
                "log_errors": count_log_errors(tmp / "icey.log")}
    finally:
        code = stop_proc(server, timeout=10.0)
        print(f"  [icey] stopped, exit code {code}", flush=True)


def run_reencode(args, src: Path, tmp: Path) -> dict:
    port = free_port()
    server = spawn(self_command("--serve-reencode", str(port), str(src)), tmp / "reencode.log", cwd=tmp)
    base = f"http://{HOST}:{port}"
    try:
        end = time.monotonic() + 20
        while get_json(port, "/stats") is None:
            if server.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"re-encode server did not start (log: {tmp / 'reencode.log'})")
            time.sleep(0.2)

        def drain() -> None:
            end = time.monotonic() + 10
            while time.monotonic() < end and (get_json(port, "/stats") or {}).get("pcs", 0) > 0:
                time.sleep(0.2)
            time.sleep(0.5)

        target = Target("reencode", {"server": server.pid},
                        {"system": "whep", "url": f"{base}/whep", "host": HOST}, [], drain)
        rows = measure_counts(target, [0, *args.reencode_counts], args, tmp)
        late = late_joiners(target, args, tmp) if args.late and not args.no_reencode_late else None
        return {"rows": rows, "late": late, "headline": "server", "log_errors": count_log_errors(tmp / "reencode.log")}
    finally:
        stop_proc(server, timeout=10.0)
        print("  [reencode] stopped", flush=True)
