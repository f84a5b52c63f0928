"""What the driver measures for one system: CPU of its processes over a window at each viewer count, the
viewers' own counters, and the late joiners' first frames."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from measure import cpu_seconds, machine_busy

from media_cpu.client_process import Client

CONNECT_TIMEOUT_SEC = 30.0
VIEWERS_PER_CLIENT = 13  # 25 viewers -> 2 client processes
LATE_HOLD_SEC = 0.5  # a late joiner stays this long after its first frame (its frames are counted), then leaves
# The 0-viewer point (and the idle server) is a few thousandths of a core: /proc counts in 10 ms ticks, so a
# short window cannot resolve it.
FIXED_MIN_WINDOW_SEC = 10.0


class Target:
    """A system under test: what to measure (name -> pid; the first is the headline) and how clients reach it."""

    def __init__(self, name: str, pids: dict[str, int], client_spec: dict, prefix: list[str],
                 drain: Callable[[], None]) -> None:
        self.name, self.pids, self.client_spec, self.prefix, self.drain = name, pids, client_spec, prefix, drain

    def cpu(self) -> dict[str, float | None]:
        return {k: cpu_seconds(pid) for k, pid in self.pids.items()}


def udp_rcvbuf_errors(pid: int) -> int | None:
    """UDP RcvbufErrors of the network namespace `pid` lives in (datagrams dropped because a socket's receive
    buffer was full). Namespace-wide: on the host namespace it includes anything else running."""
    try:
        lines = [ln.split() for ln in Path(f"/proc/{pid}/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def count_log_errors(log: Path) -> dict:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return {"lines": len(lines), "error": sum(" ERROR " in ln or "Traceback" in ln for ln in lines),
            "warning": sum(" WARNING " in ln or " WARN " in ln for ln in lines)}


def measure_counts(target: Target, counts: list[int], args, tmp: Path) -> list[dict]:
    rows = []
    for n in counts:
        print(f"  [{target.name}] {n} viewer(s): ", end="", flush=True)
        if n == 0:
            c0, h0, t0 = target.cpu(), machine_busy(), time.monotonic()
            time.sleep(max(args.window, FIXED_MIN_WINDOW_SEC))
            c1, h1, t1 = target.cpu(), machine_busy(), time.monotonic()
            rows.append({"n": 0, "window": t1 - t0, "cpu": _delta(c0, c1), "client_cpu": 0.0,
                         "host_busy": (h1[0] - h0[0]) / (t1 - t0)})
            print(f"{rows[-1]['cpu'][next(iter(target.pids))] / rows[-1]['window']:.3f} cores", flush=True)
            continue
        per = max(1, math.ceil(n / VIEWERS_PER_CLIENT))
        sizes = [n // per + (1 if i < n % per else 0) for i in range(per)]
        clients = []
        drops0 = udp_rcvbuf_errors(next(iter(target.pids.values())))
        try:
            t_connect, c_spawn = time.monotonic(), target.cpu()
            for i, size in enumerate(sizes):
                spec = {**target.client_spec, "mode": "load", "n": size, "max_seconds": args.window + 120,
                        "connect_timeout": CONNECT_TIMEOUT_SEC}
                clients.append(Client(spec, tmp, target.prefix, f"{target.name}-{n}-{i}"))
            conn = [c.expect("CONNECTED", CONNECT_TIMEOUT_SEC + 60) for c in clients]
            setup = time.monotonic() - t_connect
            time.sleep(args.settle)
            for c in clients:
                c.send("mark")
            c0, k0, t0 = target.cpu(), [cpu_seconds(c.proc.pid) for c in clients], time.monotonic()
            h0 = machine_busy()
            drops1 = udp_rcvbuf_errors(clients[0].proc.pid)
            m0 = [c.expect("MARK", 10) for c in clients]
            time.sleep(args.window)
            for c in clients:
                c.send("mark")
            c1, k1, t1 = target.cpu(), [cpu_seconds(c.proc.pid) for c in clients], time.monotonic()
            h1 = machine_busy()
            drops2 = udp_rcvbuf_errors(clients[0].proc.pid)
            m1 = [c.expect("MARK", 10) for c in clients]
        finally:
            for c in clients:
                c.finish()
        window = t1 - t0
        per_viewer = []
        for a, b in zip(m0, m1, strict=True):
            wa = b["t"] - a["t"]
            for va, vb in zip(a["viewers"], b["viewers"], strict=True):
                per_viewer.append({"fps": (vb[2] - va[2]) / wa, "mbit": (vb[3] - va[3]) * 8 / wa / 1e6,
                                   "frames": vb[2] - va[2], "all_frames": vb[0] - va[0],
                                   "keyframes": vb[4] - va[4], "squeezed": vb[5] - va[5], "jumps": vb[6] - va[6]})
        row = {"n": n, "window": window, "cpu": _delta(c0, c1), "setup": setup, "clients": len(clients),
               "setup_cpu": _delta(c_spawn, c0), "setup_s": t0 - t_connect,
               "client_cpu": sum((b or 0) - (a or 0) for a, b in zip(k0, k1, strict=True)),
               "with_frames": sum(c["with_frames"] for c in conn),
               "first": sorted(f for c in conn for f in c["first_frame_s"]),
               "errors": [e for c in conn for e in c["errors"]],
               "fps": [p["fps"] for p in per_viewer], "mbit": [p["mbit"] for p in per_viewer],
               "frames": sum(p["frames"] for p in per_viewer),
               "keyframes": [p["keyframes"] for p in per_viewer], "squeezed": [p["squeezed"] for p in per_viewer],
               "jumps": [p["jumps"] for p in per_viewer],
               "drops_setup": _sub(drops1, drops0), "drops_window": _sub(drops2, drops1),
               "host_busy": (h1[0] - h0[0]) / window}
        rows.append(row)
        head = next(iter(target.pids))
        print(f"{row['cpu'][head] / window:.3f} cores, {row['with_frames']}/{n} with frames, "
              f"fps avg {sum(row['fps']) / len(row['fps']):.1f} min {min(row['fps']):.1f}, keyframes "
              f"{sorted(set(row['keyframes']))}, squeezed {sorted(set(row['squeezed']))}, jumps "
              f"{sorted(set(row['jumps']))}, UDP drops setup/window {row['drops_setup']}/{row['drops_window']}",
              flush=True)
        target.drain()
    return rows


def _sub(b: int | None, a: int | None) -> int | None:
    return None if a is None or b is None else b - a


def _delta(a: dict, b: dict) -> dict:
    return {k: (b[k] - a[k]) if a.get(k) is not None and b.get(k) is not None else math.nan for k in a}


def late_joiners(target: Target, args, tmp: Path) -> dict:
    print(f"  [{target.name}] late joiners: {args.late} ...", flush=True)
    spec = {**target.client_spec, "mode": "late", "count": args.late, "gap": [0.4, 2.4], "seed": args.seed,
            "hold": LATE_HOLD_SEC, "first_timeout": 8.0, "max_seconds": 40 + args.late * 12,
            "connect_timeout": CONNECT_TIMEOUT_SEC}
    client = Client(spec, tmp, target.prefix, f"{target.name}-late")
    try:
        res = client.expect("LATE", 40 + args.late * 12)
    finally:
        client.finish()
    target.drain()
    return res
