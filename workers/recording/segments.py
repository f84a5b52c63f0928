"""Continuous recording: the source's own packets remuxed (no decode, no encode) into fragmented
MP4 segments `<record.dir>/<source-id>/<UTC start>.mp4` (e.g. `20261126T130512.345Z.mp4`).

A PacketTap (see packet_tap.py): every segment starts on a video keyframe with its timestamps
at 0, rolls at the first keyframe once `segmentSeconds` have passed, and a camera drop closes it
(the next open starts a new one). Fragments of at most 0.5 s are flushed as they are written
(mp4_recorder.FRAGMENTED), so a kill -9 of the worker leaves a playable file short of about a
second. Muxing runs on the reader thread (a memcpy and a page-cache write per packet); the
retention sweep runs on a thread of its own, every 30 s and after each segment closes.

The index the API lists (`GET /api/sources/<id>/recordings`) lives next to the segments and is
replaced atomically (temporary file + rename):
- `index.json`: `{"schema": 1, "sourceId": ..., "segments": [SegmentEntry, ...]}`, oldest first,
  rewritten when a segment opens or closes and after retention deleted some;
- `open.json`: the open segment's SegmentEntry, rewritten about once a second while it grows,
  removed when it closes. A restarted worker (after a crash or kill -9) closes the entry of
  the interrupted segment and indexes any segment file the index missed.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import msgspec

from protocol.config import RecordConfig
from workers.recording.retention import sweep
from workers.recording.whip_recorder import FRAGMENTED
from workers.source.h264 import NAL_PPS, NAL_SPS, nal_type, nal_units
from workers.source.taps import SourceStreams, clone_packet
from workers.threads import GUARD

log = logging.getLogger("icey.recording")

INDEX_NAME = "index.json"
OPEN_NAME = "open.json"
INDEX_SCHEMA = 1
OPEN_STATE_INTERVAL_SEC = 1.0
RETENTION_INTERVAL_SEC = 30.0
FAILURE_BACKOFF_SEC = 5.0
MIN_SEGMENT_SECONDS = 0.5
ROLL_SLACK_SEC = 0.001  # float seconds: a keyframe at exactly segmentSeconds rolls
VIDEO_TIME_BASE = Fraction(1, 90_000)
DEFAULT_STEP_SEC = {"video": 1 / 30, "audio": 0.02}
_NAME_FORMAT = "%Y%m%dT%H%M%S"


class SegmentEntry(msgspec.Struct, rename="camel", kw_only=True):
    file: str  # a bare file name in the source's recording directory
    start: str  # RFC 3339 UTC, wall clock when the segment's first packet arrived
    duration_sec: float = 0.0
    bytes: int = 0
    open: bool = False


class SegmentIndex(msgspec.Struct, rename="camel", kw_only=True):
    schema: int = INDEX_SCHEMA
    source_id: str
    segments: list[SegmentEntry] = []


def segment_name(when: datetime) -> str:
    """`20261126T130512.345Z.mp4`: UTC, millisecond precision, sorts in time order."""
    when = when.astimezone(UTC)
    return f"{when.strftime(_NAME_FORMAT)}.{when.microsecond // 1000:03d}Z.mp4"


def parse_segment_name(name: str) -> datetime | None:
    if not name.endswith("Z.mp4") or len(name) != len("20261126T130512.345Z.mp4"):
        return None
    try:
        stamp = datetime.strptime(name[:15], _NAME_FORMAT).replace(tzinfo=UTC)
        return stamp + timedelta(milliseconds=int(name[16:19]))
    except ValueError:
        return None


def rfc3339_ms(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_index(directory: Path) -> SegmentIndex | None:
    try:
        return msgspec.json.decode((directory / INDEX_NAME).read_bytes(), type=SegmentIndex)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def read_open_state(directory: Path) -> SegmentEntry | None:
    try:
        return msgspec.json.decode((directory / OPEN_NAME).read_bytes(), type=SegmentEntry)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def probe_duration(path: Path) -> float | None:
    """The end of the last packet in a (possibly truncated) segment; demux only, no decode."""
    try:
        with av.open(str(path)) as container:
            end = 0.0
            for pkt in container.demux():
                if pkt.pts is not None and pkt.time_base is not None:
                    end = max(end, float((pkt.pts + (pkt.duration or 0)) * pkt.time_base))
            return round(end, 3)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


_MP4_CODECS: set[str] | None = None


def mp4_can_hold(codec: str) -> bool:
    global _MP4_CODECS
    if _MP4_CODECS is None:
        with av.open(io.BytesIO(), "w", format="mp4") as probe:
            _MP4_CODECS = set(probe.supported_codecs)
    return codec in _MP4_CODECS


class _NotSelfContained(Exception):
    """A keyframe without SPS/PPS cannot be a stream template; wait for the next one."""


class _Segment:
    def __init__(self, path: Path, started: datetime, container: av.container.OutputContainer,
                 video: av.stream.Stream | None, audio: av.stream.Stream | None, base: float) -> None:
        self.path, self.container, self.video, self.audio, self.base = path, container, video, audio, base
        self.entry = SegmentEntry(file=path.name, start=rfc3339_ms(started), open=True)
        self.last_dts: dict[str, int] = {}  # in the output time base
        self.last_dts_sec: dict[str, float] = {}
        self.step_sec: dict[str, float] = {}  # a frame's (packet's) duration, from the stream
        self.shift: dict[str, float] = {}  # added after the source's clock went back (see _timing)
        self.end_sec = 0.0
        self.packets = 0


class SegmentRecorder:
    """One per source. The reader thread calls on_open/on_packet/on_close; `start()` runs the
    retention thread; `stop()` closes the open segment and ends that thread."""

    def __init__(self, source_id: str, record: RecordConfig) -> None:
        self.source_id = source_id
        self.directory = Path(record.dir or ".") / source_id
        self.segment_seconds = max(float(record.segment_seconds), MIN_SEGMENT_SECONDS)
        self.retention = record.retention
        self._lock = threading.Lock()
        self._entries: list[SegmentEntry] = []  # oldest first; the open one last
        self._segment: _Segment | None = None
        self._streams: SourceStreams | None = None
        self._record_video = self._record_audio = False
        self._warned: set[str] = set()
        self._retry_at = 0.0
        self._open_written_at = 0.0
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._recover()
        except OSError as exc:  # each segment start tries again (with a backoff after a failure)
            log.error("recording directory %s unusable: %s", self.directory, exc)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        log.info("recording to %s in segments of %gs", self.directory, self.segment_seconds)
        self._thread = GUARD.thread(f"retention-{self.source_id}", self._retention_loop)
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
                self._entries = [e for e in self._entries if e.file not in gone]
                self._write_index()
        return deleted

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
        dts_sec = seconds + float((packet.dts - packet.pts) * tb) if packet.dts is not None else seconds
        lead = "video" if self._record_video else "audio"  # what segments start and roll on
        cut = kind == lead and (packet.is_keyframe or lead == "audio")
        seg = self._segment
        if seg is not None and cut and \
                self._timing(seg, kind, packet, seconds, dts_sec)[1] >= self.segment_seconds - ROLL_SLACK_SEC:
            self._finish("rolled")
            seg = None
        if seg is None:
            if not cut or time.monotonic() < self._retry_at:
                return  # a segment starts on a keyframe: what comes before it cannot play
            try:
                seg = self._start(packet, dts_sec)
            except _NotSelfContained:
                self._warn_once("no-sps", "keyframe without SPS/PPS: waiting for one that has them")
                return
        self._mux(seg, kind, packet, *self._timing(seg, kind, packet, seconds, dts_sec))
        now = time.monotonic()
        if seg.packets == 1:  # the file exists from the first packet on: list it
            self._write_index()
        if seg.packets == 1 or now - self._open_written_at >= OPEN_STATE_INTERVAL_SEC:
            self._open_written_at = now
            self._write_open(seg)

    def _timing(self, seg: _Segment, kind: str, packet: av.Packet, seconds: float,
                dts_sec: float) -> tuple[float, float]:
        """(pts, dts) in seconds from the segment's start. A source clock that stalls or jumps
        back (an RTSP server restarting its pipeline when another client joins, a seam) would
        make an unplayable track: the track goes on one frame after its last packet instead."""
        shift = seg.shift.get(kind, 0.0)
        pts_rel, dts_rel = seconds - seg.base + shift, dts_sec - seg.base + shift
        last = seg.last_dts_sec.get(kind)
        if last is not None and dts_rel <= last:
            step = seg.step_sec.get(kind) or (float(packet.duration * packet.time_base) if packet.duration
                                              else DEFAULT_STEP_SEC[kind])
            jump = last + step - dts_rel
            seg.shift[kind] = shift + jump
            pts_rel, dts_rel = pts_rel + jump, dts_rel + jump
            if jump > step:  # more than a duplicate timestamp: say so (once; then at debug level)
                message = "%s timestamps of the source went back %.3fs in %s: continuing after the last packet"
                if "clock-back" in self._warned:
                    log.debug(message, kind, jump - step, seg.path.name)
                self._warn_once("clock-back", message, kind, jump - step, seg.path.name)
        return pts_rel, dts_rel

    def _start(self, packet: av.Packet, base: float) -> _Segment:
        started = datetime.now(UTC)
        path = self.directory / segment_name(started)
        while path.exists() or any(e.file == path.name for e in self._entries):
            started += timedelta(milliseconds=1)
            path = self.directory / segment_name(started)
        self.directory.mkdir(parents=True, exist_ok=True)  # an operator may have removed it
        container = av.open(str(path), "w", format="mp4", options=dict(FRAGMENTED))
        try:
            video = self._add_video(container, packet) if self._record_video else None
            audio = self._add_audio(container) if self._record_audio else None
        except BaseException:
            container.close()
            raise
        seg = _Segment(path, started, container, video, audio, base)
        self._segment = seg
        self._entries.append(seg.entry)
        return seg

    def _add_video(self, container: av.container.OutputContainer, keyframe: av.Packet) -> av.stream.Stream:
        assert self._streams is not None
        stream = self._streams.video_stream
        if stream is not None and (stream.codec_context.extradata or stream.codec_context.name != "h264"):
            return container.add_stream_from_template(stream)  # avcC (MP4/MKV) or SDP parameter sets
        # The demo (an encoder, no stream) or a camera without parameter sets in its SDP: FFmpeg's
        # raw H.264 demuxer turns the keyframe's in-band SPS/PPS into extradata for the template.
        data = bytes(keyframe)
        if not {NAL_SPS, NAL_PPS} <= {nal_type(n) for n in nal_units(data)}:
            raise _NotSelfContained()
        with av.open(io.BytesIO(data), format="h264") as template_input:
            out = container.add_stream_from_template(template_input.streams.video[0])
        out.time_base = VIDEO_TIME_BASE
        return out

    def _add_audio(self, container: av.container.OutputContainer) -> av.stream.Stream | None:
        assert self._streams is not None
        if self._streams.audio_stream is not None:
            return container.add_stream_from_template(self._streams.audio_stream)
        ctx = self._streams.audio_codec
        if ctx is not None and ctx.codec.canonical_name == "opus":  # the demo's encoder
            return container.add_stream("libopus", rate=48_000)
        self._warn_once("audio:template", "no template for the audio stream: recording video only")
        self._record_audio = False
        return None

    def _mux(self, seg: _Segment, kind: str, packet: av.Packet, pts_rel: float, dts_rel: float) -> None:
        out = seg.video if kind == "video" else seg.audio
        if out is None or dts_rel < 0:
            return  # before this segment's first keyframe (audio arriving a little late)
        out_tb = VIDEO_TIME_BASE if kind == "video" else packet.time_base
        pts, dts = round(pts_rel / out_tb), round(dts_rel / out_tb)
        last = seg.last_dts.get(kind)
        if last is not None and dts <= last:  # rounding to the output clock
            dts = last + 1
            pts = max(pts, dts)
        copy = clone_packet(packet)  # muxing takes the data over: never mux the reader's packet
        copy.time_base, copy.pts, copy.dts = out_tb, pts, dts
        duration = float(packet.duration * packet.time_base) if packet.duration else 0.0
        if duration:
            copy.duration = max(1, round(duration / out_tb))
        copy.stream = out
        seg.container.mux(copy)
        seg.packets += 1
        seg.last_dts[kind] = dts
        previous = seg.last_dts_sec.get(kind)
        seg.last_dts_sec[kind] = dts_rel
        if duration:
            seg.step_sec[kind] = duration
        elif previous is not None and 0 < dts_rel - previous < 1.0:
            seg.step_sec[kind] = dts_rel - previous
        seg.end_sec = max(seg.end_sec, pts_rel + seg.step_sec.get(kind, 0.0))
        seg.entry.duration_sec = round(seg.end_sec, 3)

    def _finish(self, reason: str) -> None:
        seg = self._segment
        if seg is None:
            return
        self._segment = None
        try:
            seg.container.close()
        except Exception as exc:
            log.warning("closing segment %s: %s", seg.path.name, exc)
        seg.entry.open = False
        try:
            seg.entry.bytes = seg.path.stat().st_size
        except OSError:
            seg.entry.bytes = 0
        if seg.packets == 0 or seg.entry.bytes == 0:
            self._entries = [e for e in self._entries if e is not seg.entry]
            seg.path.unlink(missing_ok=True)
        log.debug("segment %s closed (%s): %.2fs, %d bytes", seg.path.name, reason, seg.entry.duration_sec,
                  seg.entry.bytes)
        self._write_index()
        try:
            (self.directory / OPEN_NAME).unlink(missing_ok=True)
        except OSError:
            pass
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

    def _write_index(self) -> None:
        index = SegmentIndex(source_id=self.source_id, segments=self._entries)
        try:
            write_atomic(self.directory / INDEX_NAME, msgspec.json.encode(index))
        except OSError as exc:
            self._warn_once("index", "cannot write the recording index: %s", exc)

    def _write_open(self, seg: _Segment) -> None:
        try:
            seg.entry.bytes = seg.path.stat().st_size
            write_atomic(self.directory / OPEN_NAME, msgspec.json.encode(seg.entry))
        except OSError as exc:
            self._warn_once("open-state", "cannot write the open segment's state: %s", exc)

    def _recover(self) -> None:
        """After a crash or kill -9: close the interrupted segment's entry and index any segment
        file the index missed (killed between creating the file and writing the index)."""
        index = read_index(self.directory)
        open_state = read_open_state(self.directory)
        entries: list[SegmentEntry] = []
        for entry in index.segments if index is not None else []:
            path = self.directory / entry.file
            if parse_segment_name(entry.file) is None or not path.is_file():
                continue
            if entry.open:
                entry.open = False
                if open_state is not None and open_state.file == entry.file:
                    entry.duration_sec = max(entry.duration_sec, open_state.duration_sec)
                probed = probe_duration(path)
                if probed is not None:
                    entry.duration_sec = probed
            entry.bytes = path.stat().st_size
            entries.append(entry)
        known = {e.file for e in entries}
        for path in sorted(self.directory.glob("*.mp4")):
            when = parse_segment_name(path.name)
            if when is None or path.name in known:
                continue
            size = path.stat().st_size
            if size == 0:
                path.unlink(missing_ok=True)
                continue
            entries.append(SegmentEntry(file=path.name, start=rfc3339_ms(when),
                                        duration_sec=probe_duration(path) or 0.0, bytes=size))
        entries.sort(key=lambda e: e.file)  # names sort in time order
        self._entries = entries
        self._write_index()
        (self.directory / OPEN_NAME).unlink(missing_ok=True)

    def _retention_loop(self) -> None:
        while not self._stopping:
            self.sweep_now()
            self._wake.wait(RETENTION_INTERVAL_SEC)
            self._wake.clear()
