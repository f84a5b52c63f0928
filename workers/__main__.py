"""`python -m workers --runtime-dir DIR --source-id ID`: started by the supervisor only."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import zmq
import zmq.asyncio

from protocol.child import load_settings, run_child
from workers.control_server import ControlServer
from workers.source_reader import SourceReader
from workers.state_publisher import StatePublisher


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers")
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--source-id", required=True)
    args = parser.parse_args()
    settings = load_settings(args.runtime_dir)
    src = settings.source(args.source_id)
    if src is None:
        raise SystemExit(f"unknown source id {args.source_id!r}")

    async def run() -> None:
        ctx = zmq.asyncio.Context()
        publisher = StatePublisher(args.runtime_dir, src.id, settings.supervisor.heartbeat_ms / 1000)
        control = ControlServer(ctx, args.runtime_dir, src.index, src.id)
        reader = None
        if src.kind != "none":
            reader = SourceReader(src, publisher.changed)
            publisher.reader = control.reader = reader
            reader.start()
        try:
            await asyncio.gather(publisher.run(), control.run())
        finally:
            if reader is not None:
                reader.stop()
            publisher.send(final=True)
            publisher.sock.close(linger_ms=200)  # let the last word out
            ctx.destroy(linger=0)

    run_child(f"worker:{src.id}", settings.log_level, run)


main()
