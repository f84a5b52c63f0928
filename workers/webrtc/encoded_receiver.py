"""Receive a WHIP publisher's media as encoded frames, without decoding it.

Below aiortc's public API, on purpose: aiortc decodes every received frame in a per-receiver
thread (`rtcrtpreceiver.decoder_worker`). Recording and relaying need the publisher's own H.264
and Opus, so for the tracks registered here the worker thread hands the reassembled frames
(Annex B H.264 / raw Opus, with RTP-clock timestamps) to a sink instead: no decode, no encode.

A sink that raises is not called again and its `on_error` is told (once); the thread goes on
draining its queue until aiortc stops it, so one publisher's failure stays its own. A track's
registration lasts until its receiver thread starts or `release()` (the session closing), so a
peer that never connects leaves nothing behind.

Any other receiving track has no reader in this server, so its frames are discarded, never
decoded: aiortc's decoder would queue every decoded frame without bound for nobody.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from workers.threads import GUARD

log = logging.getLogger("icey.ingest")

# sink(kind, data, timestamp in the codec's RTP clock); called from aiortc's receiver thread.
EncodedSink = Callable[[str, bytes, int], None]
SinkError = Callable[[Exception], None]


@dataclass(frozen=True)
class _Registration:
    queue: weakref.ref  # the track's frame queue, which the receiver thread is started with
    kind: str
    sink: EncodedSink
    on_error: SinkError


_sinks: dict[int, _Registration] = {}  # id(track._queue) -> registration
_lock = threading.Lock()


def _discard(input_q: queue.Queue) -> None:
    """A receiving track nobody registered: drain it until aiortc stops the thread."""
    while input_q.get() is not None:
        pass


def _worker(loop, input_q: queue.Queue, output_q, decode_error: threading.Event) -> None:
    """aiortc's receiver thread, guarded like every thread of the worker (see workers/threads.py)."""
    with _lock:
        registered = _sinks.pop(id(output_q), None)
    if registered is None or registered.queue() is not output_q:  # not ours (or an id reused)
        GUARD.run(threading.current_thread().name, lambda: _discard(input_q))
        return
    GUARD.run(f"whip-receiver-{registered.kind}", lambda: _forward(input_q, registered))


def _forward(input_q: queue.Queue, registered: _Registration) -> None:
    """A sink that raises ends its own session (on_error), never the thread: the rest of the
    publisher's frames are drained so aiortc's receiver never blocks."""
    failed = False
    while True:
        task = input_q.get()
        if task is None:
            return
        if failed:
            continue  # drained, so aiortc's receiver never blocks on this thread
        _codec, frame = task
        try:
            registered.sink(registered.kind, frame.data, frame.timestamp)
        except Exception as exc:
            failed = True
            try:
                registered.on_error(exc)
            except Exception:
                log.exception("reporting a %s sink error failed", registered.kind)



def install() -> None:
    """Route aiortc's receiver threads through `_worker`: called once by the worker process, never
    at import (a process that imports this module for other reasons keeps aiortc's decoder)."""
    rtcrtpreceiver.decoder_worker = _worker


def receive_encoded(track: MediaStreamTrack, sink: EncodedSink, on_error: SinkError) -> None:
    """Call from the pc's "track" event (before the connection starts its receivers)."""
    frames = track._queue  # type: ignore[attr-defined]
    with _lock:
        _sinks[id(frames)] = _Registration(weakref.ref(frames), track.kind, sink, on_error)


def release(track: MediaStreamTrack) -> None:
    """Forget a track whose receiver never started (its peer connection closed first)."""
    frames = track._queue  # type: ignore[attr-defined]
    with _lock:
        registered = _sinks.get(id(frames))
        if registered is not None and registered.queue() is frames:
            del _sinks[id(frames)]


def receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver | None:
    return next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """RTCP PLI to the publisher: relayed viewers and a fresh recording need a keyframe now."""
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
