"""`python -m workers --runtime-dir DIR --source-id ID`: started by the supervisor only.

Builds the worker's parts, each given its collaborators, and runs them: the reader thread feeds
its taps (recording, intelligence, viewer delivery); viewer delivery feeds the fan-out on the
event loop; the session manager owns the WebRTC peers; the state publisher and control server
talk to the API. The stall watchdog runs on the event loop; a worker thread that dies (see
threads.py) ends the worker with exit code 1, for the supervisor to restart it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq.asyncio

from protocol import ipc
from protocol.child import SHUTDOWN_GRACE_SEC, load_settings, run_child
from protocol.config import Settings, SourceSettings
from protocol.events import SourceData
from protocol.ipc import SnapshotSocket
from protocol.messages import SourceStatus
from workers.control_server import ControlServer
from workers.event_emitter import EventEmitter
from workers.fault_injection import arm_from_env
from workers.hot_settings import HotSettings
from workers.intelligence.pipelines import Intelligence, build_intelligence
from workers.recording.source_recording import SourceRecording
from workers.source.reader import SourceReader
from workers.source.taps import PacketTap
from workers.source.timeline import Timeline
from workers.source.watchdog import StallWatchdog
from workers.state_publisher import ChangeSignal, StatePublisher
from workers.stills.keyframes import KeyframeTap, PublisherKeyframes
from workers.stills.service import SnapshotService
from workers.threads import GUARD, ThreadDeath
from workers.webrtc import encoded_receiver
from workers.webrtc.delivery import Delivery
from workers.webrtc.fanout import Fanout
from workers.webrtc.ice import restrict_host_addresses
from workers.webrtc.publisher import PublisherSink, RecordSink, RelaySink
from workers.webrtc.sessions import Session, SessionManager

log = logging.getLogger("icey.worker")


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


def watch_deaths(loop: asyncio.AbstractEventLoop) -> asyncio.Future[ThreadDeath]:
    """A future the first thread death settles (GUARD calls back on the dying thread)."""
    dead: asyncio.Future[ThreadDeath] = loop.create_future()

    def settle(death: ThreadDeath) -> None:
        if not dead.done():
            dead.set_result(death)

    def died(death: ThreadDeath) -> None:
        try:
            loop.call_soon_threadsafe(settle, death)
        except RuntimeError:  # the loop is closed: the worker is exiting anyway
            pass

    GUARD.on_death(died)
    return dead


async def run_worker(settings: Settings, src: SourceSettings, runtime_dir: Path) -> int | None:
    loop = asyncio.get_running_loop()
    arm_from_env(runtime_dir)
    dead = watch_deaths(loop)
    ctx = zmq.asyncio.Context()
    sock = SnapshotSocket(runtime_dir)
    changes = ChangeSignal(loop)
    events = EventEmitter(sock, src.id, loop)
    fanout = Fanout(loop)
    reader: SourceReader | None = None
    delivery: Delivery | None = None
    intelligence: Intelligence | None = None
    recording = SourceRecording(src, events.emit, changes.notify)
    stills: SnapshotService | None = None
    if src.kind != "none":
        taps: list[PacketTap] = []
        if src.mode != "record":  # continuous recording, switched on and off by record.enabled
            taps.append(recording)
        intelligence = build_intelligence(settings, src, events, changes.notify)
        if intelligence is not None:
            taps += intelligence.taps
        keyframes = KeyframeTap()
        taps.append(keyframes)

        def watched() -> bool:
            """A viewer, or one negotiating (`sessions` is made below, before the reader starts):
            with none a file is paced loosely (reader.py) and a transcode pauses (delivery.py)."""
            return bool(sessions.sessions) or sessions.negotiating["whep"] > 0

        delivery = Delivery(fanout.publish_threadsafe, src.video, watched, fanout.reset_threadsafe)
        taps.append(delivery)
        reader = SourceReader(src, source_watch(events, fanout, changes), taps, watched)
        shared_decoder = intelligence.decoder if intelligence is not None and intelligence.vision else None
        stills = SnapshotService(keyframes, reader,
                                 (lambda: shared_decoder.latest) if shared_decoder is not None else None)
    publisher_stills: PublisherKeyframes | None = None
    if src.kind == "none" and src.mode == "relay":  # the publisher is the source: its keyframes make the stills
        publisher_stills = PublisherKeyframes()
        stills = SnapshotService(publisher_stills, publisher_stills)
    relay_timeline = Timeline()

    def sink_for(session: Session) -> PublisherSink:
        if recording.store is not None and src.mode == "record":
            return RecordSink(recording.store)
        return RelaySink(fanout, relay_timeline, publisher_stills)

    def has_audio() -> bool:
        if delivery is not None:
            return delivery.audio_mode is not None
        return src.mode == "relay"  # a relayed publisher's audio, when it sends some

    sessions = SessionManager(settings, src, fanout, changes.notify, has_audio, sink_for, events,
                              reader.hurry if reader is not None else lambda: None)
    publisher = StatePublisher(sock, src.id, settings.supervisor.heartbeat_ms / 1000, changes, reader, sessions,
                               intelligence, recording)
    hot = HotSettings(src, sessions, recording, intelligence)
    control = ControlServer(ctx, runtime_dir, src.index, src.id, reader, delivery, sessions, hot, stills)
    recording.start(continuous=reader is not None)
    if intelligence is not None:
        intelligence.start()
    jobs = [publisher.run(), control.run(), sessions.watch_liveness()]
    if reader is not None:
        jobs.append(StallWatchdog(reader, GUARD.died).run())
        reader.start()
    work = asyncio.gather(*jobs)
    either: set[asyncio.Future[Any]] = {work, dead}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            work.result()  # raises what ended it
            return None
        loop.call_later(SHUTDOWN_GRACE_SEC, os._exit, 1)  # a cleanup stuck behind the dead thread
        return 1
    finally:
        work.cancel()  # the gather then ends with a CancelledError nobody awaits: read it, unlogged
        work.add_done_callback(lambda done: done.cancelled() or done.exception())
        if reader is not None:
            reader.stop()
        if stills is not None:
            stills.close()
        if intelligence is not None:
            await asyncio.to_thread(intelligence.close)  # finishes a clip being written
        recording.stop_recorder()
        await sessions.close_all()
        recording.stop()
        publisher.send(final=True, death=GUARD.death)
        sock.close(linger_ms=200)  # let the last word out
        ctx.destroy(linger=0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers")
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--source-id", required=True)
    args = parser.parse_args()
    settings = load_settings(args.runtime_dir / ipc.worker_settings_file(args.source_id))
    src = settings.source(args.source_id)
    if src is None:
        raise SystemExit(f"unknown source id {args.source_id!r}")
    restrict_host_addresses(settings.webrtc.host_addresses)
    encoded_receiver.install()
    run_child(f"worker:{src.id}", settings.log_level, lambda: run_worker(settings, src, args.runtime_dir))


if __name__ == "__main__":  # the worker template imports this module and calls main() in each fork
    main()
