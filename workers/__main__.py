"""`python -m workers --runtime-dir DIR --source-id ID`: started by the supervisor only."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import zmq.asyncio

from protocol.child import load_settings, run_child
from protocol.events import SourceData
from workers.control_server import ControlServer
from workers.event_emitter import EventEmitter
from workers.ice import restrict_host_addresses
from workers.ingest import Ingest, RecordIngest, RelayIngest
from workers.intelligence import attach as attach_intelligence
from workers.media_unit import Timeline
from workers.packet_hub import PacketHub
from workers.segment_recorder import SegmentRecorder
from workers.source_reader import SourceReader
from workers.state_publisher import StatePublisher
from workers.webrtc_sessions import Session, SessionManager


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers")
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--source-id", required=True)
    args = parser.parse_args()
    settings = load_settings(args.runtime_dir)
    src = settings.source(args.source_id)
    if src is None:
        raise SystemExit(f"unknown source id {args.source_id!r}")
    restrict_host_addresses(settings.webrtc.host_addresses)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        ctx = zmq.asyncio.Context()
        publisher = StatePublisher(args.runtime_dir, src.id, settings.supervisor.heartbeat_ms / 1000)
        control = ControlServer(ctx, args.runtime_dir, src.index, src.id)
        hub = PacketHub(loop)
        events = EventEmitter(publisher.sock, src.id, loop)
        reader: SourceReader | None = None
        last_state = "starting"

        def changed() -> None:  # called from the reader thread too
            nonlocal last_state
            if reader is not None:
                if reader.state != "online":
                    loop.call_soon_threadsafe(hub.reset)
                if (reader.state == "online") != (last_state == "online"):
                    events.emit(f"source.{'online' if reader.state == 'online' else 'offline'}",
                                SourceData(state=reader.state, detail=reader.last_error))
                last_state = reader.state
            publisher.changed()

        if src.kind != "none":
            reader = SourceReader(src, changed, hub.publish_threadsafe)
        relay_timeline = Timeline()

        def ingest_for(session: Session) -> Ingest:
            if src.mode == "record":
                return RecordIngest(Path(settings.record_dir), src.id)
            return RelayIngest(hub, relay_timeline)

        def has_audio() -> bool:
            if reader is not None:
                return reader.audio_delivery is not None
            return src.mode == "relay"  # a relayed publisher's audio, when it sends some

        sessions = SessionManager(settings, src, hub, publisher.changed, has_audio, ingest_for, events)
        publisher.reader = control.reader = reader
        publisher.sessions = control.sessions = sessions
        publisher.intelligence = attach_intelligence(settings, src, reader, events, publisher.changed)
        recorder: SegmentRecorder | None = None
        if reader is not None and src.record.enabled:  # continuous recording: a tap before the reader starts
            recorder = SegmentRecorder(src.id, src.record)
            reader.taps.append(recorder)
            recorder.start()
        if reader is not None:
            reader.start()
        try:
            await asyncio.gather(publisher.run(), control.run(), sessions.watch_liveness())
        finally:
            if reader is not None:
                reader.stop()
            if publisher.intelligence is not None:
                await asyncio.to_thread(publisher.intelligence.close)  # finishes a clip being written
            if recorder is not None:
                recorder.stop()  # closes the open segment now: the reader thread may not get there
            await sessions.close_all()
            publisher.send(final=True)
            publisher.sock.close(linger_ms=200)  # let the last word out
            ctx.destroy(linger=0)

    run_child(f"worker:{src.id}", settings.log_level, run)


main()
