"""Writes a WHIP publisher's own H.264 + Opus (no decode, no encode) into the source's segments,
`<record.dir>/<source-id>/<UTC start>.mp4`, listed, swept and health-checked like continuous
recordings (segment_store.py); a kill -9 of the worker leaves a playable file that misses about a
second at most (fmp4.FRAGMENTED).

A browser sends keyframes only when asked, so once a segment is due to roll (`segmentSeconds`)
or a new one may start after a failure, the recorder asks the publisher for one (RTCP PLI).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import cast

import av

from workers.recording.fmp4 import Fmp4Writer
from workers.recording.segment_store import Segment, SegmentStore
from workers.source.h264 import NAL_IDR, NAL_PPS, NAL_SPS, is_h264_keyframe, nal_type, nal_units
from workers.webrtc.media_unit import AUDIO_CLOCK, VIDEO_CLOCK

log = logging.getLogger("icey.recorder")

KEYFRAME_ASK_INTERVAL_SEC = 1.0
ROLL_SLACK_SEC = 0.001


class WhipRecorder:
    """Segments start at a keyframe that carries SPS/PPS; audio before the first is dropped.

    A keyframe with a different SPS (a browser ramping its resolution up) starts a new segment:
    an MP4's avcC header describes one SPS, and players that trust it would mis-scale the rest.
    `write()` runs on aiortc's receiver threads and never raises for a recording problem."""

    def __init__(self, store: SegmentStore, want_keyframe: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.want_keyframe = want_keyframe
        self._segment: Segment | None = None
        self._sps = b""
        self._base = 0.0  # the open segment's first keyframe, in seconds from the publisher's first
        self._origin: dict[str, tuple[int, float]] = {}  # kind -> (first RTP timestamp, arrival offset)
        self._t0: float | None = None
        self._asked_at = 0.0
        self._lock = threading.Lock()  # audio and video arrive on two receiver threads

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        with self._lock:
            try:
                self._write(kind, data, timestamp)
            except Exception as exc:  # a full disk: report, retry later, never kill the receiver
                segment, self._segment = self._segment, None
                self.store.failed(segment, exc)

    def close(self) -> None:
        with self._lock:
            segment, self._segment = self._segment, None
            if segment is not None:
                self.store.close(segment, "publisher left")
                log.info("recording %s saved (%.1f s)", segment.path.name, segment.entry.duration_sec)

    def _write(self, kind: str, data: bytes, timestamp: int) -> None:
        nals = nal_units(data) if kind == "video" else []
        self_contained = {NAL_SPS, NAL_PPS, NAL_IDR} <= {nal_type(n) for n in nals}
        if self._t0 is None:
            if not self_contained:
                self._ask_keyframe()
                return  # wait for a self-contained keyframe
            self._t0 = time.monotonic()
        seconds = self._seconds(kind, timestamp, VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK)
        segment = self._segment
        if segment is not None:
            due = seconds - self._base >= self.store.segment_seconds - ROLL_SLACK_SEC
            if self_contained and (due or self._sps_of(nals) != self._sps):
                self.store.close(segment, "rolled")
                segment = self._segment = None
            elif due:
                self._ask_keyframe()
        if segment is None:
            if not (self_contained and self.store.may_start()):
                if self.store.may_start():
                    self._ask_keyframe()
                return
            segment = self._segment = self._open(data, nals, seconds)
        written = seconds - self._base
        if written < 0:
            return  # audio a little ahead of the segment's first keyframe
        key = kind == "video" and is_h264_keyframe(data)
        if segment.writer.write(kind, data, written, written, key=key):
            self.store.wrote(segment, written, len(data))

    def _open(self, keyframe: bytes, nals: list[bytes], seconds: float) -> Segment:
        writer = Fmp4Writer(self.store.new_path())
        try:
            video = cast(av.VideoCodecContext, writer.add_video(None, keyframe).codec_context)
            writer.add_opus()
        except BaseException:
            writer.close()
            raise
        self._sps, self._base = self._sps_of(nals), seconds
        log.info("recording to %s (%dx%d)", writer.path.name, video.width, video.height)
        return self.store.opened(writer)

    @staticmethod
    def _sps_of(nals: list[bytes]) -> bytes:
        return next((n for n in nals if nal_type(n) == NAL_SPS), b"")

    def _seconds(self, kind: str, timestamp: int, clock: int) -> float:
        """Each track's RTP clock starts anywhere: align both on arrival of their first frame."""
        if kind not in self._origin:
            assert self._t0 is not None
            self._origin[kind] = (timestamp, time.monotonic() - self._t0)
        first, offset = self._origin[kind]
        return (int((timestamp - first) % (1 << 32)) + round(offset * clock)) / clock

    def _ask_keyframe(self) -> None:
        now = time.monotonic()
        if now - self._asked_at >= KEYFRAME_ASK_INTERVAL_SEC:
            self._asked_at = now
            self.want_keyframe()
