#!/usr/bin/env python3
"""API load and state-freshness benchmark for icey-server (a benchmark that prints figures, not a test).

Starts the real `icey-server` with N demo sources plus 2 "blink" sources (a 0.6 s H.264 MPEG-TS file with
`loop: false`, so each blink worker flips online -> reconnecting -> online ... every ~1.1 s), then from a
separate client process measures:

  * /api/health and /api/status latency (p50/p99/max) and requests/s, one sequential keep-alive
    connection and C concurrent keep-alive connections (threads);
  * the same client code against a bare Quart + Hypercorn app (one small JSON route) started in another
    process in the same run: the baseline;
  * /api/status freshness: for each blink transition written in the server log (worker wall-clock time),
    the send time of the first /api/status poll whose response shows that very transition, minus the log
    time;
  * CPU of the server (supervisor + API + workers, from /proc) per measurement window.

Run from the repository root:  .venv/bin/python bench/api_load.py   (see bench/README.md)
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from measure import (
    CLK_TCK,
    HOST,
    cmdline,
    demo_url,
    find_server,
    fmt,
    free_port,
    get_json,
    parse_utc,
    percentile,
    stat_fields,
    stop,
)

BLINK_IDS = ("blink-1", "blink-2")
HEALTH_P99_TARGET_MS = 10.0
FRESH_P99_TARGET_MS = 250.0
# A transition logged this close to the end of the freshness window is not judged (it may not be seen yet).
FRESH_TAIL_SEC = 1.0
# A poll's onlineSince / nextRetryAt must lie this close to a logged transition to count as showing it.
MATCH_TOLERANCE_SEC = 0.25
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z [A-Z]+ \[worker:([^\]]+)\] "
                      r"source (online|reconnecting): (.*)$")
RETRY_IN = re.compile(r"retrying in ([0-9.]+)s")


# ---------------------------------------------------------------------------------------------------------
# baseline server (its own process): a bare Quart app on Hypercorn, configured like icey's API


def serve_baseline(port: int) -> None:
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from quart import Quart

    app = Quart("baseline")

    @app.get("/health")
    async def health():
        return {"status": "ok", "product": "baseline", "service": "baseline", "version": "0"}

    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    asyncio.run(serve(app, config))


# ---------------------------------------------------------------------------------------------------------
# client (its own process): sequential and concurrent keep-alive load, and the freshness poll


class KeepAlive:
    """One keep-alive HTTP/1.1 connection; reconnects after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=5)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
            raise

    def close(self) -> None:
        self.conn.close()


def _load_loop(port: int, path: str, start: float, end: float, out: dict) -> None:
    client = KeepAlive(port)
    lat: list[float] = []
    errors = nbytes = 0
    while (now := time.perf_counter()) < start:
        time.sleep(min(0.001, start - now))
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        try:
            status, body = client.get(path)
        except (OSError, http.client.HTTPException):
            errors += 1
            continue
        lat.append(time.perf_counter() - t0)
        nbytes += len(body)
        if status != 200:
            errors += 1
    client.close()
    out["lat"], out["errors"], out["bytes"] = lat, errors, nbytes


def run_load(port: int, path: str, seconds: float, connections: int) -> dict:
    """`connections` threads, each one keep-alive connection requesting `path` back to back."""
    # A warm-up request per connection so connect time and first-request setup are not measured.
    warm = KeepAlive(port)
    try:
        warm.get(path)
    except (OSError, http.client.HTTPException):
        pass
    warm.close()
    start = time.perf_counter() + 0.05
    end = start + seconds
    outs = [{} for _ in range(connections)]
    threads = [threading.Thread(target=_load_loop, args=(port, path, start, end, o)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(time.perf_counter(), end) - start
    lat_ms = [x * 1000 for o in outs for x in o["lat"]]
    return {"path": path, "port": port, "connections": connections, "seconds": elapsed, "requests": len(lat_ms),
            "errors": sum(o["errors"] for o in outs), "bytes": sum(o["bytes"] for o in outs) / max(1, len(lat_ms)),
            "rps": len(lat_ms) / elapsed,
            "p50": percentile(lat_ms, 50), "p99": percentile(lat_ms, 99), "max": max(lat_ms, default=math.nan)}


def run_freshness_polls(port: int, seconds: float) -> dict:
    """Poll /api/status back to back, keeping each send time and body. Bodies are parsed after the window
    (`parse_polls`) so parsing neither slows the poll nor counts in the window's CPU."""
    client = KeepAlive(port)
    raw: list[tuple[float, float, bytes]] = []
    errors = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sent = time.time()
        try:
            status, body = client.get("/api/status")
        except (OSError, http.client.HTTPException):
            errors += 1
            continue
        if status != 200:
            errors += 1
            continue
        raw.append((sent, time.time(), body))
    client.close()
    return {"raw": raw, "errors": errors}


def parse_polls(fresh: dict, ids: list[str]) -> dict:
    raw, errors = fresh["raw"], fresh["errors"]
    polls = []
    for sent, received, body in raw:
        doc = json.loads(body)
        fields = {s["id"]: [s["state"], s.get("reconnects"), s.get("onlineSince"), s.get("nextRetryAt")]
                  for s in doc["sources"] if s["id"] in ids}
        polls.append([sent, received, fields])
    return {"polls": polls, "errors": errors, "start": raw[0][0] if raw else None,
            "end": raw[-1][0] if raw else None}


def client_main(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    results: dict = {}
    for phase in spec["phases"]:
        name = phase["name"]
        print(f"PHASE {name} start", flush=True)
        if phase["kind"] == "load":
            results[name] = run_load(phase["port"], phase["path"], phase["seconds"], phase["connections"])
        else:
            results[name] = run_freshness_polls(phase["port"], phase["seconds"])
        print(f"PHASE {name} end", flush=True)
        if phase["kind"] == "fresh":
            results[name] = parse_polls(results[name], spec["blink_ids"])
    Path(spec["out"]).write_text(json.dumps(results))
    print("DONE", flush=True)


# ---------------------------------------------------------------------------------------------------------
# orchestrator: CPU accounting from /proc


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, utime+stime ticks, cmdline) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        rest = stat_fields(entry)
        cmd = cmdline(entry) if rest is not None else None
        if rest is None or cmd is None:
            continue
        table[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]), cmd)
    return table


def tree_ticks(root: int, table: dict[int, tuple[int, int, str]]) -> dict[int, tuple[int, str]]:
    """pid -> (ticks, cmdline) for root and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found[pid] = (table[pid][1], table[pid][2])
            todo.extend(children.get(pid, []))
    return found


class CpuSampler:
    def __init__(self, server_pid: int, baseline_pid: int) -> None:
        self.server_pid, self.baseline_pid = server_pid, baseline_pid
        self.client_pid: int | None = None

    def sample(self) -> dict:
        table = _proc_table()
        return {"t": time.monotonic(), "server": tree_ticks(self.server_pid, table),
                "baseline": tree_ticks(self.baseline_pid, table),
                "client": tree_ticks(self.client_pid, table) if self.client_pid else {}}

    @staticmethod
    def window(a: dict, b: dict, server_pid: int) -> dict:
        """% of one core per group over the window a..b (processes alive at both ends)."""
        secs = b["t"] - a["t"]

        def pct(tree: str, pick=lambda pid, cmd: True) -> float:
            ticks = sum(b[tree][pid][0] - a[tree][pid][0] for pid in b[tree]
                        if pid in a[tree] and pick(pid, b[tree][pid][1]))
            return 100.0 * ticks / CLK_TCK / secs if secs > 0 else math.nan

        workers = [pid for pid, (_, cmd) in b["server"].items() if " -m workers " in f"{cmd} "]
        return {"seconds": secs, "server": pct("server"),
                "supervisor": pct("server", lambda pid, cmd: pid == server_pid),
                "api": pct("server", lambda pid, cmd: " -m api " in f"{cmd} "),
                "workers": pct("server", lambda pid, cmd: " -m workers " in f"{cmd} "),
                "n_workers": len(workers), "baseline": pct("baseline"), "client": pct("client")}


# ---------------------------------------------------------------------------------------------------------
# orchestrator: server setup


def make_blink_file(path: Path, seconds: float = 0.6, fps: int = 15) -> None:
    """A short H.264 MPEG-TS (libx264 ultrafast, 320x180) from a real lavfi test picture."""
    from fractions import Fraction

    import av

    frames = round(seconds * fps)
    src = av.open(f"testsrc2=size=320x180:rate={fps}", format="lavfi")
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        n = 0
        for frame in src.decode(video=0):
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            out.mux(stream.encode(frame))
            n += 1
            if n >= frames:
                break
        out.mux(stream.encode(None))
    src.close()


class ServerLog:
    """Reads the server's stderr in a thread: keeps every line and copies it to a file."""

    def __init__(self, stream, path: Path) -> None:
        self.lines: list[str] = []
        self.file = path.open("w", encoding="utf-8")
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self.file.write(line + "\n")
        self.file.flush()

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.lines[-n:])

    def transitions(self, ids: set[str]) -> list[dict]:
        out = []
        for line in list(self.lines):
            m = LOG_LINE.match(line)
            if not m or m.group(2) not in ids:
                continue
            t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
            delay = RETRY_IN.search(m.group(4))
            out.append({"id": m.group(2), "t": t, "state": m.group(3),
                        "delay": float(delay.group(1)) if delay else None})
        return out


def wait_all_online(port: int, ids: list[str], timeout: float, proc: subprocess.Popen) -> float:
    """Poll /api/status until every source has been seen `online` at least once (blinks flip)."""
    seen: set[str] = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"icey-server exited early with code {proc.returncode}")
        doc = get_json(port, "/api/status")
        if doc:
            seen |= {s["id"] for s in doc["sources"] if s["state"] == "online"}
            if seen >= set(ids):
                return time.monotonic() - t0
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout:.0f}s; never online: {sorted(set(ids) - seen)}")


def wait_http(port: int, path: str, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if get_json(port, path) is not None:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {HOST}:{port}{path} after {timeout:.0f}s")


# ---------------------------------------------------------------------------------------------------------
# orchestrator: freshness analysis


def analyse_freshness(fresh: dict, transitions: list[dict]) -> dict:
    """Match each logged blink transition to the first poll (by send time) whose response shows *that*
    transition: for `online`, onlineSince equals the log time; for `reconnecting`, nextRetryAt equals the log
    time plus the logged retry delay (both set by the worker right after logging). A transition no poll
    showed is missed."""
    polls = sorted(fresh["polls"], key=lambda p: p[0])
    if not polls:
        return {"measured": [], "missed": 0, "judged": 0, "intervals": [], "polls": 0}
    start, last = polls[0][0], polls[-1][0]
    judged = [tr for tr in transitions if start <= tr["t"] <= last - FRESH_TAIL_SEC]
    measured, missed_list = [], []
    for tr in judged:
        hit = None
        for sent, _received, fields in polls:
            f = fields.get(tr["id"])
            if f is None or f[0] != tr["state"]:
                continue
            if tr["state"] == "online":
                stamp = parse_utc(f[2])
                ok = stamp is not None and abs(stamp - tr["t"]) < MATCH_TOLERANCE_SEC
            else:
                stamp = parse_utc(f[3])
                ok = stamp is not None and abs(stamp - (tr["delay"] or 0.0) - tr["t"]) < MATCH_TOLERANCE_SEC
            if ok:
                hit = sent
                break
        if hit is None:
            missed_list.append(tr)
        else:
            measured.append({"state": tr["state"], "ms": (hit - tr["t"]) * 1000})
    intervals = [(b[0] - a[0]) * 1000 for a, b in zip(polls, polls[1:], strict=False)]
    return {"measured": measured, "missed": len(missed_list), "judged": len(judged), "intervals": intervals,
            "polls": len(polls), "window": last - start, "all_transitions": len(transitions)}


# ---------------------------------------------------------------------------------------------------------
# orchestrator: report


def print_report(args, res: dict, cpu: dict[str, dict], fresh: dict, meta: dict) -> None:
    w = print
    w("")
    w(f"icey-server API load benchmark  ({meta['n_sources']} sources: {args.sources} demo "
      f"320x180@15 + {len(BLINK_IDS)} blink; {os.cpu_count()} CPUs; client in a separate process)")
    w(f"server up (all sources seen online) in {meta['startup']:.1f}s; settled {args.settle:.0f}s; "
      f"icey port {meta['port']}, baseline port {meta['baseline_port']}")
    w("")
    w("Latency and throughput (keep-alive HTTP/1.1; latency = request sent -> body read, in the client)")
    head = (f"{'endpoint':<30}{'client':<9}{'body B':>7}{'requests':>9}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'max ms':>8}{'errors':>7}  target")
    w(head)
    w("-" * (len(head) + 20))
    rows = [("health_seq", "icey  /api/health", None), ("base_seq", "baseline Quart /health", None),
            ("status_seq", "icey  /api/status", None), ("health_conc", "icey  /api/health", None),
            ("base_conc", "baseline Quart /health", None), ("status_conc", "icey  /api/status", None)]
    for key, label, _ in rows:
        r = res[key]
        client = "seq x1" if r["connections"] == 1 else f"conc x{r['connections']}"
        target = ""
        if key == "health_seq":
            ok = r["p99"] < HEALTH_P99_TARGET_MS and r["errors"] == 0
            target = f"p99 < {HEALTH_P99_TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'}"
        w(f"{label:<30}{client:<9}{r['bytes']:>7.0f}{r['requests']:>9}{r['rps']:>7.0f}{fmt(r['p50'], '.2f'):>8}"
          f"{fmt(r['p99'], '.2f'):>8}{fmt(r['max'], '.2f'):>8}{r['errors']:>7}  {target}".rstrip())
    w("")
    w("icey /api/health vs baseline, same client, same run (ratio icey / baseline):")
    for mode, a, b in (("seq x1", "health_seq", "base_seq"),
                       (f"conc x{args.concurrency}", "health_conc", "base_conc")):
        ra, rb = res[a], res[b]
        w(f"  {mode:<9} p50 {fmt(ra['p50'], '.2f')} vs {fmt(rb['p50'], '.2f')} ms ({ra['p50'] / rb['p50']:.2f}x)   "
          f"p99 {fmt(ra['p99'], '.2f')} vs {fmt(rb['p99'], '.2f')} ms ({ra['p99'] / rb['p99']:.2f}x)   "
          f"req/s {ra['rps']:.0f} vs {rb['rps']:.0f} ({ra['rps'] / rb['rps']:.2f}x)")
    w("")
    m = [x["ms"] for x in fresh["measured"]]
    by_state = {s: [x["ms"] for x in fresh["measured"] if x["state"] == s] for s in ("online", "reconnecting")}
    iv = fresh["intervals"]
    w(f"/api/status freshness (blink sources {', '.join(BLINK_IDS)}: worker log time -> send time of the first "
      "poll showing that transition)")
    w(f"  poll window {fresh.get('window', 0):.1f}s, {fresh['polls']} polls, {res['fresh']['errors']} errors; "
      f"poll interval p50 {fmt(percentile(iv, 50), '.2f')} ms, p99 {fmt(percentile(iv, 99), '.2f')} ms, "
      f"max {fmt(max(iv, default=math.nan), '.2f')} ms (the resolution)")
    w(f"  transitions judged {fresh['judged']} (of {fresh['all_transitions']} logged in the run; last "
      f"{FRESH_TAIL_SEC:.0f}s of the window not judged): measured {len(m)}, missed {fresh['missed']}")
    ok = bool(m) and percentile(m, 99) < FRESH_P99_TARGET_MS and fresh["missed"] == 0
    w(f"  freshness p50 {fmt(percentile(m, 50), '.2f')} ms, p99 {fmt(percentile(m, 99), '.2f')} ms, "
      f"max {fmt(max(m, default=math.nan), '.2f')} ms, min {fmt(min(m, default=math.nan), '.2f')} ms   "
      f"target p99 < {FRESH_P99_TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    for s, vals in by_state.items():
        w(f"    -> {s:<13} n={len(vals):<4} p50 {fmt(percentile(vals, 50), '.2f')} ms, "
          f"p99 {fmt(percentile(vals, 99), '.2f')} ms, max {fmt(max(vals, default=math.nan), '.2f')} ms")
    w("")
    w("CPU per window (% of one core, utime+stime from /proc; 100% = one core, "
      f"{100 * (os.cpu_count() or 1)}% = the machine)")
    head = (f"{'window':<30}{'secs':>6}{'server':>8}{'superv':>8}{'api':>8}{'workers':>9}{'/worker':>9}"
            f"{'baseline':>10}{'client':>8}")
    w(head)
    w("-" * len(head))
    labels = {"settle": "settle (no API load)", "health_seq": "icey /api/health seq",
              "base_seq": "baseline /health seq", "status_seq": "icey /api/status seq",
              "health_conc": "icey /api/health conc", "base_conc": "baseline /health conc",
              "status_conc": "icey /api/status conc", "fresh": "freshness poll /api/status"}
    for key, label in labels.items():
        c = cpu.get(key)
        if c is None:
            continue
        per = c["workers"] / c["n_workers"] if c["n_workers"] else math.nan
        w(f"{label:<30}{c['seconds']:>6.1f}{c['server']:>8.1f}{c['supervisor']:>8.1f}{c['api']:>8.1f}"
          f"{c['workers']:>9.1f}{per:>9.1f}{c['baseline']:>10.1f}{c['client']:>8.1f}")
    w(f"(server = supervisor + api + {meta['n_workers']} worker processes; baseline = the bare Quart process)")
    w("")


# ---------------------------------------------------------------------------------------------------------
# orchestrator: main


def orchestrate(args: argparse.Namespace) -> int:
    t_begin = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="icey-bench-"))
    server = baseline = client = None
    log: ServerLog | None = None
    try:
        blink = tmp / "blink.ts"
        make_blink_file(blink)
        sources = [{"id": f"demo-{i + 1}",
                    "source": demo_url(i, f"size=320x180&rate=15&tone={300 + 40 * i}")}
                   for i in range(args.sources)]
        sources += [{"id": bid, "source": str(blink), "loop": False} for bid in BLINK_IDS]
        ids = [s["id"] for s in sources]
        cfg = tmp / "config.json"
        cfg.write_text(json.dumps({"supervisor": {"heartbeatMs": 1000}, "sources": sources}, indent=2))
        port = args.port or free_port()
        baseline_port = args.baseline_port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
        cmd = [find_server(args.server), "-c", str(cfg), "--host", HOST, "--port", str(port), "--no-turn",
               "--record-dir", str(tmp / "recordings"), "--web-root", str(tmp / "web")]
        print(f"starting: {' '.join(cmd)}", flush=True)
        server = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                  stdout=(tmp / "server.stdout").open("wb"), stderr=subprocess.PIPE)
        log = ServerLog(server.stderr, tmp / "server.log")
        baseline = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(baseline_port)], cwd=tmp,
                                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=(tmp / "baseline.log").open("wb"))
        startup = wait_all_online(port, ids, args.startup_timeout, server)
        wait_http(baseline_port, "/health", 15)
        print(f"all {len(ids)} sources seen online after {startup:.1f}s; settling {args.settle:.0f}s", flush=True)

        sampler = CpuSampler(server.pid, baseline.pid)
        cpu: dict[str, dict] = {}
        a = sampler.sample()
        time.sleep(args.settle)
        cpu["settle"] = CpuSampler.window(a, sampler.sample(), server.pid)

        phases = []
        for name, p, path, secs, conns in (
                ("health_seq", port, "/api/health", args.seconds, 1),
                ("base_seq", baseline_port, "/health", args.seconds, 1),
                ("status_seq", port, "/api/status", args.seconds, 1),
                ("health_conc", port, "/api/health", args.concurrent_seconds, args.concurrency),
                ("base_conc", baseline_port, "/health", args.concurrent_seconds, args.concurrency),
                ("status_conc", port, "/api/status", args.concurrent_seconds, args.concurrency)):
            phases.append({"name": name, "kind": "load", "port": p, "path": path, "seconds": secs,
                           "connections": conns})
        phases.append({"name": "fresh", "kind": "fresh", "port": port, "seconds": args.fresh_seconds})
        spec = tmp / "client-spec.json"
        out = tmp / "client-out.json"
        spec.write_text(json.dumps({"phases": phases, "blink_ids": list(BLINK_IDS), "out": str(out)}))
        print(f"client process: {len(phases)} windows, ~{sum(p['seconds'] for p in phases):.0f}s", flush=True)
        client = subprocess.Popen([sys.executable, __file__, "--client", str(spec)], cwd=tmp, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        sampler.client_pid = client.pid
        marks: dict[str, dict] = {}
        for line in client.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "PHASE":
                snap = sampler.sample()
                if parts[2] == "start":
                    marks[parts[1]] = snap
                else:
                    cpu[parts[1]] = CpuSampler.window(marks[parts[1]], snap, server.pid)
        if client.wait(30) != 0:
            raise RuntimeError(f"client process failed with code {client.returncode}")
        res = json.loads(out.read_text())

        fresh = analyse_freshness(res["fresh"], log.transitions(set(BLINK_IDS)))
        n_workers = max((c["n_workers"] for c in cpu.values()), default=0)
        children = {pid: cmd for pid, (_, cmd) in sampler.sample()["server"].items() if pid != server.pid}
        code = stop(server, 30)
        left = [pid for pid, cmd in _proc_table().items() if pid in children and cmd[2] == children[pid]]
        stop(baseline, 10)
        baseline = None
        print_report(args, res, cpu, fresh, {"n_sources": len(ids), "startup": startup, "port": port,
                                             "baseline_port": baseline_port, "n_workers": n_workers})
        ok = code == 0
        w = print
        ok = ok and not left
        w(f"server stopped with SIGTERM: exit code {code} (expected 0); {len(children)} child processes, "
          f"{len(left)} left running: {'OK' if ok else 'FAIL'}")
        warn = sum(1 for line in log.lines if " ERROR " in line)
        w(f"server log: {len(log.lines)} lines, {warn} at ERROR; total run {time.monotonic() - t_begin:.1f}s")
        if args.keep:
            w(f"kept: {tmp} (server.log, config.json, client-out.json)")
        server = None
        return 0 if ok else 1
    except BaseException:
        if log is not None:
            print("---- server log tail ----\n" + log.tail(30), file=sys.stderr)
        raise
    finally:
        for proc in (client, server, baseline):
            if proc is not None and proc.poll() is None:
                stop(proc, 15)
        if log is not None:
            log.thread.join(2)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each sequential load window")
    parser.add_argument("--concurrent-seconds", type=float, default=5.0,
                        help="length of each concurrent load window")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (threads) in the concurrent windows")
    parser.add_argument("--fresh-seconds", type=float, default=15.0, help="length of the freshness poll window")
    parser.add_argument("--sources", type=int, default=16, help="demo sources (plus 2 blink sources)")
    parser.add_argument("--port", type=int, default=0, help="icey-server HTTP port (0: a free one)")
    parser.add_argument("--baseline-port", type=int, default=0, help="baseline HTTP port (0: a free one)")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after all sources were seen online")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="give up if sources are not online")
    parser.add_argument("--server", default=None, help="icey-server executable (None: the one next to this Python)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, config, raw results)")
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client)
        return 0
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    try:
        return orchestrate(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
