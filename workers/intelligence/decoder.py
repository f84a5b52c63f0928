"""The one decoder of a source, shared by everything that needs its pictures or its sound.

A PacketTap: on the reader thread it only clones the packet into a bounded queue (the oldest
packet goes when it is full, and is counted), so a slow analysis never slows the reader or the
viewers. Its own threads decode: video with one codec context per source epoch, audio likewise,
resampled to a fixed rate and averaged to float mono.

Every video packet is decoded (P-frames need their references); after a dropped packet, video is
skipped until the next keyframe rather than decoded into garbage (which would read as motion).
Only sampled frames (`everyNthFrame`, `minIntervalUsec`) are turned into
numpy: the luma plane, as a view of the decoded frame when the pixel format has one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from workers.source.taps import SourceStreams, clone_packet
from workers.threads import GUARD

log = logging.getLogger("icey.decoder")

AUDIO_RATE = 16_000
VIDEO_PACKET_QUEUE = 120  # ~4 s at 30 fps before the oldest packet is dropped
# Timestamps jitter (a camera's 90 kHz clock, rounding): a frame this close to the interval counts.
SAMPLER_SLACK_USEC = 2_000
# 8-bit formats whose plane 0 is luma (icey assumes it for every format; others are converted).
LUMA_PLANE_FORMATS = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
                      "yuv411p", "yuvj411p", "yuv410p", "nv12", "nv21", "nv16", "gray", "yuva420p"}


class BoundedQueue:
    """Thread-safe FIFO that drops its OLDEST item when full and counts the drops."""

    def __init__(self, depth: int) -> None:
        self.depth = max(1, depth)
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self.drops = 0
        self._dropped_since_get = False
        self.closed = False

    def put(self, item: Any) -> None:
        with self._cond:
            if len(self._items) >= self.depth:
                self._items.popleft()
                self.drops += 1
                self._dropped_since_get = True
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float) -> tuple[Any, bool]:
        """(item or None on timeout/close, whether anything was dropped since the last get)."""
        with self._cond:
            if not self._items and not self.closed:
                self._cond.wait(timeout)
            dropped, self._dropped_since_get = self._dropped_since_get, False
            return (self._items.popleft() if self._items else None), dropped

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class FrameSampler:
    """Forwards frames 1, N+1, 2N+1, ... and, with an interval, none closer than it after the
    last forwarded one (a timestamp going backwards is allowed), as icey's FrameSampler."""

    def __init__(self, every_nth: int, min_interval_usec: int) -> None:
        self.every_nth = max(1, every_nth)
        self.min_interval = max(0, min_interval_usec)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.last_usec: int | None = None

    def accept(self, pts_usec: int) -> bool:
        self.count += 1
        if (self.count - 1) % self.every_nth:
            return False
        if (self.min_interval and self.last_usec is not None
                and self.last_usec <= pts_usec < self.last_usec + self.min_interval - SAMPLER_SLACK_USEC):
            return False
        self.last_usec = pts_usec
        return True


@dataclass(frozen=True, slots=True)
class CodecParams:
    name: str
    extradata: bytes | None
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    layout: str | None = None
    time_base: Fraction | None = None

    @classmethod
    def of(cls, ctx: av.CodecContext | None, time_base: Fraction | None) -> CodecParams | None:
        if ctx is None:
            return None
        name = ctx.codec.name
        if name in ("libx264", "libopenh264", "h264_v4l2m2m"):
            name = "h264"
        elif name == "libopus":
            name = "opus"
        if isinstance(ctx, av.AudioCodecContext):
            layout = ctx.layout.name if ctx.layout is not None else None
            return cls(name, ctx.extradata, sample_rate=ctx.sample_rate, layout=layout, time_base=time_base)
        assert isinstance(ctx, av.VideoCodecContext)
        return cls(name, ctx.extradata, width=ctx.width, height=ctx.height, time_base=time_base)

    def decoder(self) -> av.CodecContext:
        ctx = av.CodecContext.create(self.name, "r")
        if self.extradata:
            ctx.extradata = self.extradata
        if isinstance(ctx, av.AudioCodecContext):
            if self.sample_rate:
                ctx.sample_rate = self.sample_rate
            if self.layout:
                ctx.layout = self.layout
        elif isinstance(ctx, av.VideoCodecContext) and self.width:
            ctx.width, ctx.height = self.width, self.height
            ctx.thread_type = "SLICE"  # frame threading would delay every frame by a frame per thread
        return ctx


@dataclass(slots=True)
class SampledFrame:
    frame: av.VideoFrame  # kept for snapshots
    luma: np.ndarray  # (height, width) uint8, plane 0
    seconds: float  # on the reader's continuous timeline
    arrival: float  # time.monotonic() when its packet reached the tap
    epoch: int
    keyframe: bool

    @property
    def pts_usec(self) -> int:
        return round(self.seconds * 1e6)


def luma_of(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name in LUMA_PLANE_FORMATS:
        plane = frame.planes[0]
        return np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
    return frame.to_ndarray(format="gray")


_CLOSED = object()  # queued by on_close


@dataclass(slots=True)
class _Item:
    epoch: int
    params: CodecParams
    packet: av.Packet
    seconds: float
    arrival: float


class FrameDecoder:
    """`on_frame(SampledFrame)` and `on_audio(samples, seconds, epoch)` run on this decoder's
    threads; either may be None (that kind is then neither queued nor decoded). `on_epoch_end(kind)`
    (on that kind's thread) tells its consumer that the source closed."""

    def __init__(self, name: str, *, every_nth: int = 6, min_interval_usec: int = 200_000,
                 on_frame: Callable[[SampledFrame], None] | None = None,
                 on_audio: Callable[[np.ndarray, float, int], None] | None = None,
                 on_epoch_end: Callable[[str], None] | None = None,
                 video_queue: int = VIDEO_PACKET_QUEUE, audio_queue: int = 32, audio_rate: int = AUDIO_RATE) -> None:
        self.name = name
        self.on_frame, self.on_audio, self.on_epoch_end = on_frame, on_audio, on_epoch_end
        self.sampler = FrameSampler(every_nth, min_interval_usec)
        self.audio_rate = audio_rate
        self.video_queue = BoundedQueue(video_queue)
        self.audio_queue = BoundedQueue(audio_queue)
        self.epoch = 0
        # The last decoded video frame and when its packet arrived (time.monotonic()), sampled or
        # not: snapshots reuse it instead of decoding the source a second time.
        self.latest: tuple[av.VideoFrame, float] | None = None
        self._video: CodecParams | None = None
        self._audio: CodecParams | None = None
        self._stop = threading.Event()
        self._threads = []
        if on_frame is not None:
            self._threads.append(GUARD.thread(f"decode-video-{name}", self._video_loop))
        if on_audio is not None:
            self._threads.append(GUARD.thread(f"decode-audio-{name}", self._audio_loop))

    # PacketTap, on the reader thread: quick, and never keeps the reader's packet.
    def on_open(self, streams: SourceStreams) -> None:
        vtb = streams.video_stream.time_base if streams.video_stream is not None else (
            streams.video_codec.time_base if streams.video_codec is not None else None)
        atb = streams.audio_stream.time_base if streams.audio_stream is not None else (
            streams.audio_codec.time_base if streams.audio_codec is not None else None)
        self._video = CodecParams.of(streams.video_codec, vtb) if self.on_frame is not None else None
        self._audio = CodecParams.of(streams.audio_codec, atb) if self.on_audio is not None else None
        self.epoch += 1

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        if kind == "video":
            if self._video is not None:
                self.video_queue.put(_Item(self.epoch, self._video, clone_packet(packet), seconds, time.monotonic()))
        elif self._audio is not None:
            self.audio_queue.put(_Item(self.epoch, self._audio, clone_packet(packet), seconds, time.monotonic()))

    def on_close(self, reason: str) -> None:
        # Best effort: should the marker be dropped, the next epoch number tells the same.
        if self._video is not None:
            self.video_queue.put(_CLOSED)
        if self._audio is not None:
            self.audio_queue.put(_CLOSED)
        self._video = self._audio = None

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.video_queue.close()
        self.audio_queue.close()

    def _video_loop(self) -> None:
        self._guarded(self._video_steps)

    def _audio_loop(self) -> None:
        self._guarded(self._audio_steps)

    def _guarded(self, steps: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                steps()
            except Exception:  # a bug must not end decoding for good; the next epoch starts clean
                log.exception("decoder error")
                time.sleep(0.1)

    def _video_steps(self) -> None:
        epoch, ctx, need_key = -1, None, True
        while not self._stop.is_set():
            item, dropped = self.video_queue.get(0.5)
            if dropped:
                need_key = True
            if item is None:
                continue
            if item is _CLOSED:
                if self.on_epoch_end is not None:
                    self.on_epoch_end("video")
                continue
            if item.epoch != epoch:
                epoch, need_key = item.epoch, True
                self.sampler.reset()
                try:
                    ctx = item.params.decoder()
                except (av.error.FFmpegError, ValueError) as exc:
                    log.warning("cannot decode %s video: %s", item.params.name, exc)
                    ctx = None
            if ctx is None:
                continue
            pkt = item.packet
            if need_key and not pkt.is_keyframe:
                continue
            need_key = False
            tb = pkt.time_base
            offset = item.seconds - float(pkt.pts * tb)  # timeline shift of this epoch
            try:
                frames = ctx.decode(pkt)
            except av.error.FFmpegError as exc:
                need_key = True
                log.debug("video decode error: %s", exc)
                continue
            for frame in frames:
                self.latest = (frame, item.arrival)
                ftb = frame.time_base or tb
                seconds = float(frame.pts * ftb) + offset if frame.pts is not None else item.seconds
                if not self.sampler.accept(round(seconds * 1e6)):
                    continue
                try:
                    luma = luma_of(frame)
                except (ValueError, av.error.FFmpegError) as exc:
                    log.debug("no luma plane: %s", exc)
                    continue
                assert self.on_frame is not None  # the video thread runs only for it
                self.on_frame(SampledFrame(frame, luma, seconds, item.arrival, epoch, bool(frame.key_frame)))

    def _audio_steps(self) -> None:
        epoch, ctx, resampler = -1, None, None
        while not self._stop.is_set():
            item, _ = self.audio_queue.get(0.5)
            if item is None:
                continue
            if item is _CLOSED:
                if self.on_epoch_end is not None:
                    self.on_epoch_end("audio")
                continue
            if item.epoch != epoch:
                epoch = item.epoch
                try:
                    ctx = item.params.decoder()
                except (av.error.FFmpegError, ValueError) as exc:
                    log.warning("cannot decode %s audio: %s", item.params.name, exc)
                    ctx = None
                # Planar float, every channel kept: their mean is the mono signal (FFmpeg's own
                # downmix adds correlated channels at -3 dB each, +3 dB overall: over full scale).
                resampler = av.AudioResampler(format="fltp", rate=self.audio_rate)
            if ctx is None or resampler is None:
                continue
            pkt = item.packet
            try:
                frames = ctx.decode(pkt)
                chunks = [r for f in frames for r in resampler.resample(f)]
            except (av.error.FFmpegError, ValueError) as exc:
                log.debug("audio decode error: %s", exc)
                continue
            seconds = item.seconds
            for chunk in chunks:
                planes = chunk.to_ndarray()
                samples = planes.mean(axis=0) if planes.ndim == 2 and planes.shape[0] > 1 else planes.reshape(-1)
                assert self.on_audio is not None  # the audio thread runs only for it
                self.on_audio(samples, seconds, epoch)
                seconds += len(samples) / self.audio_rate
