"""Procfs, HTTP and statistics helpers shared by the benchmarks in this directory (api_load.py,
intelligence.py, the media_cpu package), plus the few process helpers they have in common.

Not a benchmark itself. The benchmarks import it as a plain module (`from measure import ...`): a script's own
directory is first on sys.path, also when a script re-runs itself as a client or server subprocess, and
media_cpu/__main__.py puts this directory there in place of its own.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HOST = "127.0.0.1"  # everything a benchmark starts listens on loopback
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------------------
# procfs

# lavfi patterns for many different-looking demo sources (each one the server's demo whitelist allows).
DEMO_PATTERNS = ("testsrc2", "smptehdbars", "life", "rgbtestsrc", "testsrc", "smptebars", "pal75bars", "yuvtestsrc")


def demo_url(i: int, query: str) -> str:
    """The i-th demo source: a different picture for each i (cycling), with `query` appended."""
    return f"demo://{DEMO_PATTERNS[i % len(DEMO_PATTERNS)]}?{query}"


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the `(comm)` one: [1] is ppid, [11] utime, [12] stime (ticks)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().decode(errors="replace").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cmdline(pid: int | str) -> str | None:
    """The command line of a process, arguments joined by spaces (with a trailing one)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def proc_ticks(pid: int) -> int | None:
    """utime + stime (all threads) of one process, in clock ticks."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float | None:
    """utime + stime (all threads) of one process, in seconds."""
    ticks = proc_ticks(pid)
    return None if ticks is None else ticks / CLK_TCK


def children(ppid: int) -> dict[int, str]:
    """pid -> command line of every child of ppid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = stat_fields(entry)
            if fields is None or int(fields[1]) != ppid:
                continue
        except (ValueError, IndexError):
            continue
        cmd = cmdline(entry)
        if cmd is not None:
            out[int(entry)] = cmd
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    total = sum(vals[:8])
    idle = vals[3] + vals[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


def loadavg() -> str:
    """The 1, 5 and 15 min load averages from /proc/loadavg, or `?`."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------------------
# processes


def find_server(explicit: str | None) -> str:
    """The icey-server executable: `explicit`, else the one next to this Python, else the one on PATH."""
    if explicit:
        return explicit
    local = Path(sys.executable).parent / "icey-server"
    if local.exists():
        return str(local)
    found = shutil.which("icey-server")
    if not found:
        raise SystemExit("icey-server not found; pass --server /path/to/icey-server")
    return found


def stop(proc: subprocess.Popen | None, timeout: float) -> int | None:
    """SIGTERM (if still running), wait up to `timeout` s, then SIGKILL; the exit code, None if killed."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


# ---------------------------------------------------------------------------------------------------------
# HTTP


def free_port() -> int:
    """A TCP port free on HOST right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(port: int, path: str, timeout: float = 2.0) -> dict | None:
    """GET http://HOST:port/path on a new connection: the JSON body of a 200 answer, else None (errors too)."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None


def parse_utc(text: str | None) -> float | None:
    """RFC 3339 UTC (`2026-11-26T12:44:57.652Z` or `...652+00:00`) to a POSIX timestamp."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


# ---------------------------------------------------------------------------------------------------------
# statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of an unsorted list (q in 0..100); NaN for an empty one."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | None, spec: str = ".1f") -> str:
    """`value` formatted with `spec`; `-` for None or NaN."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)
