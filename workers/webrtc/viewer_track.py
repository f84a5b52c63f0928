"""A viewer's track: takes MediaUnits from the source's fan-out and sends them at once on its RTP
stream (rtp_fanout.py), which aiortc's sender would otherwise do in a coroutine of its own per
viewer. What stays per viewer here: where it starts (the cached GOP, paced), its bounded queue
while that replay runs, and skipping to the next keyframe after a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from workers.webrtc.fanout import Fanout
from workers.webrtc.media_unit import VIDEO_CLOCK, MediaUnit
from workers.webrtc.rtp_fanout import RtpStream, attach

log = logging.getLogger("icey.viewer")
# A viewer whose replay queue grows past this (a huge GOP, live units piling up behind it) drops
# what it has queued and everything up to the next keyframe, where it resumes at the live edge.
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
        self.on_sent: Callable[[MediaUnit], None] = lambda unit: None
        self._stream: RtpStream | None = None  # once aiortc's sender has started (DTLS is up)
        self._after = 0  # serial of the last unit the start's GOP snapshot covered
        self._queue: deque[tuple[MediaUnit, int]] = deque()  # (unit, RTP timestamp) while replaying
        self._queued_bytes = 0
        self._replaying = 0  # cached frames still to pace out
        self._pacer: asyncio.TimerHandle | None = None
        self._awaiting_keyframe = False
        self._lagging = False  # units skipped while awaiting the keyframe count as dropped
        self.dropped = 0  # units this viewer did not get because it, or the loop, lagged
        fanout.subscribe(self)

    def start(self, stream: RtpStream) -> None:
        """Start at the live edge. Video replays the cached GOP with its timestamps squeezed
        before the newest frame's, so the decoder catches up in a few ms and playback then runs
        at the live pace instead of lagging by the GOP's age."""
        self._stream = stream
        gop, self._after = self.fanout.snapshot()
        if self.kind != "video" or self.readyState != "live":
            return
        if self.fanout.want_keyframe is not None:
            self.fanout.want_keyframe()
        if not gop:
            self._awaiting_keyframe = True
            return
        last = gop[-1].timestamp
        for i, unit in enumerate(gop):
            self._queue.append((unit, last - (len(gop) - 1 - i) * BURST_SPACING))
            self._queued_bytes += unit.size
        self._replaying = len(gop) - 1  # the keyframe goes at once, the rest paced
        self._pace()

    def _send(self, unit: MediaUnit, timestamp: int) -> None:
        """A failure is this viewer's alone: like aiortc's own sender loop, it logs and ends the
        track (the fan-out pass goes on to the other viewers)."""
        assert self._stream is not None
        try:
            sent = self._stream.send_frame(unit.payloads, timestamp)
        except Exception:
            log.warning("sending to a viewer failed; its %s track ends", self.kind, exc_info=True)
            self.stop()
            return
        if sent:
            self.on_sent(unit)

    def _pace(self) -> None:
        """Sends the next replayed frame; once the replay is out, what queued behind it goes at once."""
        self._pacer = None
        if not self._queue:
            return
        unit, timestamp = self._queue.popleft()
        self._queued_bytes -= unit.size
        self._send(unit, timestamp)
        if self._replaying:
            self._replaying -= 1
            self._pacer = self.fanout.loop.call_later(BURST_INTERVAL_SEC, self._pace)
            return
        while self._queue:
            unit, timestamp = self._queue.popleft()
            self._send(unit, timestamp)
        self._queued_bytes = 0

    def offer(self, unit: MediaUnit, serial: int) -> None:
        if self._stream is None or serial <= self._after or self.readyState != "live":
            return
        if self._awaiting_keyframe:
            if not unit.keyframe:
                if self._lagging:
                    self.dropped += 1
                return
            self._awaiting_keyframe = self._lagging = False
        if self._pacer is None:
            self._send(unit, unit.timestamp)
            return
        if len(self._queue) >= MAX_QUEUE or self._queued_bytes + unit.size > MAX_QUEUE_BYTES:
            self.missed(1)
            return
        self._queue.append((unit, unit.timestamp))
        self._queued_bytes += unit.size

    def missed(self, count: int) -> None:
        """`count` units never reached this viewer (its replay queue overflowed, or the fan-out's
        hand-off did): what is queued would not decode past the hole, so it goes too; video
        resumes at the next keyframe."""
        if self._stream is None or self.readyState != "live":
            return
        self.dropped += count + len(self._queue)
        self._clear()
        if self.kind == "video":
            self._awaiting_keyframe = self._lagging = True

    def _clear(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0
        self._replaying = 0
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None

    async def recv(self):  # never called: the fan-out sends (see rtp_fanout.attach)
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self.fanout.unsubscribe(self)
        self._clear()


def attach_sender(sender: RTCRtpSender, track: ViewerTrack, on_sent: Callable[[MediaUnit], None],
                  on_heard: Callable[[], None]) -> None:
    """`on_sent` is called for every unit sent to this viewer; `on_heard` for every RTCP packet
    from it (its receiver reports are how we know it is still there)."""
    track.on_sent = on_sent
    attach(sender, track, track.start, on_heard)
