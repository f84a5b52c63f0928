#!/usr/bin/env python3
"""Snapshot latency benchmark for icey-server (a benchmark that prints figures, not a test).

Starts the real `icey-server` with one 720p30 demo source whose keyframes come every `--gop` frames
(default 5: six a second), and measures from this process, each request on one keep-alive connection:

  * /api/health, back to back: the floor of an HTTP round trip to the API;
  * snapshot.jpg?maxAge=0, cold: one request every `--cold-interval` s (longer than both the worker's
    rate limit, 0.2 s, and the keyframe interval), so every request finds a keyframe it has not decoded
    yet and pays decode + scale + JPEG encode; the worker's decode counter (probe) must rise by one per
    request, which the report checks;
  * /api/health, from a second connection while the cold requests run: the API stays responsive
    while a worker decodes (the work is on the worker's snapshot thread, not on any event loop);
  * snapshot.jpg?maxAge=60, warm: back to back, each served from the API's cache of recent replies (no
    worker round trip), with the body, and again with If-None-Match (304, what a wall's tiles get).

The health rows are the floor: on a loaded machine every p95 grows alike, so the warm rows are best read
next to them (the report prints the ratio).

Targets: cold p95 < 150 ms, warm p95 < 5 ms (printed as PASS/FAIL, not enforced).

Run from the repository root:  .venv/bin/python bench/snapshot.py   (see bench/README.md)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from measure import HOST, find_server, fmt, free_port, get_json, loadavg, percentile, stop

SOURCE_ID = "cam"
COLD_P95_TARGET_MS = 150.0
WARM_P95_TARGET_MS = 5.0


class KeepAlive:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=10)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        """(status, body, seconds from writing the request to the end of the body)."""
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=headers or {})
        resp = self.conn.getresponse()
        body = resp.read()
        return resp.status, body, time.perf_counter() - t0

    def etag(self, path: str) -> str:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        resp.read()
        return resp.getheader("ETag") or ""

    def close(self) -> None:
        self.conn.close()


def decodes(port: int) -> int:
    probe = get_json(port, f"/api/sources/{SOURCE_ID}/probe")
    if probe is None:
        raise SystemExit("cannot read the probe")
    return probe["snapshotDecodes"]


Series = tuple[list[float], int, int]  # latencies (ms), errors, mean body bytes


def series(client: KeepAlive, path: str, count: int, interval: float = 0.0, headers: dict[str, str] | None = None,
           expect: int = 200) -> Series:
    """Latencies (ms) of `count` GETs of `path`, one every `interval` s; errors; mean body bytes."""
    lat, errors, size = [], 0, 0
    for _ in range(count):
        started = time.monotonic()
        status, body, sec = client.get(path, headers)
        if status != expect:
            errors += 1
        lat.append(sec * 1000)
        size += len(body)
        if interval:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return lat, errors, size // max(1, count)


def interleaved(client: KeepAlive, path: str, count: int, tag: dict[str, str]) -> tuple[Series, Series]:
    """`series` of plain GETs and of conditional ones (304) taken in turn, so both see the same load."""
    plain: list[Series] = []
    conditional: list[Series] = []
    for _ in range(count):
        plain.append(series(client, path, 1))
        conditional.append(series(client, path, 1, headers=tag, expect=304))

    def merged(parts: list[Series]) -> Series:
        return [x for p in parts for x in p[0]], sum(p[1] for p in parts), sum(p[2] for p in parts) // len(parts)

    return merged(plain), merged(conditional)


def row(name: str, lat: list[float], errors: int, size: int, target: float | None = None) -> str:
    p95 = percentile(lat, 95)
    verdict = "" if target is None else (" PASS" if p95 < target else " FAIL") + f" (p95 < {target:g} ms)"
    return (f"{name:<38} {len(lat):>5} {fmt(percentile(lat, 50), '.2f'):>8} {fmt(p95, '.2f'):>8} "
            f"{fmt(max(lat, default=float('nan')), '.2f'):>8} {errors:>6} {size:>8}{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=60, help="cold requests")
    parser.add_argument("--cold-interval", type=float, default=0.35, help="seconds between cold requests")
    parser.add_argument("--warm", type=int, default=300, help="warm requests")
    parser.add_argument("--health", type=int, default=300, help="health requests (back to back)")
    parser.add_argument("--gop", type=int, default=5, help="keyframe interval of the source, in frames")
    parser.add_argument("--width", type=int, default=0, help="w= of the snapshot requests (0: full 1280x720)")
    parser.add_argument("--server", help="icey-server executable")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="icey-bench-snapshot-"))
    port = free_port()
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps({"sources": [{"id": SOURCE_ID,
                                             "source": f"demo://testsrc2?size=1280x720&rate=30&gop={args.gop}"}],
                               "stun": {"urls": []}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    cmd = [find_server(args.server), "-c", str(cfg), "--host", HOST, "--port", str(port), "--no-turn",
           "--record-dir", str(tmp / "recordings")]
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    size_query = f"&w={args.width}" if args.width else ""
    try:
        deadline = time.monotonic() + 60
        while True:
            source = get_json(port, f"/api/sources/{SOURCE_ID}")
            if source and source["state"] == "online":
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the source did not come online; see {tmp / 'server.log'}")
            time.sleep(0.2)
        time.sleep(2.0)  # settle: the encoder's first seconds
        client = KeepAlive(port)
        client.get("/api/health")  # connect outside the measurements

        health = series(client, "/api/health", args.health)

        side = KeepAlive(port)
        side.get("/api/health")
        during: list[float] = []
        running = threading.Event()
        running.set()

        def hammer() -> None:
            while running.is_set():
                during.append(side.get("/api/health")[2] * 1000)
                time.sleep(0.005)

        before = decodes(port)
        thread = threading.Thread(target=hammer)
        thread.start()
        cold = series(client, f"/api/sources/{SOURCE_ID}/snapshot.jpg?maxAge=0{size_query}", args.cold,
                      args.cold_interval)
        running.clear()
        thread.join()
        cold_decodes = decodes(port) - before

        warm_path = f"/api/sources/{SOURCE_ID}/snapshot.jpg?maxAge=60{size_query}"
        tag = {"If-None-Match": client.etag(warm_path)}
        before = decodes(port)
        warm, not_modified = interleaved(client, warm_path, args.warm, tag)
        warm_decodes = decodes(port) - before
        client.close()
        side.close()
    finally:
        code = stop(server, 20)
        log.close()

    print(f"icey-server snapshot benchmark: 1 source demo testsrc2 1280x720@30, keyframe every {args.gop} frames; "
          f"snapshot size {f'{args.width} wide' if args.width else 'full 1280x720'}; load {loadavg()}")
    print(f"{'':<38} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'errors':>6} {'body B':>8}")
    print(row("GET /api/health (sequential)", *health))
    print(row(f"snapshot cold maxAge=0 every {args.cold_interval:g} s", *cold, target=COLD_P95_TARGET_MS))
    print(row("GET /api/health during the cold run", during, 0, health[2]))
    print(row("snapshot warm maxAge=60 (sequential)", *warm, target=WARM_P95_TARGET_MS))
    print(row("snapshot warm, If-None-Match -> 304", *not_modified, target=WARM_P95_TARGET_MS))
    floor = percentile(health[0], 95)
    print(f"warm p95 / health p95: {percentile(warm[0], 95) / floor:.2f} (200), "
          f"{percentile(not_modified[0], 95) / floor:.2f} (304)")
    print(f"decodes: {cold_decodes} in the cold run ({args.cold} requests; one each expected), "
          f"{warm_decodes} in the warm runs (0 expected)")
    print(f"server exit code {code} (expected 0)")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
