"""Scrape cost of GET /metrics, paired with GET /api/status in the same run: latency (p50/p99/max)
and the API process's CPU per request, with 16 busy demo sources; and what that CPU comes to
at Prometheus's usual 15 s scrape interval. Target: /metrics p99 < 20 ms.

usage: .venv/bin/python bench/metrics.py [--sources 16] [--requests 300] [--rounds 2] [--keep]
Prints figures; asserts nothing. Everything listens on 127.0.0.1 and lives in a temp dir.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from measure import (
    CLK_TCK,
    HOST,
    children,
    demo_url,
    find_server,
    fmt,
    free_port,
    get_json,
    loadavg,
    percentile,
    proc_ticks,
    stop,
)

PATHS = ("/metrics", "/api/status")
SCRAPE_INTERVAL_SEC = 15.0
TARGET_P99_MS = 20.0


def api_pid(server_pid: int) -> int:
    for pid, cmd in children(server_pid).items():
        if " -m api " in f" {cmd}":
            return pid
    raise RuntimeError("no API process among the server's children")


def wait_online(port: int, n: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status = get_json(port, "/api/status")
        if status and sum(1 for s in status["sources"] if s["state"] == "online") == n:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"not every source was online after {timeout:.0f}s")


def run_window(port: int, pid: int, path: str, requests: int) -> dict:
    """`requests` GETs back to back on one keep-alive connection; latency per request and the API's CPU."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    conn.request("GET", path)
    conn.getresponse().read()  # warm-up: connect time is not counted
    latencies, sizes, errors = [], [], 0
    ticks0, t0 = proc_ticks(pid), time.monotonic()
    for _ in range(requests):
        start = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        latencies.append((time.perf_counter() - start) * 1000)
        sizes.append(len(body))
        errors += resp.status != 200
    seconds, ticks1 = time.monotonic() - t0, proc_ticks(pid)
    conn.close()
    assert ticks0 is not None and ticks1 is not None, "the API process went away"
    return {"latencies": latencies, "bytes": sum(sizes) / len(sizes), "errors": errors, "seconds": seconds,
            "cpu": (ticks1 - ticks0) / CLK_TCK}


def idle_cpu_rate(pid: int, seconds: float) -> float:
    """CPU seconds per second the API spends with no HTTP request (merging state messages)."""
    ticks0 = proc_ticks(pid)
    time.sleep(seconds)
    ticks1 = proc_ticks(pid)
    assert ticks0 is not None and ticks1 is not None
    return (ticks1 - ticks0) / CLK_TCK / seconds


def report(results: dict[str, list[dict]], idle_rate: float, n_sources: int, series: int) -> bool:
    print(f"\n{n_sources} demo sources; API idle CPU {idle_rate * 100:.2f}% of a core; "
          f"/metrics has {series} samples; load average {loadavg()}")
    print(f"{'path':<12} {'requests':>8} {'body B':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6} "
          f"{'CPU ms/req':>10} {'CPU at 15 s':>12}")
    ok = True
    for path, windows in results.items():
        lat = [x for w in windows for x in w["latencies"]]
        n = len(lat)
        extra_cpu = sum(w["cpu"] - idle_rate * w["seconds"] for w in windows)
        per_request_ms = max(0.0, extra_cpu) / n * 1000
        at_interval = per_request_ms / 1000 / SCRAPE_INTERVAL_SEC * 100
        errors = sum(w["errors"] for w in windows)
        body = sum(w["bytes"] for w in windows) / len(windows)
        p99 = percentile(lat, 99)
        print(f"{path:<12} {n:>8} {body:>8.0f} {fmt(percentile(lat, 50), '.2f'):>7} {fmt(p99, '.2f'):>7} "
              f"{fmt(max(lat), '.2f'):>7} {errors:>6} {per_request_ms:>10.2f} {at_interval:>11.4f}%")
        if path == "/metrics":
            ok = p99 < TARGET_P99_MS and errors == 0
            print(f"  target /metrics p99 < {TARGET_P99_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    print("CPU at 15 s: the API's CPU for one request every 15 s, in % of one core (the request's CPU "
          "beyond the idle rate).")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sources", type=int, default=16, help="demo sources")
    parser.add_argument("--requests", type=int, default=300, help="requests per window")
    parser.add_argument("--rounds", type=int, default=2, help="windows per path, alternating /metrics and /api/status")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle CPU window")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after every source is online")
    parser.add_argument("--server", default=None, help="icey-server executable (default: next to this Python)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, config)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="icey-bench-metrics-"))
    server = None
    try:
        sources = [{"id": f"cam-{i + 1}", "source": demo_url(i, "size=320x180&rate=15")}
                   for i in range(args.sources)]
        config = tmp / "config.json"
        config.write_text(json.dumps({"supervisor": {"heartbeatMs": 1000}, "sources": sources}))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
        cmd = [find_server(args.server), "-c", str(config), "--host", HOST, "--port", str(port), "--no-turn",
               "--record-dir", str(tmp / "recordings")]
        server = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                  stdout=(tmp / "server.log").open("wb"), stderr=subprocess.STDOUT)
        startup = wait_online(port, args.sources, 90)
        print(f"all {args.sources} sources online after {startup:.1f}s; settling {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        pid = api_pid(server.pid)
        idle_rate = idle_cpu_rate(pid, args.idle)
        results: dict[str, list[dict]] = {path: [] for path in PATHS}
        for _ in range(args.rounds):
            for path in PATHS:
                results[path].append(run_window(port, pid, path, args.requests))
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        ok = report(results, idle_rate, args.sources, series)
        code = stop(server, 30)
        server = None
        print(f"server stopped with SIGTERM: exit code {code}")
        return 0 if ok and code == 0 else 1
    finally:
        if server is not None:
            stop(server, 15)
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
