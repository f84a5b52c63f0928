"""The two systems that run on loopback, each measured with its viewers: icey-server itself and the per-viewer
re-encode baseline (Janus needs a network namespace: janus.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from measure import HOST, children, free_port, get_json

from media_cpu.measurement import Target, count_log_errors, late_joiners, measure_counts
from media_cpu.processes import self_command, spawn, stop_proc

SOURCE_ID = "cam"


def run_icey(args, src: Path, tmp: Path) -> dict:
    port = free_port()
    cfg = tmp / "icey.json"
    cfg.write_text(json.dumps({"webrtc": {"hostAddresses": [HOST]}}))
    server_bin = str(Path(sys.executable).parent / "icey-server")
    if not os.path.exists(server_bin):
        server_bin = shutil.which("icey-server") or "icey-server"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    cmd = [server_bin, "--source", f"{SOURCE_ID}={src}", "--no-turn", "-c", str(cfg), "--host", HOST,
           "--port", str(port), "--record-dir", str(tmp / "rec"), "--web-root", str(tmp / "web")]
    server = spawn(cmd, tmp / "icey.log", cwd=tmp, env=env)
    base = f"http://{HOST}:{port}"
    try:
        end = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"icey-server exited with code {server.returncode} (log: {tmp / 'icey.log'})")
            doc = get_json(port, f"/api/sources/{SOURCE_ID}")
            if doc and doc.get("state") == "online":
                break
            if time.monotonic() > end:
                raise RuntimeError("icey source never came online")
            time.sleep(0.2)
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
        return {"rows": rows, "late": late, "headline": "worker", "media": status.get("media"),
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
