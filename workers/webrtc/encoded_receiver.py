"""Receive a WHIP publisher's media as encoded frames, without decoding it.

Below aiortc's public API, on purpose: aiortc decodes every received frame in a per-receiver
thread (`rtcrtpreceiver.decoder_worker`). Recording and relaying need the publisher's own H.264
and Opus, so for the tracks registered here the worker thread hands the reassembled frames
(Annex B H.264 / raw Opus, with RTP-clock timestamps) to a sink instead: no decode, no encode.
Any other receiving track has no reader in this server, so its frames are discarded, never
decoded: aiortc's decoder would queue every decoded frame without bound for nobody.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

# sink(kind, data, timestamp in the codec's RTP clock); called from aiortc's receiver thread.
EncodedSink = Callable[[str, bytes, int], None]

_sinks: dict[int, tuple[str, EncodedSink]] = {}
_lock = threading.Lock()


def _discard(kind: str, data: bytes, timestamp: int) -> None:
    pass


def _worker(loop, input_q: queue.Queue, output_q, decode_error: threading.Event) -> None:
    with _lock:
        kind, sink = _sinks.pop(id(output_q), ("", _discard))
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
