"""Motion clips: the source's own packets remuxed into fragmented MP4 (no decode, no encode:
the codec parameters are the source's), from the last keyframe at or before `preRollUsec` before
the motion started until `postRollUsec` after it ended; a new motion within the post-roll
extends the clip. A ring of copied packets holds the pre-roll; the writer is a thread of its own.
The clip is written as `<name>.mp4.part` and renamed when complete; the `clip` event follows.
A write the disk refuses ends the clip (what reached the disk stays if it plays) and shows in the
write health (vision status, record.failed / record.resumed with target "clips").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av

from protocol.config import ClipsConfig
from protocol.events import ArtifactData
from workers.intelligence.artifact_dir import PART, ArtifactDir, ArtifactStore
from workers.intelligence.clip_inbox import ClipInbox, Control, MotionEnded, MotionStarted, SourceClosed, SourceOpened
from workers.intelligence.preroll import PreRollRing, TimedPacket
from workers.recording.fmp4 import Fmp4Writer
from workers.recording.write_health import WriteHealth
from workers.source.taps import SourceStreams
from workers.threads import GUARD

log = logging.getLogger("icey.clips")

MAX_CLIP_SEC = 600.0  # a motion that never ends is cut into clips of this length (at a keyframe)
PREROLL_SLACK_SEC = 2.0  # the ring keeps this much more than the pre-roll: motion is seen late


class _Clip:
    """One clip being written: its packets go in at times relative to its first keyframe."""

    def __init__(self, writer: Fmp4Writer, origin: float, frame_interval: float) -> None:
        self.writer, self.path = writer, writer.path
        self.origin = origin  # the first keyframe's DTS: the clip's time 0
        self.deadline: float | None = None  # open-ended while the motion lasts
        self.end = origin
        self.frames = 0
        self.frame_interval = frame_interval  # the last frame's duration when packets carry none
        self._last_video_dts = origin

    def write(self, item: TimedPacket) -> None:
        """Raises OSError when the disk refuses the write."""
        if item.kind == "audio" and item.seconds < self.origin - 1e-6:
            return
        try:
            if not self.writer.write(item.kind, item.data, item.seconds - self.origin,
                                     item.dts_seconds - self.origin, item.duration, item.key):
                return
        except OSError:
            raise
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("clip mux error: %s", exc)
            return
        if item.kind == "video":
            if self.frames and 0 < item.dts_seconds - self._last_video_dts < 1.0:
                self.frame_interval = item.dts_seconds - self._last_video_dts
            self._last_video_dts = item.dts_seconds
            self.frames += 1
            self.end = max(self.end, item.seconds + (item.duration or self.frame_interval))


class ClipRecorder:
    """A PacketTap (reader thread: copy and enqueue, nothing else) and the clip-writer thread.
    `motion_started` / `motion_ended` may be called from any thread, with timeline seconds.
    `on_clip(ArtifactData, start_seconds)` is called on the writer thread once a clip is complete."""

    def __init__(self, source_id: str, directory: ArtifactDir, cfg: ClipsConfig,
                 on_clip: Callable[[ArtifactData, float], None], store: ArtifactStore | None = None,
                 max_clip_sec: float = MAX_CLIP_SEC, health: WriteHealth | None = None) -> None:
        self.source_id, self.directory, self.store = source_id, directory, store
        self.health = health
        self.pre_roll = max(0.0, cfg.pre_roll_usec / 1e6)
        self.post_roll = max(0.0, cfg.post_roll_usec / 1e6)
        self.on_clip = on_clip
        self.max_clip_sec = max_clip_sec
        self.last_url: str | None = None
        self._inbox = ClipInbox()
        self._epoch = 0
        self._streams: SourceStreams | None = None  # the reader's, valid only between on_open and on_close
        self._streams_epoch = 0
        self._streams_lock = threading.Lock()
        self._ring = PreRollRing(self.pre_roll + PREROLL_SLACK_SEC)
        self._clip: _Clip | None = None
        self._pending_start: float | None = None  # motion seen before any keyframe: start at the next one
        self._pending_deadline: float | None = None
        self._frame_interval = 1 / 30
        self._thread = GUARD.thread(f"clips-{source_id}", self._run)

    # PacketTap (reader thread)
    def on_open(self, streams: SourceStreams) -> None:
        with self._streams_lock:
            self._epoch += 1
            self._streams, self._streams_epoch = streams, self._epoch
        self._inbox.put_control(SourceOpened())

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        if kind not in ("video", "audio") or packet.time_base is None or packet.pts is None:
            return
        tb = packet.time_base
        dts = packet.dts if packet.dts is not None else packet.pts
        item = TimedPacket(kind, bytes(packet), seconds, seconds - float((packet.pts - dts) * tb),
                           float(packet.duration * tb) if packet.duration else 0.0, bool(packet.is_keyframe),
                           time.time(), self._epoch)
        self._inbox.put_packet(item)

    def on_close(self, reason: str) -> None:
        # The reader closes its container right after this: no clip may start from its streams now.
        with self._streams_lock:
            self._streams = None
        self._inbox.put_control(SourceClosed())

    # from the analysis thread
    def motion_started(self, seconds: float) -> None:
        self._inbox.put_control(MotionStarted(seconds))

    def motion_ended(self, seconds: float) -> None:
        self._inbox.put_control(MotionEnded(seconds))

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Finishes (renames) the clip being written, then the thread ends."""
        self._inbox.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # the clip thread
    def _run(self) -> None:
        while True:
            controls, packets, stopping = self._inbox.take(timeout=1.0)
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

    def _on_control(self, message: Control) -> None:
        match message:
            case SourceOpened():
                self._reset("source reopened")
            case SourceClosed():
                self._reset("source closed")
            case MotionStarted(seconds):
                if self._clip is not None:
                    self._clip.deadline = None  # motion again within the post-roll: one clip
                elif self._pending_start is not None:
                    self._pending_deadline = None
                else:
                    self._open_from_ring(seconds)
            case MotionEnded(seconds):
                deadline = seconds + self.post_roll
                if self._clip is not None:
                    self._clip.deadline = deadline
                    if self._clip.end > deadline:
                        self._finish("post-roll done")
                elif self._pending_start is not None:
                    self._pending_deadline = deadline

    def _reset(self, why: str) -> None:
        self._finish(why)
        self._ring.clear()
        self._pending_start = self._pending_deadline = None

    def _on_packet(self, item: TimedPacket) -> None:
        if item.epoch != self._epoch_now():
            return
        self._ring.add(item)
        clip = self._clip
        if clip is not None:
            if clip.deadline is not None and item.seconds > clip.deadline:
                self._finish("post-roll done")
            elif item.video_key and item.seconds - clip.origin >= self.max_clip_sec:
                self._finish("maximum length")
                self._open_at(item, [item], clip.deadline)
            else:
                self._write(clip, [item])
        elif self._pending_start is not None and item.video_key:
            deadline, self._pending_start, self._pending_deadline = self._pending_deadline, None, None
            if deadline is None or item.seconds <= deadline:
                self._open_at(item, [item], deadline)

    def _epoch_now(self) -> int:
        with self._streams_lock:
            return self._epoch

    def _open_from_ring(self, motion_seconds: float) -> None:
        items = self._ring.from_keyframe_before(motion_seconds - self.pre_roll)
        if not items:
            self._pending_start = motion_seconds  # no keyframe yet: the clip starts at the next one
            return
        self._open_at(items[0], items, None)

    def _open_at(self, key: TimedPacket, items: list[TimedPacket], deadline: float | None) -> None:
        newest = self._ring.newest or key
        wall = newest.wall - (newest.seconds - key.seconds)
        path = self.directory.unique(self.source_id, wall, "mp4")
        try:
            clip = self._create(path, key)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.warning("cannot start a clip: %s", exc)
            if isinstance(exc, OSError) and self.health is not None:
                self.health.failed(exc)
            return
        if clip is None:
            return
        self._clip = clip
        clip.deadline = deadline
        self._write(clip, items)

    def _write(self, clip: _Clip, items: list[TimedPacket]) -> None:
        try:
            for item in items:
                clip.write(item)
        except OSError as exc:  # the disk: this clip ends here
            log.warning("clip %s cut short: %s", clip.path.name, exc)
            if self.health is not None:
                self.health.failed(exc)
            self._finish("write failed", failed=True)

    def _create(self, path: Path, key: TimedPacket) -> _Clip | None:
        with self._streams_lock:
            streams = self._streams if self._streams_epoch == key.epoch else None
            if streams is None:
                return None
            writer = Fmp4Writer(path, write_to=path.with_name(path.name + PART))
            try:
                writer.add_video(streams.video_stream, key.data)
                try:
                    writer.add_audio(streams.audio_stream, streams.audio_codec)
                except (av.error.FFmpegError, ValueError) as exc:
                    log.info("clip without audio: %s", exc)
            except BaseException:
                writer.close()
                raise
        return _Clip(writer, key.dts_seconds, self._frame_interval)

    def _finish(self, why: str, failed: bool = False) -> None:
        clip, self._clip = self._clip, None
        if clip is None:
            return
        self._frame_interval = clip.frame_interval
        try:
            size = clip.writer.close()
        except OSError as exc:  # renaming the finished `.part`
            log.warning("clip %s not kept: %s", clip.path.name, exc)
            if self.health is not None:
                self.health.failed(exc)
            return
        if not size:
            return
        if self.health is not None and not failed:
            self.health.succeeded()
        self.last_url = self.directory.url(clip.path.name)
        duration = round(clip.end - clip.origin, 3)
        log.info("clip %s: %.1f s, %d frames (%s)", clip.path.name, duration, clip.frames, why)
        if self.store is not None:
            self.store.written()
        self.on_clip(ArtifactData(url=self.last_url or "", bytes=size, duration_sec=duration), clip.origin)
