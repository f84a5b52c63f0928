"""`python -m workers --runtime-dir DIR --source-id ID`: started by the supervisor only.

Builds the worker's parts, each given its collaborators, and runs them: the reader thread feeds
its taps (recording, intelligence, viewer delivery last); viewer delivery feeds the fan-out on the
event loop; the session manager owns the WebRTC peers; the state publisher and control server
talk to the API."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

import zmq.asyncio

from protocol.child import load_settings, run_child
from protocol.config import Settings, SourceSettings
from protocol.events import SourceData
from protocol.ipc import SnapshotSocket
from protocol.messages import SourceStatus
from workers.control_server import ControlServer
from workers.event_emitter import EventEmitter
from workers.intelligence.pipelines import Intelligence, build_intelligence
from workers.recording.segments import SegmentRecorder
from workers.source.reader import SourceReader
from workers.source.taps import PacketTap
from workers.source.timeline import Timeline
from workers.state_publisher import ChangeSignal, StatePublisher
from workers.stills.keyframes import KeyframeTap
from workers.stills.service import SnapshotService
from workers.webrtc.delivery import Delivery
from workers.webrtc.fanout import Fanout
from workers.webrtc.ice import restrict_host_addresses
from workers.webrtc.publisher import PublisherSink, RecordSink, RelaySink
from workers.webrtc.sessions import Session, SessionManager


def source_watch(events: EventEmitter, fanout: Fanout, changes: ChangeSignal) -> Callable[[SourceStatus], None]:
    """The reader's on_change (reader thread): source.online/offline events, and a source that
    went away must not leave its stale GOP to the next viewer."""
    was_online = False

    def changed(status: SourceStatus) -> None:
        nonlocal was_online
        online = status.state == "online"
        if not online:
            fanout.reset_threadsafe()
        if online and not was_online:
            events.emit("source.online", SourceData(state=status.state, detail=status.last_error))
        elif was_online and not online:
            events.emit("source.offline", SourceData(state=status.state, detail=status.last_error))
        was_online = online
        changes.notify()

    return changed


async def run_worker(settings: Settings, src: SourceSettings, runtime_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    ctx = zmq.asyncio.Context()
    sock = SnapshotSocket(runtime_dir)
    changes = ChangeSignal(loop)
    events = EventEmitter(sock, src.id, loop)
    fanout = Fanout(loop)
    reader: SourceReader | None = None
    delivery: Delivery | None = None
    recorder: SegmentRecorder | None = None
    intelligence: Intelligence | None = None
    stills: SnapshotService | None = None
    if src.kind != "none":
        taps: list[PacketTap] = []
        if src.record.enabled:  # continuous recording
            recorder = SegmentRecorder(src.id, src.record)
            taps.append(recorder)
        intelligence = build_intelligence(settings, src, events, changes.notify)
        if intelligence is not None:
            taps += intelligence.taps
        keyframes = KeyframeTap()
        taps.append(keyframes)
        delivery = Delivery(fanout.publish_threadsafe, src.video)
        taps.append(delivery)  # last: it may consume the packet
        reader = SourceReader(src, source_watch(events, fanout, changes), taps)
        shared_decoder = intelligence.decoder if intelligence is not None and intelligence.vision else None
        stills = SnapshotService(keyframes, reader,
                                 (lambda: shared_decoder.latest) if shared_decoder is not None else None)
    relay_timeline = Timeline()

    def sink_for(session: Session) -> PublisherSink:
        if src.mode == "record":
            return RecordSink(Path(settings.record_dir), src.id)
        return RelaySink(fanout, relay_timeline)

    def has_audio() -> bool:
        if delivery is not None:
            return delivery.audio_mode is not None
        return src.mode == "relay"  # a relayed publisher's audio, when it sends some

    sessions = SessionManager(settings, src, fanout, changes.notify, has_audio, sink_for, events)
    publisher = StatePublisher(sock, src.id, settings.supervisor.heartbeat_ms / 1000, changes, reader, sessions,
                               intelligence)
    control = ControlServer(ctx, runtime_dir, src.index, src.id, reader, delivery, sessions, stills)
    if recorder is not None:
        recorder.start()
    if intelligence is not None:
        intelligence.start()
    if reader is not None:
        reader.start()
    try:
        await asyncio.gather(publisher.run(), control.run(), sessions.watch_liveness())
    finally:
        if reader is not None:
            reader.stop()
        if stills is not None:
            stills.close()
        if intelligence is not None:
            await asyncio.to_thread(intelligence.close)  # finishes a clip being written
        if recorder is not None:
            recorder.stop()  # closes the open segment now: the reader thread may not get there
        await sessions.close_all()
        publisher.send(final=True)
        sock.close(linger_ms=200)  # let the last word out
        ctx.destroy(linger=0)


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
    run_child(f"worker:{src.id}", settings.log_level, lambda: run_worker(settings, src, args.runtime_dir))


main()
