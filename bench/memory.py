#!/usr/bin/env python3
"""Memory per camera and start-up time of icey-server, workers spawned vs forked from the template
(a benchmark that prints figures, not a test).

For each source kind, camera count (default 1, 4, 16) and mode (`spawn`: `supervisor.zygote: false`,
every worker a fresh interpreter; `zygote`: the default, workers forked from the pre-imported template),
starts the real `icey-server` with that many sources, measures the time from starting it to every
source `online` in /api/status (polled every 25 ms), lets it settle, then reads PSS, RSS and private
dirty memory of every process of the tree (/proc/<pid>/smaps_rollup): supervisor, API, template, each
worker. PSS splits a shared page between the processes that map it, so the sum over the tree is what
the box really spends; the slope of that sum against the camera count is the memory of one more camera.

Kinds: `demo`, demo sources (`demo://<pattern>?size=1280x720&rate=30`, a different picture each),
which the worker encodes to H.264 + Opus itself (libx264 at 720p holds about 20 MB of its own per
source); `file`, one camera-like 720p30 H.264 Baseline MPEG-TS (bench/media_cpu/source.py, made with
ffmpeg) looped by every source and passed through as is: what a worker serving a real camera costs.

Goals (issue 13, printed as MET / NOT MET, not enforced): PSS per extra camera <= 15 MB (16 cameras,
720p), 16 cameras from start to all online < 1.5 s.

Run from the repository root:  .venv/bin/python bench/memory.py   (see bench/README.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from measure import HOST, children, demo_url, find_server, fmt, free_port, get_json, loadavg, stop
from media_cpu.source import make_source

MB = 1024 * 1024
PSS_GOAL_MB = 15.0
START_GOAL_SEC = 1.5
MODES = {"spawn": False, "zygote": True}  # mode -> supervisor.zygote


def memory(pid: int) -> dict[str, int] | None:
    """Pss, Rss and Private_Dirty of one process, in bytes (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        if name in ("Pss", "Rss", "Private_Dirty"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def roles(status: dict) -> dict[str, int]:
    """role -> pid of every process of the tree, from /api/status."""
    procs = status["processes"]
    found = {"supervisor": procs["supervisor"]["pid"], "api": procs["api"]["pid"]}
    if procs.get("zygote") and procs["zygote"]["pid"]:
        found["zygote"] = procs["zygote"]["pid"]
    for src in status["sources"]:
        if src["worker"]["pid"]:
            found[f"worker:{src['id']}"] = src["worker"]["pid"]
    return found


class Run:
    """One server: `cameras` sources of one kind (`file`: that file for each), the template on or off."""

    def __init__(self, args: argparse.Namespace, tmp: Path, kind: str, mode: str, cameras: int,
                 file: Path | None) -> None:
        self.kind, self.mode, self.cameras = kind, mode, cameras
        self.dir = tmp / f"{kind}-{mode}-{cameras}"
        self.dir.mkdir()
        self.port = free_port()
        query = f"size={args.size}&rate={args.rate}"
        urls = [str(file) if file else demo_url(i, f"{query}&tone={300 + 20 * i}") for i in range(cameras)]
        config = {"sources": [{"id": f"cam-{i + 1}", "source": url} for i, url in enumerate(urls)],
                  "stun": {"urls": []}, "supervisor": {"zygote": MODES[mode]}}
        (self.dir / "config.json").write_text(json.dumps(config))
        self.cmd = [find_server(args.server), "-c", str(self.dir / "config.json"), "--host", HOST,
                    "--port", str(self.port), "--no-turn", "--record-dir", str(self.dir / "recordings")]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
        self.start_sec: float | None = None
        self.usage: dict[str, dict[str, int]] = {}
        self.left: list[int] = []
        self.exit_code: int | None = None

    def measure(self, settle: float, timeout: float) -> None:
        log = (self.dir / "server.log").open("wb")
        started = time.monotonic()
        server = subprocess.Popen(self.cmd, cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log)
        try:
            while True:
                status = get_json(self.port, "/api/status", timeout=1.0)
                if status and len(status["sources"]) == self.cameras and all(
                        s["state"] == "online" for s in status["sources"]):
                    self.start_sec = time.monotonic() - started
                    break
                if time.monotonic() - started > timeout or server.poll() is not None:
                    raise SystemExit(f"{self.mode}, {self.cameras} cameras: not all online; see {self.dir}/server.log")
                time.sleep(0.025)
            time.sleep(settle)
            status = get_json(self.port, "/api/status", timeout=5.0)
            assert status is not None, "no /api/status after settling"
            tree = roles(status)
            others = set(children(server.pid)) - set(tree.values())
            tree.update({f"other:{pid}": pid for pid in others})
            self.usage = {role: usage for role, pid in tree.items() if (usage := memory(pid)) is not None}
        finally:
            pids = list(children(server.pid))
            self.exit_code = stop(server, 30)
            self.left = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]

    def total(self, key: str = "Pss") -> int:
        return sum(usage[key] for usage in self.usage.values())

    def workers(self, key: str) -> list[int]:
        return [usage[key] for role, usage in self.usage.items() if role.startswith("worker:")]


def mb(value: float | None) -> str:
    return fmt(None if value is None else value / MB, ".1f")


def report(kind: str, runs: list[Run]) -> None:
    print(f"\n=== {kind} sources: per process (MB: PSS / RSS / private dirty), settled; load {loadavg()}")
    for run in runs:
        print(f"  {run.mode} {run.cameras} camera(s): start to all online {fmt(run.start_sec, '.2f')} s, "
              f"exit {run.exit_code}, processes left {len(run.left)}")
        for role, usage in run.usage.items():
            if not role.startswith("worker:") or run.cameras <= 4:
                print(f"    {role:<14} {mb(usage['Pss']):>7} {mb(usage['Rss']):>7} {mb(usage['Private_Dirty']):>7}")
        if run.cameras > 4:
            pss, rss, dirty = run.workers("Pss"), run.workers("Rss"), run.workers("Private_Dirty")
            print(f"    {len(pss)} workers, mean {mb(sum(pss) / len(pss)):>7} {mb(sum(rss) / len(rss)):>7} "
                  f"{mb(sum(dirty) / len(dirty)):>7}   (PSS min {mb(min(pss))}, max {mb(max(pss))})")
    print(f"\n| {kind} | cameras | start to all online s | tree PSS MB | worker PSS mean | worker private dirty mean |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        pss, dirty = run.workers("Pss"), run.workers("Private_Dirty")
        print(f"| {run.mode} | {run.cameras} | {fmt(run.start_sec, '.2f')} | {mb(run.total())} | "
              f"{mb(sum(pss) / len(pss))} | {mb(sum(dirty) / len(dirty))} |")
    print(f"\n{kind}: PSS per extra camera (slope of the tree's PSS), MB:")
    by_mode: dict[str, list[Run]] = {}
    for run in runs:
        by_mode.setdefault(run.mode, []).append(run)
    slopes = {}
    for mode, mode_runs in by_mode.items():
        mode_runs.sort(key=lambda r: r.cameras)
        steps = [f"{a.cameras}->{b.cameras}: {mb((b.total() - a.total()) / (b.cameras - a.cameras))}"
                 for a, b in zip(mode_runs, mode_runs[1:], strict=False)]
        first, last = mode_runs[0], mode_runs[-1]
        if last.cameras > first.cameras:
            slopes[mode] = (last.total() - first.total()) / (last.cameras - first.cameras) / MB
        print(f"  {mode:<7} {first.cameras}->{last.cameras}: {fmt(slopes.get(mode), '.1f')}   ({', '.join(steps)})")
    if "zygote" in by_mode:
        largest = by_mode["zygote"][-1]
        slope = slopes.get("zygote")
        print(f"{kind}, zygote: PSS per extra camera <= {PSS_GOAL_MB:g} MB: "
              f"{'MET' if slope is not None and slope <= PSS_GOAL_MB else 'NOT MET'} ({fmt(slope, '.1f')}); "
              f"{largest.cameras} cameras start to all online < {START_GOAL_SEC:g} s: "
              f"{'MET' if largest.start_sec is not None and largest.start_sec < START_GOAL_SEC else 'NOT MET'} "
              f"({fmt(largest.start_sec, '.2f')} s)")
        if "spawn" in slopes and slope is not None:
            print(f"{kind}: zygote / spawn PSS per extra camera: {slope / slopes['spawn']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="1,4,16", help="camera counts, comma-separated")
    parser.add_argument("--modes", default="spawn,zygote", help="spawn, zygote or both (comma-separated)")
    parser.add_argument("--kinds", default="demo,file", help="demo, file or both (comma-separated)")
    parser.add_argument("--size", default="1280x720", help="demo picture size")
    parser.add_argument("--rate", type=int, default=30, help="demo frame rate")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after all online, before reading memory")
    parser.add_argument("--timeout", type=float, default=90.0, help="give up when not all online by then")
    parser.add_argument("--server", help="icey-server executable")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, server logs)")
    args = parser.parse_args()
    counts = [int(n) for n in args.cameras.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    kinds = [k for k in args.kinds.split(",") if k]
    if not set(modes) <= set(MODES) or not set(kinds) <= {"demo", "file"}:
        raise SystemExit("--modes takes spawn and/or zygote, --kinds demo and/or file")
    tmp = Path(tempfile.mkdtemp(prefix="icey-bench-memory-"))
    try:
        file = None
        if "file" in kinds:
            file = tmp / "camera.ts"
            make_source(file, 20)
        for kind in kinds:
            runs = []
            for cameras in counts:  # both modes at each count, one after the other: a drift in load hits both
                for mode in modes:
                    run = Run(args, tmp, kind, mode, cameras, file if kind == "file" else None)
                    print(f"{kind}, {mode}, {cameras} camera(s) ...", flush=True)
                    run.measure(args.settle, args.timeout)
                    runs.append(run)
            report(kind, runs)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
