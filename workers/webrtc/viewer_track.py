"""A viewer's track: takes MediaUnits from the source's fan-out, and makes aiortc send them as they
are packetized.

Below aiortc's public API, on purpose: RTCRtpSender normally calls `encoder.pack()` for every
viewer, re-splitting and re-packetizing the same H.264 access unit N times. `attach_sender`
replaces the sender's `_next_encoded_frame` so it takes the payloads the reader thread made once
per source; each viewer's work is its RTP header and SRTP, nothing else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCEncodedFrame

from workers.webrtc.fanout import Fanout
from workers.webrtc.media_unit import VIDEO_CLOCK, MediaUnit

# A viewer this far behind (its sender cannot keep up with the source) drops what it has queued
# and everything up to the next keyframe, where it resumes at the live edge.
MAX_QUEUE = 300
MAX_QUEUE_BYTES = 8 << 20
# Cached frames are replayed 4 ms apart, in RTP time and on the wire alike: a 2 s GOP at 30 fps
# catches up in a quarter of a second at about 8x the stream's bitrate, instead of one burst
# that overflows receive buffers and outruns the sender's retransmission history.
BURST_INTERVAL_SEC = 0.004
BURST_SPACING = round(VIDEO_CLOCK * BURST_INTERVAL_SEC)


class ViewerTrack(MediaStreamTrack):
    def __init__(self, kind: str, fanout: Fanout) -> None:
        super().__init__()
        self.kind = kind
        self.fanout = fanout
        self._queue: deque[tuple[MediaUnit, int]] = deque()
        self._queued_bytes = 0
        self._replaying = 0  # cached frames still to pace out
        self._ready = asyncio.Event()
        self._primed = False
        self._awaiting_keyframe = False
        self._lagging = False  # units skipped while awaiting the keyframe count as dropped
        self.dropped = 0  # units this viewer did not get because it, or the loop, lagged
        fanout.subscribers.add(self)

    def _prime(self) -> None:
        """Start at the live edge. Video replays the cached GOP with its timestamps squeezed
        before the newest frame's, so the decoder catches up in a few ms and playback then runs
        at the live pace instead of lagging by the GOP's age."""
        self._queue.clear()
        self._queued_bytes = 0
        self._primed = True
        if self.kind != "video":
            return
        if self.fanout.want_keyframe is not None:
            self.fanout.want_keyframe()
        gop = list(self.fanout.gop)
        if not gop:
            self._awaiting_keyframe = True
            return
        last = gop[-1].timestamp
        for i, unit in enumerate(gop):
            self._queue.append((unit, last - (len(gop) - 1 - i) * BURST_SPACING))
            self._queued_bytes += unit.size
        self._replaying = len(gop) - 1  # the keyframe goes at once, the rest paced
        self._ready.set()

    def offer(self, unit: MediaUnit) -> None:
        if not self._primed or self.readyState != "live":
            return
        if self._awaiting_keyframe:
            if not unit.keyframe:
                if self._lagging:
                    self.dropped += 1
                return
            self._awaiting_keyframe = self._lagging = False
        if len(self._queue) >= MAX_QUEUE or self._queued_bytes + unit.size > MAX_QUEUE_BYTES:
            self.missed(1)
            return
        self._queue.append((unit, unit.timestamp))
        self._queued_bytes += unit.size
        self._ready.set()

    def missed(self, count: int) -> None:
        """`count` units never reached this viewer (it lagged, or the fan-out's hand-off did):
        what is queued would not decode past the hole, so it goes too; video resumes at the next
        keyframe."""
        if not self._primed or self.readyState != "live":
            return
        self.dropped += count + len(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        self._replaying = 0
        if self.kind == "video":
            self._awaiting_keyframe = self._lagging = True

    async def next_unit(self) -> tuple[MediaUnit, int]:
        if not self._primed:
            self._prime()
        elif self._replaying:
            self._replaying -= 1
            await asyncio.sleep(BURST_INTERVAL_SEC)
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        unit, timestamp = self._queue.popleft()
        self._queued_bytes -= unit.size
        return unit, timestamp

    async def recv(self):  # the sender never calls it (see attach_sender)
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self.fanout.subscribers.discard(self)
        self._ready.set()


def attach_sender(sender: RTCRtpSender, track: ViewerTrack, on_sent: Callable[[MediaUnit], None],
                  on_heard: Callable[[], None]) -> None:
    """`on_heard` is called for every RTCP packet from the viewer: its receiver reports are how
    we know it is still there (aiortc has no ICE `disconnected` state of its own)."""

    async def next_encoded_frame(codec) -> RTCEncodedFrame:
        unit, timestamp = await track.next_unit()
        on_sent(unit)
        return RTCEncodedFrame(list(unit.payloads), timestamp, None)  # type: ignore[arg-type]  # no audio level

    handle_rtcp = sender._handle_rtcp_packet

    async def heard(packet) -> None:
        on_heard()
        await handle_rtcp(packet)

    sender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign]
    sender._handle_rtcp_packet = heard  # type: ignore[method-assign]
