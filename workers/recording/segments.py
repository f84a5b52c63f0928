"""Continuous recording: the source's own packets remuxed (no decode, no encode) into fragmented
MP4 segments `<record.dir>/<source-id>/<UTC start>.mp4` (e.g. `20261126T130512.345Z.mp4`),
listed in the index next to them (protocol/recordings.py).

A PacketTap: every segment starts on a video keyframe with its timestamps at 0, rolls at the
first keyframe once `segmentSeconds` have passed, and a camera drop closes it (the next open
starts a new one). A kill -9 of the worker leaves a playable file short of about a second
(fmp4.FRAGMENTED). Muxing runs on the reader thread (a memcpy and a page-cache write per packet);
the retention sweep runs on a thread of its own, every 30 s and after each segment closes.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from protocol.config import RecordConfig
from protocol.recordings import SegmentEntry, segment_name
from protocol.times import rfc3339
from workers.recording.fmp4 import Fmp4Writer, NotSelfContained, mp4_can_hold
from workers.recording.retention import sweep
from workers.recording.segment_clock import SegmentClock
from workers.recording.segment_index import SegmentIndexFiles
from workers.source.taps import SourceStreams

log = logging.getLogger("icey.recording")

OPEN_STATE_INTERVAL_SEC = 1.0
RETENTION_INTERVAL_SEC = 30.0
FAILURE_BACKOFF_SEC = 5.0
MIN_SEGMENT_SECONDS = 0.5
ROLL_SLACK_SEC = 0.001  # float seconds: a keyframe at exactly segmentSeconds rolls


class _Segment:
    def __init__(self, writer: Fmp4Writer, started: datetime, base: float) -> None:
        self.writer, self.path = writer, writer.path
        self.entry = SegmentEntry(file=self.path.name, start=rfc3339(started), open=True)
        self.clock = SegmentClock(base)


class SegmentRecorder:
    """One per source. The reader thread calls on_open/on_packet/on_close; `start()` runs the
    retention thread; `stop()` closes the open segment and ends that thread."""

    def __init__(self, source_id: str, record: RecordConfig) -> None:
        self.source_id = source_id
        self.directory = Path(record.dir or ".") / source_id
        self.segment_seconds = max(float(record.segment_seconds), MIN_SEGMENT_SECONDS)
        self.retention = record.retention
        self._lock = threading.Lock()
        self._index = SegmentIndexFiles(self.directory, source_id)
        self._segment: _Segment | None = None
        self._streams: SourceStreams | None = None
        self._record_video = self._record_audio = False
        self._warned: set[str] = set()
        self._retry_at = 0.0
        self._open_written_at = 0.0
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.recorded_bytes = 0  # cumulative media bytes muxed, and segments started: the worker's counters
        self.recorded_segments = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._index.recover()
        except OSError as exc:  # each segment start tries again (with a backoff after a failure)
            log.error("recording directory %s unusable: %s", self.directory, exc)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        log.info("recording to %s in segments of %gs", self.directory, self.segment_seconds)
        self._thread = threading.Thread(target=self._retention_loop, name=f"retention-{self.source_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._finish("stopped")
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

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

    # -- the retention thread -------------------------------------------------------------

    def open_paths(self) -> set[Path]:
        with self._lock:
            return {self._segment.path} if self._segment is not None else set()

    def sweep_now(self) -> list[Path]:
        try:
            deleted = sweep(self.directory, self.retention, keep=self.open_paths)
        except Exception:
            log.exception("retention sweep of %s failed", self.directory)
            return []
        if deleted:
            gone = {p.name for p in deleted if p.parent == self.directory}
            with self._lock:
                self._index.forget(gone)
                self._index.write_index()
        return deleted

    def _retention_loop(self) -> None:
        while not self._stopping:
            self.sweep_now()
            self._wake.wait(RETENTION_INTERVAL_SEC)
            self._wake.clear()

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
                self._place(seg, kind, seconds, dts_sec, duration)[1] >= self.segment_seconds - ROLL_SLACK_SEC:
            self._finish("rolled")
            seg = None
        if seg is None:
            if not cut or time.monotonic() < self._retry_at:
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
        self.recorded_bytes += packet.size
        seg.clock.advance(kind, pts_rel, dts_rel, duration)
        seg.entry.duration_sec = round(seg.clock.end_sec, 3)
        now = time.monotonic()
        first = sum(seg.writer.packets.values()) == 1
        if first:  # the file exists from the first packet on: list it
            self._index.write_index()
        if first or now - self._open_written_at >= OPEN_STATE_INTERVAL_SEC:
            self._open_written_at = now
            self._index.write_open(seg.entry)

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
        started = datetime.now(UTC)
        path = self.directory / segment_name(started)
        while path.exists() or self._index.knows(path.name):
            started += timedelta(milliseconds=1)
            path = self.directory / segment_name(started)
        self.directory.mkdir(parents=True, exist_ok=True)  # an operator may have removed it
        streams = self._streams
        assert streams is not None
        writer = Fmp4Writer(path)
        try:
            if self._record_video:
                writer.add_video(streams.video_stream, bytes(keyframe))
            if self._record_audio and writer.add_audio(streams.audio_stream, streams.audio_codec) is None:
                self._warn_once("audio:template", "no template for the audio stream: recording video only")
                self._record_audio = False
        except BaseException:
            writer.close()
            raise
        seg = _Segment(writer, started, base)
        self._segment = seg
        self.recorded_segments += 1
        self._index.add(seg.entry)
        return seg

    def _finish(self, reason: str) -> None:
        seg = self._segment
        if seg is None:
            return
        self._segment = None
        seg.entry.open = False
        seg.entry.bytes = seg.writer.close()
        if not seg.entry.bytes:  # nothing playable was written: the file is gone
            self._index.remove(seg.entry)
        log.debug("segment %s closed (%s): %.2fs, %d bytes", seg.path.name, reason, seg.entry.duration_sec,
                  seg.entry.bytes)
        self._index.write_index()
        self._index.remove_open()
        self._wake.set()  # retention after each segment closes

    def _fail(self, exc: Exception) -> None:
        seg = self._segment
        log.warning("recording failed%s: %s: %s; next try in %.0fs", f" in {seg.path.name}" if seg else "",
                    type(exc).__name__, exc, FAILURE_BACKOFF_SEC)
        try:
            self._finish("failed")
        except Exception as again:
            self._segment = None
            log.warning("closing after the failure: %s", again)
        self._retry_at = time.monotonic() + FAILURE_BACKOFF_SEC
