"""Where a WHIP publisher's encoded media goes: to the source's recorded segments (record mode) or
to the source's viewers (relay mode). Both take frames as received, never decoding them."""

from __future__ import annotations

import asyncio
import logging

from aiortc import RTCRtpReceiver

from workers.recording.segment_store import SegmentStore
from workers.recording.whip_recorder import WhipRecorder
from workers.source.h264 import MalformedUnit, is_h264_keyframe
from workers.source.timeline import Timeline
from workers.stills.keyframes import PublisherKeyframes
from workers.webrtc.encoded_receiver import request_keyframe
from workers.webrtc.fanout import Fanout
from workers.webrtc.media_unit import AUDIO_CLOCK, VIDEO_CLOCK, h264_unit, opus_unit

log = logging.getLogger("icey.ingest")


class PublisherSink:
    """Made on the event loop; write() runs on aiortc's receiver threads; started() on the
    event loop; close() in a thread of its own."""

    receiver: RTCRtpReceiver | None = None
    dropped_units = 0  # frames that could not be used (malformed), counted in the source's status

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        raise NotImplementedError

    async def started(self) -> None:
        """The publisher is connected: ask it for a keyframe so output starts at once."""
        await self._keyframe()

    async def _keyframe(self) -> None:
        if self.receiver is None:
            return
        try:
            await request_keyframe(self.receiver)
        except Exception as exc:  # the connection is closing: there is nobody left to ask
            log.debug("keyframe request not sent: %s", exc)

    def keyframe_threadsafe(self) -> None:
        """Asks the publisher for a keyframe from any thread."""
        try:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._keyframe()))
        except RuntimeError:  # the event loop is gone: the worker is exiting
            pass

    def close(self) -> None:
        pass


class RecordSink(PublisherSink):
    def __init__(self, store: SegmentStore) -> None:
        super().__init__()
        self.recorder = WhipRecorder(store, self.keyframe_threadsafe)

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        self.recorder.write(kind, data, timestamp)

    def close(self) -> None:
        self.recorder.close()


class RelaySink(PublisherSink):
    """The publisher is the live source: its frames are packetized once and fanned out by the
    fan-out, so a viewer costs the same whatever the number of viewers."""

    def __init__(self, fanout: Fanout, timeline: Timeline, stills: PublisherKeyframes | None = None) -> None:
        super().__init__()
        self.fanout, self.timeline, self.stills = fanout, timeline, stills
        timeline.new_epoch()  # a new publisher's clock restarts; viewers' timestamps must not

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        if kind == "video":
            seconds = self.timeline.map(timestamp / VIDEO_CLOCK)
            keyframe = is_h264_keyframe(data)
            try:
                unit = h264_unit(data, round(seconds * VIDEO_CLOCK), keyframe, b"")
            except MalformedUnit:
                self.dropped_units += 1
                return
            if keyframe and self.stills is not None:
                self.stills.keyframe(data)  # snapshot.jpg decodes it on request only
        else:
            unit = opus_unit(data, round(self.timeline.map(timestamp / AUDIO_CLOCK, "audio") * AUDIO_CLOCK))
        self.fanout.publish_threadsafe(unit)

    async def started(self) -> None:
        self.fanout.want_keyframe = lambda: asyncio.ensure_future(self._keyframe())
        if self.stills is not None:
            self.stills.publisher_started()
        await super().started()

    def close(self) -> None:
        self.fanout.want_keyframe = None
        if self.stills is not None:
            self.stills.publisher_left()
        self.fanout.reset_threadsafe()
