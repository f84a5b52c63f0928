"""Vision and speech of one source, always on, once per source, whether anyone watches or not
(the C++ icey-server runs them per viewer and tells only that viewer).

    reader thread --(taps: clone, enqueue)--> FrameDecoder threads (decode, sample)
        video: sampled frames -> bounded queue (vision.queueDepth, drop oldest) -> analysis thread:
               MotionDetector -> motion.start/end events, snapshot (JPEG), clip start/end
        audio: float mono 16 kHz -> VoiceActivityDetector -> speech.start/stop events, level meter
    reader thread --(tap: clone, enqueue)--> ClipRecorder thread (pre-roll ring, fMP4 remux)

Events go through the EventEmitter with media_time = the frame's (or sample's) timeline seconds;
`status()` gives the VisionStatus / SpeechStatus snapshots the state publisher sends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from statistics import median

import numpy as np

from protocol.config import IntelligenceConfig, MotionConfig, Settings, SourceSettings, SpeechConfig, VisionConfig
from protocol.events import ArtifactData, EventData
from protocol.messages import SpeechStatus, VisionStatus
from protocol.vocabulary import EventType
from workers.event_emitter import EventEmitter
from workers.fault_injection import fault_point
from workers.intelligence.artifact_dir import ArtifactDir, ArtifactStore
from workers.intelligence.clips import ClipRecorder
from workers.intelligence.decoder import AUDIO_RATE, BoundedQueue, FrameDecoder, SampledFrame
from workers.intelligence.motion import MotionDetector, MotionEvent
from workers.intelligence.snapshots import SnapshotWriter
from workers.intelligence.voice import VoiceActivityDetector
from workers.recording.write_health import WriteHealth
from workers.threads import GUARD

log = logging.getLogger("icey.intelligence")

FPS_WINDOW_SEC = 5.0
_END = object()


class VisionPipeline:
    def __init__(self, cfg: VisionConfig, emit: Callable, on_change: Callable[[], None],
                 snapshots: SnapshotWriter | None, clips: ClipRecorder | None,
                 sweep: Callable[[], None] | None = None) -> None:
        self.detector = MotionDetector(cfg.motion)
        self.queue = BoundedQueue(cfg.queue_depth)
        self.emit, self.on_change = emit, on_change
        self.snapshots, self.clips, self.sweep = snapshots, clips, sweep
        self.packet_drops: Callable[[], int] = lambda: 0
        self.events = 0
        self._epoch: int | None = None
        self._motion_cfg: MotionConfig | None = None  # new settings for the analysis thread to take
        self._done: deque[float] = deque()
        self._latency_ms: deque[float] = deque(maxlen=25)
        self._stop = threading.Event()
        self._thread = GUARD.thread("vision", self._run)

    # from the decoder's video thread
    def offer(self, frame: SampledFrame) -> None:
        self.queue.put(frame)

    def epoch_end(self, kind: str) -> None:
        self.queue.put(_END)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()

    def configure(self, motion: MotionConfig) -> None:
        """New motion settings (any thread): the analysis thread takes them before its next frame."""
        self._motion_cfg = motion

    def _run(self) -> None:
        while not self._stop.is_set():
            fault_point("vision")
            try:
                self._step()
            except Exception:  # a bug must not end the analysis for good
                log.exception("vision analysis error")

    def _step(self) -> None:
        item, _ = self.queue.get(1.0)
        if self.sweep is not None:
            self.sweep()
        if (motion := self._motion_cfg) is not None:
            self._motion_cfg = None
            self._handle(self.detector.configure(motion), None)
        if item is None:
            return
        if item is _END:
            self._handle(self.detector.reset(), None)
            self._epoch = None
            return
        frame: SampledFrame = item
        events: list[MotionEvent] = []
        if frame.epoch != self._epoch:
            events += self.detector.reset()
            self._epoch = frame.epoch
        try:
            events += self.detector.process(frame.luma, frame.pts_usec)
        except (ValueError, MemoryError) as exc:  # a frame the grid cannot cut: skip it
            log.debug("motion: %s", exc)
            return
        now = time.monotonic()
        self._latency_ms.append((now - frame.arrival) * 1000)
        self._done.append(now)
        while self._done and now - self._done[0] > FPS_WINDOW_SEC:
            self._done.popleft()
        self._handle(events, frame)

    def _handle(self, events: list[MotionEvent], frame: SampledFrame | None) -> None:
        for event in events:
            seconds = event.pts_usec / 1e6
            self.emit(event.type, event.data, seconds)
            self.events += 1
            if event.type == "motion.start":
                if self.clips is not None:
                    self.clips.motion_started(seconds)
                if self.snapshots is not None and frame is not None:
                    wall = time.time() - (time.monotonic() - frame.arrival)
                    data = self.snapshots.write(frame.frame, frame.pts_usec, wall)
                    if data is not None:
                        self.emit("snapshot", data, frame.seconds)
            elif self.clips is not None:
                self.clips.motion_ended(seconds)
        if events:
            self.on_change()

    def status(self) -> VisionStatus:
        now = time.monotonic()
        done = [t for t in list(self._done) if now - t <= FPS_WINDOW_SEC]
        fps = (len(done) - 1) / (done[-1] - done[0]) if len(done) >= 2 and done[-1] > done[0] else 0.0
        if done and now - done[-1] > 2.0:  # stalled (source gone): no stale rate
            fps = 0.0
        latencies = list(self._latency_ms)
        score = self.detector.last_score
        return VisionStatus(
            enabled=True, active=self.detector.active, threshold=self.detector.threshold,
            last_score=round(score, 4) if score is not None else None,
            events=self.events, queue_drops=self.queue.drops + self.packet_drops(), analysis_fps=round(fps, 2),
            latency_ms=round(median(latencies), 1) if latencies else None,
            last_snapshot_url=self.snapshots.last_url if self.snapshots is not None else None,
            last_clip_url=self.clips.last_url if self.clips is not None else None,
            last_error=self._artifact_error())

    def _artifact_error(self) -> str | None:
        for writer in (self.snapshots, self.clips):
            health = writer.health if writer is not None else None
            if health is not None and health.failing:
                return f"{health.target}: {health.last_error}"
        return None


class SpeechPipeline:
    """Runs on the decoder's audio thread: VAD is cheap, its queue is the decoder's audio queue."""

    def __init__(self, cfg: SpeechConfig, emit: Callable, on_change: Callable[[], None]) -> None:
        self.vad = VoiceActivityDetector(cfg, AUDIO_RATE)
        self.emit, self.on_change = emit, on_change
        self.queue_drops: Callable[[], int] = lambda: 0
        self.events = 0
        self._epoch: int | None = None

    def offer(self, samples: np.ndarray, seconds: float, epoch: int) -> None:
        events = []
        if epoch != self._epoch:
            events += self.vad.reset()
            self._epoch = epoch
        events += self.vad.process(samples, seconds)
        self._emit(events)

    def epoch_end(self, kind: str) -> None:
        self._emit(self.vad.reset())
        self._epoch = None

    def _emit(self, events: list) -> None:
        for event in events:
            self.emit(event.type, event.data, event.seconds)
            self.events += 1
        if events:
            self.on_change()

    def status(self) -> SpeechStatus:
        vad = self.vad
        return SpeechStatus(enabled=True, active=vad.active, level=round(vad.level, 4), peak=round(vad.peak, 4),
                            start_threshold=vad.start_threshold, stop_threshold=vad.stop_threshold,
                            events=self.events, queue_drops=self.queue_drops())


class Intelligence:
    def __init__(self, decoder: FrameDecoder, vision: VisionPipeline | None, speech: SpeechPipeline | None,
                 clips: ClipRecorder | None, artifacts: ArtifactStore | None = None) -> None:
        self.decoder, self.vision, self.speech, self.clips = decoder, vision, speech, clips
        self.artifacts = artifacts

    @property
    def taps(self) -> list:
        return [t for t in (self.decoder, self.clips) if t is not None]

    def start(self) -> None:
        if self.artifacts is not None:
            self.artifacts.start()
        if self.clips is not None:
            self.clips.start()
        if self.vision is not None:
            self.vision.start()
        self.decoder.start()

    def configure(self, intel: IntelligenceConfig) -> None:
        """The hot part of new settings (HOT_SOURCE_PATHS): motion and speech thresholds and
        timings of the pipelines that run."""
        if self.vision is not None:
            self.vision.configure(intel.vision.motion)
        if self.speech is not None:
            self.speech.vad.configure(intel.speech)

    def status(self) -> tuple[VisionStatus | None, SpeechStatus | None]:
        return (self.vision.status() if self.vision is not None else None,
                self.speech.status() if self.speech is not None else None)

    def close(self, timeout: float = 2.0) -> None:
        """Stops the threads; a clip being written is finished (renamed) first."""
        self.decoder.stop()
        if self.vision is not None:
            self.vision.stop()
        if self.clips is not None:
            self.clips.close(timeout)


def build_intelligence(settings: Settings, src: SourceSettings, events: EventEmitter,
                       on_change: Callable[[], None]) -> Intelligence | None:
    """The pipelines a stream-mode source's config asks for, not started yet; their `taps` go
    to the reader. None when neither vision nor speech is enabled."""
    intel = src.intelligence
    vision_cfg, speech_cfg = intel.vision, intel.speech
    if src.mode != "stream" or not (vision_cfg.enabled or speech_cfg.enabled):
        return None

    def emit(type_: EventType, data: EventData | None, media_time: float | None) -> None:
        try:
            events.emit(type_, data, media_time)
        except RuntimeError:  # the event loop is gone: the worker is exiting
            pass

    def changed() -> None:
        try:
            on_change()
        except RuntimeError:
            pass

    def emit_record(type_: EventType, data: EventData) -> None:
        emit(type_, data, None)

    vision = speech = clips = store = None
    if vision_cfg.enabled:
        snapshots_dir = ArtifactDir.resolve(settings.record_dir, vision_cfg.snapshots.dir, "snapshots")
        clips_dir = ArtifactDir.resolve(settings.record_dir, vision_cfg.clips.dir, "clips")
        dirs = ([snapshots_dir] if vision_cfg.snapshots.enabled else []) + (
            [clips_dir] if vision_cfg.clips.enabled else [])
        if dirs:
            store = ArtifactStore(src.id, intel.artifacts.retention, dirs, settings.source_ids)
        snapshots = (SnapshotWriter(src.id, snapshots_dir, vision_cfg.snapshots.min_interval_usec, store,
                                    WriteHealth("snapshots", snapshots_dir.path, emit_record, changed))
                     if vision_cfg.snapshots.enabled else None)

        def clip_done(data: ArtifactData, seconds: float) -> None:
            emit("clip", data, seconds)
            changed()

        if vision_cfg.clips.enabled:
            clips = ClipRecorder(src.id, clips_dir, vision_cfg.clips, clip_done, store,
                                 health=WriteHealth("clips", clips_dir.path, emit_record, changed))
        vision = VisionPipeline(vision_cfg, emit, changed, snapshots, clips,
                                store.maybe_sweep if store is not None else None)
    if speech_cfg.enabled:
        speech = SpeechPipeline(speech_cfg, emit, changed)

    def epoch_end(kind: str) -> None:
        pipeline = vision if kind == "video" else speech
        if pipeline is not None:
            pipeline.epoch_end(kind)

    decoder = FrameDecoder(
        src.id, every_nth=vision_cfg.every_nth_frame, min_interval_usec=vision_cfg.min_interval_usec,
        on_frame=vision.offer if vision is not None else None,
        on_audio=speech.offer if speech is not None else None,
        on_epoch_end=epoch_end, audio_queue=speech_cfg.queue_depth)
    if vision is not None:
        vision.packet_drops = lambda: decoder.video_queue.drops
    if speech is not None:
        speech.queue_drops = lambda: decoder.audio_queue.drops
    result = Intelligence(decoder, vision, speech, clips, store)
    log.info("intelligence on: vision=%s speech=%s snapshots=%s clips=%s", vision is not None, speech is not None,
             vision_cfg.enabled and vision_cfg.snapshots.enabled, clips is not None)
    return result
