"""The driver: parses the flags, makes the source, runs each system in turn, prints the report, and cleans up
(children, namespaces) on every way out. The hidden `--client` and `--serve-reencode` flags turn this process
into one of the helper programs instead; their modules load aiortc, which the driver itself never needs."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import media_cpu
from media_cpu.janus import delete_namespaces, remove_stale_namespaces, run_janus
from media_cpu.processes import stop_all
from media_cpu.report import print_report
from media_cpu.source import make_source, probe_source
from media_cpu.systems import run_icey, run_reencode


def cleanup() -> None:
    stop_all()
    delete_namespaces()


def _on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    p = argparse.ArgumentParser(prog="media_cpu", description=media_cpu.__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--window", type=float, default=15.0, help="CPU measurement window per point (s)")
    p.add_argument("--settle", type=float, default=2.0, help="wait after every viewer had a frame (s)")
    p.add_argument("--counts", default="1,10,25", help="viewer counts for icey and Janus")
    p.add_argument("--reencode-counts", default="1,2,4", help="viewer counts for the re-encode baseline")
    p.add_argument("--late", type=int, default=20, help="late joiners per system (0: skip)")
    p.add_argument("--no-reencode-late", action="store_true", help="skip the re-encode late joiners")
    p.add_argument("--systems", default="icey,reencode,janus", help="which systems to run, in this order")
    p.add_argument("--source", type=Path, help="an existing H.264 MPEG-TS to serve (default: generate one)")
    p.add_argument("--source-seconds", type=int, default=60, help="length of the generated source")
    p.add_argument("--seed", type=int, default=1, help="seed of the late joiners' random gaps")
    p.add_argument("--quick", action="store_true", help="5 s windows, 1 s settle, 8 late joiners (~2.5 min)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs, source)")
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--serve-reencode", nargs=2, help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:
        p.set_defaults(window=5.0, settle=1.0, late=8)
    args = p.parse_args()
    if args.client:
        from media_cpu.viewers import client_main

        client_main(args.client)
        return 0
    if args.serve_reencode:
        from media_cpu.reencode_server import serve_reencode

        serve_reencode(int(args.serve_reencode[0]), args.serve_reencode[1])
        return 0
    args.counts = [int(x) for x in args.counts.split(",") if x.strip() and int(x) > 0]
    args.reencode_counts = [int(x) for x in args.reencode_counts.split(",") if x.strip() and int(x) > 0]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "janus" in systems and os.geteuid() != 0:
        raise SystemExit("the Janus baseline needs root (ip netns); run as root or pass --systems icey,reencode")

    t_begin = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="icey-media-cpu-"))
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    results: dict[str, dict] = {}
    try:
        remove_stale_namespaces()
        src = args.source
        if src is None:
            src = tmp / "src720.ts"
            print(f"generating {src} ({args.source_seconds} s 720p30 H.264 Baseline, ~2 Mbit/s, GOP 60) ...",
                  flush=True)
            make_source(src, args.source_seconds)
        src = src.resolve()
        desc = probe_source(src)
        print(f"source: {desc}", flush=True)
        runners = {"icey": run_icey, "reencode": run_reencode, "janus": run_janus}
        for system in systems:
            print(f"{system}:", flush=True)
            try:
                results[system] = runners[system](args, src, tmp)
            except (RuntimeError, subprocess.CalledProcessError, StopIteration) as exc:
                print(f"  [{system}] FAILED: {exc}", flush=True)
                results[system] = {"error": str(exc)}
        print_report(args, results, desc, time.monotonic() - t_begin)
        return 0 if all("error" not in r for r in results.values()) else 1
    finally:
        cleanup()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
