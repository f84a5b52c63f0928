#!/usr/bin/env python3
"""Capacity benchmark: how many 720p30 ~2 Mbit/s H.264 cameras with continuous recording one box holds
(a benchmark that prints figures, not a test).

Starts the real `icey-server` with `--step` cameras (looped file sources, every one recording), then adds
`--step` more at a time through the live config API (POST /api/config/sources) until a camera is no longer
read at full rate (fewer than --min-fps frames per wall-clock second) or /api/health p99, measured by a
client in a separate process, exceeds --health-p99-ms; or until --max cameras or --time-limit. Prints every
step and the last good count with the CPU and memory at that point.

Run from the repository root:  .venv/bin/python bench/capacity.py   (see bench/README.md)
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from api_load import KeepAlive
from measure import HOST, cmdline, cpu_seconds, fmt, get_json, machine_busy, percentile
from media_cpu.processes import stop_all, stop_proc
from media_cpu.source import make_source, probe_source
from media_cpu.systems import start_icey, tree_pids, wait_source

ONLINE_TIMEOUT_SEC = 60.0
SEGMENT_SECONDS = 10
RETENTION_MB = 128  # per camera: a long run must not fill the disk


# ---------------------------------------------------------------------------------------------------------
# the health client (its own process, so it never shares a GIL with the orchestrator)


def client_main(port: int, seconds: float, rate: float) -> None:
    """`rate` requests a second on one keep-alive connection (a health checker, not a load test: back
    to back, the client and the API would take a core the cameras need); latency in ms."""
    client = KeepAlive(port)
    client.get("/api/health")  # warm-up: connect time is not measured
    lat: list[float] = []
    errors = 0
    start = time.perf_counter()
    for i in range(int(seconds * rate)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        try:
            status, _ = client.get("/api/health")
        except (OSError, http.client.HTTPException):
            errors += 1
            continue
        lat.append((time.perf_counter() - t0) * 1000)
        errors += status != 200
    client.close()
    print(json.dumps({"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": max(lat, default=math.nan),
                      "requests": len(lat), "errors": errors}), flush=True)


# ---------------------------------------------------------------------------------------------------------
# orchestrator


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of the processes together (shared pages split between sharers), MB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


def post_json(port: int, path: str, body: dict) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", "Host": HOST})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def packets(port: int, ids: list[str]) -> dict[str, int | None]:
    """Packets each camera's reader has handed on so far (its probe)."""
    out: dict[str, int | None] = {}
    for sid in ids:
        doc = get_json(port, f"/api/sources/{sid}/probe", timeout=5.0)
        out[sid] = doc.get("packets") if doc else None
    return out


def measure_step(args, server: subprocess.Popen, port: int, ids: list[str], tmp: Path) -> dict:
    """One step at the current camera count: the rate each worker read at over settle + window
    (long enough that a reader nobody watches, which hands packets over a quarter second at a time,
    reads as 30 within about half a frame per second), and over the window health latency from a
    separate client, CPU of the whole server tree and of the machine, memory."""
    p0, t_p0 = packets(port, ids), time.monotonic()
    time.sleep(args.settle)
    pids = tree_pids(server.pid)
    c0, h0, t0 = {p: cpu_seconds(p) for p in pids}, machine_busy(), time.monotonic()
    client = subprocess.run([sys.executable, __file__, "--client", str(port), str(args.window),
                             str(args.health_rate)], cwd=tmp,
                            capture_output=True, text=True, timeout=args.window + 60)
    c1, h1, t1 = {p: cpu_seconds(p) for p in pids}, machine_busy(), time.monotonic()
    p1, t_p1 = packets(port, ids), time.monotonic()
    if client.returncode != 0:
        raise RuntimeError(f"health client failed: {client.stderr[-500:]}")
    health = json.loads(client.stdout.strip().splitlines()[-1])
    rates = [(p1[s] - p0[s]) / (t_p1 - t_p0) for s in ids if p0.get(s) is not None and p1.get(s) is not None]
    status = get_json(port, "/api/status", timeout=5.0) or {}
    reported = [((s.get("media") or {}).get("video") or {}).get("fps") or 0.0
                for s in status.get("sources", []) if s.get("id") in ids]
    workers = [p for p in pids if " -m workers " in f"{cmdline(p)} "]

    def cores_of(group: list[int]) -> float:
        return sum(c1[p] - c0[p] for p in group if c0[p] is not None and c1[p] is not None) / (t1 - t0)

    cores = cores_of(pids)
    return {"cameras": len(ids), "rates": rates, "missing": len(ids) - len(rates), "reported": reported,
            "health": health, "cores": cores, "worker_cores": cores_of(workers), "machine": (h1[0] - h0[0]) / (t1 - t0),
            "pss": pss_mb(pids), "processes": len(pids),
            "online": sum(s.get("state") == "online" for s in status.get("sources", []) if s.get("id") in ids)}


def verdict(args, step: dict) -> str:
    """Empty when the step holds; else why not."""
    why = []
    if step["missing"] or step["online"] < step["cameras"]:
        why.append(f"{step['cameras'] - step['online']} not online, {step['missing']} without a probe")
    if step["rates"] and min(step["rates"]) < args.min_fps:
        why.append(f"a camera read at {min(step['rates']):.1f} fps")
    p99 = step["health"]["p99"]
    if math.isnan(p99) or p99 > args.health_p99_ms or step["health"]["errors"]:
        why.append(f"health p99 {fmt(p99, '.2f')} ms, {step['health']['errors']} errors")
    return "; ".join(why)


def orchestrate(args) -> int:
    t_begin = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="icey-capacity-"))
    server = None
    steps: list[dict] = []
    stopped_because = ""
    try:
        src = args.source
        if src is None:
            src = tmp / "cam720.ts"
            print(f"generating {src} ({args.source_seconds} s 720p30 H.264 Baseline, ~2 Mbit/s) ...", flush=True)
            make_source(src, args.source_seconds)
        src = src.resolve()
        print(f"source: {probe_source(src)}", flush=True)
        record = {"enabled": True, "segmentSeconds": SEGMENT_SECONDS, "retention": {"maxTotalMb": RETENTION_MB}}

        def entry(i: int) -> dict:
            return {"id": f"cam-{i + 1}", "source": str(src)}

        first = [entry(i) for i in range(min(args.step, args.max))]
        server, port = start_icey(tmp, "capacity", {"media": {"record": record}, "sources": first}, [])
        ids = [e["id"] for e in first]
        while True:
            t_add = time.monotonic()
            for sid in ids:
                wait_source(server, port, sid, {"online"}, ONLINE_TIMEOUT_SEC, tmp / "capacity.log")
            online_s = time.monotonic() - t_add
            step = measure_step(args, server, port, ids, tmp)
            step["online_s"] = online_s
            step["why"] = verdict(args, step)
            steps.append(step)
            rates, h = step["rates"], step["health"]
            print(f"  {len(ids):>3} cameras: {step['cores']:.2f} cores (machine {step['machine']:.2f}), "
                  f"read fps min {fmt(min(rates, default=math.nan), '.1f')}, health p99 {fmt(h['p99'], '.2f')} ms, "
                  f"PSS {step['pss']:.0f} MB{'  -> ' + step['why'] if step['why'] else ''}", flush=True)
            if step["why"]:
                stopped_because = step["why"]
                break
            if len(ids) >= args.max:
                stopped_because = f"--max {args.max} reached"
                break
            if time.monotonic() - t_begin > args.time_limit:
                stopped_because = f"--time-limit {args.time_limit:.0f} s reached"
                break
            added = [entry(i) for i in range(len(ids), min(len(ids) + args.step, args.max))]
            t_add = time.monotonic()
            for e in added:
                code = post_json(port, "/api/config/sources", e)
                if code != 200:
                    raise RuntimeError(f"POST /api/config/sources {e['id']} answered {code}")
            ids += [e["id"] for e in added]
        print_report(args, steps, stopped_because, time.monotonic() - t_begin)
        code = stop_proc(server, timeout=30.0)
        server = None
        print(f"server stopped with SIGTERM: exit code {code}")
        if args.keep:
            print(f"kept: {tmp}")
        return 0
    finally:
        if server is not None:
            stop_proc(server, timeout=30.0)
        stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def print_report(args, steps: list[dict], stopped_because: str, total: float) -> None:
    w = print
    w("")
    w(f"Capacity: 720p30 ~2 Mbit/s H.264 cameras (looped file), continuous recording on, no viewers; "
      f"+{args.step} a step; window {args.window:.0f} s after {args.settle:.0f} s settle")
    head = (f"{'cameras':>8}{'online s':>9}{'cores':>7}{'workers/cam':>12}{'machine':>8}{'read fps min/p50':>18}"
            f"{'status fps min':>15}{'health p50/p99 ms':>19}{'PSS MB':>8}{'/camera':>8}  verdict")
    w(head)
    w("-" * len(head))
    for s in steps:
        rates, h, n = s["rates"], s["health"], s["cameras"]
        w(f"{n:>8}{s['online_s']:>9.1f}{s['cores']:>7.2f}{s['worker_cores'] / n:>12.4f}{s['machine']:>8.2f}"
          f"{fmt(min(rates, default=math.nan), '.1f') + ' / ' + fmt(percentile(rates, 50), '.1f'):>18}"
          f"{fmt(min(s['reported'], default=math.nan), '.1f'):>15}"
          f"{fmt(h['p50'], '.2f') + ' / ' + fmt(h['p99'], '.2f'):>19}{s['pss']:>8.0f}{s['pss'] / n:>8.1f}"
          f"  {s['why'] or 'holds'}")
    w("cores: the whole server tree (supervisor + API + workers), utime+stime from /proc over the window;")
    w("workers/cam: the worker processes' part of it per camera; machine: busy cores of the whole machine (the")
    w("health client and anything else included); read fps: packets each worker's reader handed on per wall-clock")
    w("second (its probe, before the settle and after the window); status fps: what /api/status reports (frames")
    w("per second of media time: it stays 30 for a file even when the reader lags); health: /api/health at")
    w("--health-rate a second from a separate client process.")
    good = [s for s in steps if not s["why"]]
    w("")
    if good:
        g = good[-1]
        w(f"last good count: {g['cameras']} cameras, {g['cores']:.2f} cores of the server "
          f"({g['worker_cores'] / g['cameras']:.4f} per camera in its worker), machine {g['machine']:.2f} cores busy, "
          f"PSS {g['pss']:.0f} MB ({g['pss'] / g['cameras']:.1f} MB per camera), {g['processes']} processes")
    else:
        w(f"last good count: none (the first step, {steps[0]['cameras']} cameras, did not hold)")
    w(f"stopped: {stopped_because}; total run {total:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--step", type=int, default=8, help="cameras added per step")
    p.add_argument("--max", type=int, default=96, help="stop at this many cameras")
    p.add_argument("--window", type=float, default=10.0, help="measurement window per step (s)")
    p.add_argument("--settle", type=float, default=6.0, help="wait after every camera is online (s)")
    p.add_argument("--time-limit", type=float, default=900.0, help="no new step after this run time (s)")
    p.add_argument("--min-fps", type=float, default=29.0, help="a camera read slower than this fails the step")
    p.add_argument("--health-p99-ms", type=float, default=10.0, help="/api/health p99 above this fails the step")
    p.add_argument("--health-rate", type=float, default=50.0, help="/api/health requests a second in the window")
    p.add_argument("--source", type=Path, help="an existing H.264 MPEG-TS to serve (default: generate one)")
    p.add_argument("--source-seconds", type=int, default=30, help="length of the generated source")
    p.add_argument("--quick", action="store_true", help="2 cameras a step up to 4, 8 s windows (~1 min)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server log, config, recordings)")
    p.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:
        p.set_defaults(step=2, max=4, window=8.0, settle=4.0, time_limit=120.0, source_seconds=10)
    args = p.parse_args()
    if args.client:
        client_main(int(args.client[0]), float(args.client[1]), float(args.client[2]))
        return 0
    try:
        return orchestrate(args)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
