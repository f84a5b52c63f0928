"""Continuous recording: the source's own packets remuxed (no decode, no encode) into fragmented
MP4 segments `<record.dir>/<source-id>/<UTC start>.mp4` (e.g. `20261126T130512.345Z.mp4`), kept
by the source's SegmentStore (naming, index, retention, write health).

A PacketTap: every segment starts on a video keyframe with its timestamps at 0, rolls at the
first keyframe once `segmentSeconds` have passed, and a camera drop closes it (the next open
starts a new one). A kill -9 of the worker leaves a playable file short of about a second
(fmp4.FRAGMENTED). Muxing runs on the reader thread (a memcpy and a page-cache write per packet);
a write that fails (a full disk) closes the segment and never reaches the reader.
"""

from __future__ import annotations

import logging
import threading

import av

from workers.recording.fmp4 import Fmp4Writer, NotSelfContained, mp4_can_hold
from workers.recording.segment_clock import SegmentClock
from workers.recording.segment_store import Segment, SegmentStore
from workers.source.taps import SourceStreams

log = logging.getLogger("icey.recording")

ROLL_SLACK_SEC = 0.001  # float seconds: a keyframe at exactly segmentSeconds rolls


class _Segment:
    def __init__(self, stored: Segment, base: float) -> None:
        self.stored, self.path = stored, stored.path
        self.writer = stored.writer
        self.clock = SegmentClock(base)


class SegmentRecorder:
    """One per source. The reader thread calls on_open/on_packet/on_close; `stop()` closes the
    open segment."""

    def __init__(self, store: SegmentStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._segment: _Segment | None = None
        self._streams: SourceStreams | None = None
        self._record_video = self._record_audio = False
        self._warned: set[str] = set()
        self._stopping = False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._finish("stopped")

    # -- PacketTap ---------------------------------------------------------------------------

    def on_open(self, streams: SourceStreams) -> None:
        with self._lock:
            self._finish("reopened")
            self._streams = streams
            video = self._codec_name(streams.video_codec, streams.video_stream)
            audio = self._codec_name(streams.audio_codec, streams.audio_stream)
            self._record_video = video is not None and mp4_can_hold(video)
            self._record_audio = audio is not None and mp4_can_hold(audio)
            if video is not None and not self._record_video:
                self._warn_once(f"video:{video}", "video codec %s cannot go in MP4 as is: not recording", video)
                self._record_audio = False  # an audio-only record of a camera would mislead
            elif audio is not None and not self._record_audio:
                self._warn_once(f"audio:{audio}", "audio codec %s cannot go in MP4 as is: recording video only",
                                audio)

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        if kind not in ("video", "audio"):
            return
        with self._lock:
            if self._stopping or self._streams is None:
                return
            if not (self._record_video if kind == "video" else self._record_audio):
                return
            try:
                self._packet(kind, packet, seconds)
            except Exception as exc:  # a recording problem must never stop the reader
                self._fail(exc)

    def on_close(self, reason: str) -> None:
        with self._lock:
            self._finish(reason)
            self._streams = None

    # -- internals (called with the lock held) -----------------------------------------------

    @staticmethod
    def _codec_name(ctx: av.CodecContext | None, stream: av.stream.Stream | None) -> str | None:
        if stream is not None:
            ctx = stream.codec_context
        if ctx is None:
            return None
        return ctx.codec.canonical_name  # "h264" for the demo's libx264 encoder too

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        tb = packet.time_base
        dts_sec = seconds + float((packet.dts - packet.pts) * tb) if packet.dts is not None and packet.pts is not None \
            else seconds
        duration = float(packet.duration * tb) if packet.duration else 0.0
        lead = "video" if self._record_video else "audio"  # what segments start and roll on
        cut = kind == lead and (packet.is_keyframe or lead == "audio")
        seg = self._segment
        if seg is not None and cut and \
                self._place(seg, kind, seconds, dts_sec, duration)[1] >= self.store.segment_seconds - ROLL_SLACK_SEC:
            self._finish("rolled")
            seg = None
        if seg is None:
            if not cut or not self.store.may_start():
                return  # a segment starts on a keyframe: what comes before it cannot play
            try:
                seg = self._start(packet, dts_sec)
            except NotSelfContained:
                self._warn_once("no-sps", "keyframe without SPS/PPS: waiting for one that has them")
                return
        pts_rel, dts_rel = self._place(seg, kind, seconds, dts_sec, duration)
        if dts_rel < 0:
            return  # before this segment's first keyframe (audio arriving a little late)
        if not seg.writer.write(kind, bytes(packet), pts_rel, dts_rel, duration, bool(packet.is_keyframe)):
            return
        seg.clock.advance(kind, pts_rel, dts_rel, duration)
        self.store.wrote(seg.stored, seg.clock.end_sec, packet.size)

    def _place(self, seg: _Segment, kind: str, seconds: float, dts_sec: float,
               duration: float) -> tuple[float, float]:
        pts_rel, dts_rel, went_back = seg.clock.place(kind, seconds, dts_sec, duration)
        if went_back:  # more than a duplicate timestamp: say so (once; then at debug level)
            message = "%s timestamps of the source went back %.3fs in %s: continuing after the last packet"
            if "clock-back" in self._warned:
                log.debug(message, kind, went_back, seg.path.name)
            self._warn_once("clock-back", message, kind, went_back, seg.path.name)
        return pts_rel, dts_rel

    def _start(self, keyframe: av.Packet, base: float) -> _Segment:
        streams = self._streams
        assert streams is not None
        writer = Fmp4Writer(self.store.new_path())
        try:
            if self._record_video:
                writer.add_video(streams.video_stream, bytes(keyframe))
            if self._record_audio and writer.add_audio(streams.audio_stream, streams.audio_codec) is None:
                self._warn_once("audio:template", "no template for the audio stream: recording video only")
                self._record_audio = False
        except BaseException:
            writer.close()
            raise
        seg = _Segment(self.store.opened(writer), base)
        self._segment = seg
        return seg

    def _finish(self, reason: str) -> None:
        seg, self._segment = self._segment, None
        if seg is not None:
            self.store.close(seg.stored, reason)

    def _fail(self, exc: Exception) -> None:
        seg, self._segment = self._segment, None
        self.store.failed(seg.stored if seg is not None else None, exc)
