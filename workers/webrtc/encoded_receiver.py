"""Receive a WHIP publisher's media as encoded frames, without decoding it.

Below aiortc's public API, on purpose: aiortc decodes every received frame in a per-receiver
thread (`rtcrtpreceiver.decoder_worker`). Recording and relaying need the publisher's own H.264
and Opus, so for the tracks registered here the worker thread hands the reassembled frames
(Annex B H.264 / raw Opus, with RTP-clock timestamps) to a sink instead: no decode, no encode.
Other tracks keep aiortc's decoder.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from workers.threads import GUARD

# sink(kind, data, timestamp in the codec's RTP clock); called from aiortc's receiver thread.
EncodedSink = Callable[[str, bytes, int], None]

_sinks: dict[int, tuple[str, EncodedSink]] = {}
_lock = threading.Lock()
_decoding_worker = rtcrtpreceiver.decoder_worker


def _worker(loop, input_q: queue.Queue, output_q, decode_error: threading.Event) -> None:
    """aiortc's receiver thread, guarded like every thread of the worker (see workers/threads.py)."""
    with _lock:
        registered = _sinks.pop(id(output_q), None)
    if registered is None:
        GUARD.run(threading.current_thread().name,
                  lambda: _decoding_worker(loop, input_q, output_q, decode_error))
        return
    kind, sink = registered
    GUARD.run(f"whip-receiver-{kind}", lambda: _forward(input_q, kind, sink))


def _forward(input_q: queue.Queue, kind: str, sink: EncodedSink) -> None:
    while True:
        task = input_q.get()
        if task is None:
            return
        _codec, frame = task
        sink(kind, frame.data, frame.timestamp)


rtcrtpreceiver.decoder_worker = _worker


def receive_encoded(track: MediaStreamTrack, sink: EncodedSink) -> None:
    """Call from the pc's "track" event (before the connection starts its receivers)."""
    with _lock:
        _sinks[id(track._queue)] = (track.kind, sink)  # type: ignore[attr-defined]


def receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver | None:
    return next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """RTCP PLI to the publisher: relayed viewers and a fresh recording need a keyframe now."""
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
