"""Motion clips: the source's own packets remuxed into fragmented MP4 (no decode, no encode:
the codec parameters are the source's), from the last keyframe at or before `preRollUsec` before
the motion started until `postRollUsec` after it ended; a new motion within the post-roll
extends the clip. A ring of cloned packets holds the pre-roll; the writer is a thread of its own.
The clip is written as `<name>.mp4.part` and renamed when complete; the `clip` event follows.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from protocol.config import ClipsConfig
from protocol.events import ArtifactData
from workers.intelligence.artifact_dir import PART, ArtifactDir, ArtifactStore
from workers.recording.whip_recorder import FRAGMENTED
from workers.source.taps import SourceStreams, clone_packet
from workers.threads import GUARD

log = logging.getLogger("icey.clips")

MAX_CLIP_SEC = 600.0  # a motion that never ends is cut into clips of this length (at a keyframe)
PREROLL_SLACK_SEC = 2.0  # the ring keeps this much more than the pre-roll: motion is seen late
MAX_RING_BYTES = 64 << 20
MAX_PENDING = 3000  # packets waiting for the clip thread before the oldest go
VIDEO_TB = Fraction(1, 90_000)
MP4_AUDIO = {"aac", "mp3", "opus", "libopus", "alac", "flac", "ac3", "eac3"}


@dataclass(slots=True)
class _Pkt:
    kind: str
    packet: av.Packet
    seconds: float  # pts on the reader's timeline
    dts_seconds: float
    duration: float
    key: bool
    wall: float
    epoch: int


class _Clip:
    def __init__(self, path: Path, container: av.container.OutputContainer, video, audio, origin: float,
                 epoch: int) -> None:
        self.path, self.part = path, path.with_name(path.name + PART)
        self.container, self.video, self.audio = container, video, audio
        self.origin, self.epoch = origin, epoch
        self.deadline: float | None = None  # open-ended while the motion lasts
        self.end = origin
        self.frames = 0
        self.last_video_dts = origin
        self.last_dts: dict[str, int] = {}


class ClipRecorder:
    """A PacketTap (reader thread: clone and enqueue, nothing else) and the clip-writer thread.
    `motion_started` / `motion_ended` may be called from any thread, with timeline seconds.
    `on_clip(ArtifactData, start_seconds)` is called on the writer thread once a clip is complete."""

    def __init__(self, source_id: str, directory: ArtifactDir, cfg: ClipsConfig,
                 on_clip: Callable[[ArtifactData, float], None], store: ArtifactStore | None = None,
                 max_clip_sec: float = MAX_CLIP_SEC) -> None:
        self.source_id, self.directory, self.store = source_id, directory, store
        self.pre_roll = max(0.0, cfg.pre_roll_usec / 1e6)
        self.post_roll = max(0.0, cfg.post_roll_usec / 1e6)
        self.on_clip = on_clip
        self.max_clip_sec = max_clip_sec
        self.count = 0
        self.last_url: str | None = None
        self.dropped = 0
        self._cond = threading.Condition()
        self._packets: deque[_Pkt] = deque()
        self._controls: deque[tuple] = deque()
        self._epoch = 0
        self._streams: SourceStreams | None = None  # the reader's, valid only between on_open and on_close
        self._streams_epoch = 0
        self._streams_lock = threading.Lock()
        self._ring: deque[_Pkt] = deque()
        self._ring_keys: deque[float] = deque()
        self._ring_bytes = 0
        self._clip: _Clip | None = None
        self._pending_start: float | None = None  # motion seen before any keyframe: start at the next one
        self._pending_deadline: float | None = None
        self._frame_interval = 1 / 30
        self._stopping = False
        self._thread = GUARD.thread(f"clips-{source_id}", self._run)

    @property
    def active(self) -> bool:
        return self._clip is not None

    # PacketTap (reader thread)
    def on_open(self, streams: SourceStreams) -> None:
        with self._streams_lock:
            self._epoch += 1
            self._streams, self._streams_epoch = streams, self._epoch
        self._control(("open", self._epoch))

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        if kind not in ("video", "audio") or packet.time_base is None:
            return
        tb = packet.time_base
        dts = packet.dts if packet.dts is not None else packet.pts
        item = _Pkt(kind, clone_packet(packet), seconds, seconds - float((packet.pts - dts) * tb),
                    float(packet.duration * tb) if packet.duration else 0.0, bool(packet.is_keyframe),
                    time.time(), self._epoch)
        with self._cond:
            if self._stopping:
                return
            if len(self._packets) >= MAX_PENDING:
                self._packets.popleft()
                self.dropped += 1
            self._packets.append(item)
            self._cond.notify()

    def on_close(self, reason: str) -> None:
        # The reader closes its container right after this: no clip may start from its streams now.
        with self._streams_lock:
            self._streams = None
        self._control(("close", self._epoch))

    # from the analysis thread
    def motion_started(self, seconds: float) -> None:
        self._control(("start", seconds))

    def motion_ended(self, seconds: float) -> None:
        self._control(("end", seconds))

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Finishes (renames) the clip being written, then the thread ends."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _control(self, message: tuple) -> None:
        with self._cond:
            self._controls.append(message)
            self._cond.notify()

    # the clip thread
    def _run(self) -> None:
        while True:
            with self._cond:
                if not (self._packets or self._controls or self._stopping):
                    self._cond.wait(1.0)
                controls, self._controls = self._controls, deque()
                packets, self._packets = self._packets, deque()
                stopping = self._stopping
            try:
                for message in controls:
                    self._on_control(message)
                for item in packets:
                    self._on_packet(item)
                if stopping:
                    self._finish("worker stopping")
                    return
                if self.store is not None:
                    self.store.maybe_sweep()
            except Exception:  # a bug must not end clip writing for good (nor take the worker down)
                log.exception("clip writer error")
                if stopping:
                    return

    def _on_control(self, message: tuple) -> None:
        what, value = message
        if what in ("open", "close"):
            self._finish(f"source {'reopened' if what == 'open' else 'closed'}")
            self._ring.clear()
            self._ring_keys.clear()
            self._ring_bytes = 0
            self._pending_start = self._pending_deadline = None
        elif what == "start":
            if self._clip is not None:
                self._clip.deadline = None  # motion again within the post-roll: one clip
            elif self._pending_start is not None:
                self._pending_deadline = None
            else:
                self._open_from_ring(value)
        elif what == "end":
            deadline = value + self.post_roll
            if self._clip is not None:
                self._clip.deadline = deadline
                if self._clip.end > deadline:
                    self._finish("post-roll done")
            elif self._pending_start is not None:
                self._pending_deadline = deadline

    def _on_packet(self, item: _Pkt) -> None:
        if item.epoch != self._epoch_now():
            return
        self._remember(item)
        clip = self._clip
        if clip is not None:
            if clip.deadline is not None and item.seconds > clip.deadline:
                self._finish("post-roll done")
            elif item.kind == "video" and item.key and item.seconds - clip.origin >= self.max_clip_sec:
                self._finish("maximum length")
                self._open_at(item, [item], clip.deadline)
            else:
                self._write(clip, item)
        elif self._pending_start is not None and item.kind == "video" and item.key:
            deadline, self._pending_start, self._pending_deadline = self._pending_deadline, None, None
            if deadline is None or item.seconds <= deadline:
                self._open_at(item, [item], deadline)

    def _epoch_now(self) -> int:
        with self._streams_lock:
            return self._epoch

    def _remember(self, item: _Pkt) -> None:
        """The pre-roll ring: from the last keyframe at or before (newest - pre-roll - slack)."""
        ring, keys = self._ring, self._ring_keys
        if item.kind == "video" and item.key:
            keys.append(item.seconds)
        elif not keys:
            return  # nothing before the first keyframe is any use
        ring.append(item)
        self._ring_bytes += item.packet.size
        horizon = item.seconds - self.pre_roll - PREROLL_SLACK_SEC
        while len(keys) >= 2 and (keys[1] <= horizon or self._ring_bytes > MAX_RING_BYTES):
            keys.popleft()
            self._drop_until_key()
        if self._ring_bytes > MAX_RING_BYTES:  # one GOP larger than the cap: no pre-roll for now
            ring.clear()
            keys.clear()
            self._ring_bytes = 0

    def _drop_until_key(self) -> None:
        """Drops the ring's first GOP (its keyframe and all up to the next keyframe)."""
        ring = self._ring
        if ring:
            self._ring_bytes -= ring.popleft().packet.size
        while ring and not (ring[0].kind == "video" and ring[0].key):
            self._ring_bytes -= ring.popleft().packet.size

    def _open_from_ring(self, motion_seconds: float) -> None:
        target = motion_seconds - self.pre_roll
        start = None
        for i, p in enumerate(self._ring):
            if p.kind == "video" and p.key:
                if start is None or p.seconds <= target:
                    start = i
                if p.seconds > target:
                    break
        if start is None:
            self._pending_start = motion_seconds  # no keyframe yet: the clip starts at the next one
            return
        items = list(self._ring)[start:]
        self._open_at(items[0], items, None)

    def _open_at(self, key: _Pkt, items: list[_Pkt], deadline: float | None) -> None:
        newest = self._ring[-1] if self._ring else key
        wall = newest.wall - (newest.seconds - key.seconds)
        path = self.directory.unique(self.source_id, wall, "mp4")
        try:
            clip = self._create(path, key)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.warning("cannot start a clip: %s", exc)
            path.with_name(path.name + PART).unlink(missing_ok=True)
            return
        if clip is None:
            return
        self._clip = clip
        clip.deadline = deadline
        for item in items:
            self._write(clip, item)

    def _create(self, path: Path, key: _Pkt) -> _Clip | None:
        part = path.with_name(path.name + PART)
        with self._streams_lock:
            streams = self._streams if self._streams_epoch == key.epoch else None
            if streams is None:
                return None
            container = av.open(str(part), "w", format="mp4", options=dict(FRAGMENTED))
            try:
                video = self._video_stream(container, streams, key)
                audio = self._audio_stream(container, streams)
            except Exception:
                container.close()
                raise
        return _Clip(path, container, video, audio, key.dts_seconds, key.epoch)

    @staticmethod
    def _video_stream(container, streams: SourceStreams, key: _Pkt):
        if streams.video_stream is not None:
            video = container.add_stream_from_template(streams.video_stream)
        else:
            # No av.Stream (the demo source): FFmpeg's raw H.264 demuxer makes one from the
            # keyframe itself, which carries SPS/PPS in band (as WhipRecorder does).
            with av.open(io.BytesIO(bytes(key.packet)), format="h264") as template_input:
                video = container.add_stream_from_template(template_input.streams.video[0])
        video.time_base = VIDEO_TB
        return video

    @staticmethod
    def _audio_stream(container, streams: SourceStreams):
        try:
            if streams.audio_stream is not None:
                if streams.audio_stream.codec_context.name not in MP4_AUDIO:
                    return None  # e.g. G.711 from a camera: MP4 cannot carry it; the clip is video only
                audio = container.add_stream_from_template(streams.audio_stream)
                rate = streams.audio_stream.codec_context.sample_rate or 48_000
            elif streams.audio_codec is not None and streams.audio_codec.name in ("libopus", "opus"):
                rate = streams.audio_codec.sample_rate or 48_000
                audio = container.add_stream("libopus", rate=rate)
                audio.layout = streams.audio_codec.layout
            else:
                return None
        except (av.error.FFmpegError, ValueError) as exc:
            log.info("clip without audio: %s", exc)
            return None
        audio.time_base = Fraction(1, rate)
        return audio

    def _write(self, clip: _Clip, item: _Pkt) -> None:
        stream = clip.video if item.kind == "video" else clip.audio
        if stream is None or (item.kind == "audio" and item.seconds < clip.origin - 1e-6):
            return
        tb = stream.time_base if item.kind == "audio" else VIDEO_TB
        dts = round((item.dts_seconds - clip.origin) / tb)
        pts = round((item.seconds - clip.origin) / tb)
        last = clip.last_dts.get(item.kind)
        if last is not None and dts <= last:
            dts = last + 1
        pts = max(pts, dts)
        clip.last_dts[item.kind] = dts
        packet = clone_packet(item.packet)  # the ring keeps its copy: muxing takes the data over
        packet.pts, packet.dts, packet.time_base, packet.stream = pts, dts, tb, stream
        if item.duration:
            packet.duration = round(item.duration / tb)
        try:
            clip.container.mux(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("clip mux error: %s", exc)
            return
        if item.kind == "video":
            if clip.frames and 0 < item.dts_seconds - clip.last_video_dts < 1.0:
                self._frame_interval = item.dts_seconds - clip.last_video_dts
            clip.last_video_dts = item.dts_seconds
            duration = item.duration or self._frame_interval
            clip.frames += 1
            clip.end = max(clip.end, item.seconds + duration)

    def _finish(self, why: str) -> None:
        clip, self._clip = self._clip, None
        if clip is None:
            return
        try:
            clip.container.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.warning("clip close failed: %s", exc)
        try:
            size = clip.part.stat().st_size
            if clip.frames == 0 or size == 0:
                clip.part.unlink(missing_ok=True)
                return
            clip.part.rename(clip.path)
        except OSError as exc:
            log.warning("clip %s not kept: %s", clip.path.name, exc)
            return
        self.count += 1
        self.last_url = self.directory.url(clip.path.name)
        duration = round(clip.end - clip.origin, 3)
        log.info("clip %s: %.1f s, %d frames (%s)", clip.path.name, duration, clip.frames, why)
        if self.store is not None:
            self.store.written()
        self.on_clip(ArtifactData(url=self.last_url or "", bytes=size, duration_sec=duration), clip.origin)
