"""Reads one source continuously with PyAV in a thread: opens it, paces files to real time,
loops them, measures what arrives, and reconnects with backoff when a camera drops or hangs."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import av

from protocol.config import SourceSettings
from protocol.messages import AudioInfo, StreamDescription, VideoInfo
from protocol.scrub import scrub_text
from protocol.source_kind import local_path
from workers.demo_source import DemoSource
from workers.media_unit import (
    AUDIO_CLOCK,
    VIDEO_CLOCK,
    MediaUnit,
    Timeline,
    avcc_to_annexb_parameter_sets,
    h264_unit,
    opus_unit,
)
from workers.packet_tap import PacketTap, SourceStreams
from workers.source_stats import SourceStats
from workers.transcode import AudioTranscoder, VideoTranscoder, needs_video_transcode

log = logging.getLogger("icey.reader")

RETRY_INITIAL_SEC = 0.5
RETRY_MAX_SEC = 10.0
OPEN_TIMEOUT_SEC = 5.0
# A camera that stops sending for this long is declared gone (PyAV raises on the read timeout).
READ_TIMEOUT_SEC = 3.0
# A live source whose timestamps run this far ahead of the wall clock between two packets has
# jumped (a shared RTSP mount re-basing when another client joins): treat it as a new epoch.
FORWARD_JUMP_SEC = 2.0
# icey's low-latency demux options for live network sources (icey-reference 4.5).
LIVE_OPTIONS = {"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay", "max_delay": "0",
                "reorder_queue_size": "0", "analyzeduration": "500000", "probesize": "200000"}


def rfc3339(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SourceUnusable(Exception):
    """The source's config cannot work as it stands (a missing file): state `failed`."""


class ContainerSource:
    """A file, camera, device or URL opened with PyAV's demuxer."""

    def __init__(self, src: SourceSettings) -> None:
        self.src = src
        url, fmt, options = src.url, None, {}
        if src.kind == "file":
            url = local_path(src.url) or src.url
            if not os.path.isfile(url):
                raise SourceUnusable(f"Local media source not found: {url}")
        elif src.kind == "device":
            url, fmt = (src.url[5:] if src.url.startswith("v4l2:") else src.url), "v4l2"
            options = {"framerate": str(src.video.fps), "video_size": f"{src.video.width}x{src.video.height}"}
        elif src.live:
            options = dict(LIVE_OPTIONS) if src.kind == "rtsp" else {}
        self.container = av.open(url, format=fmt, options=options, timeout=(OPEN_TIMEOUT_SEC, READ_TIMEOUT_SEC))
        self.format_name = self.container.format.name
        self.video = next((s for s in self.container.streams.video), None)
        self.audio = next((s for s in self.container.streams.audio), None)
        if self.video is None and self.audio is None:
            raise av.error.InvalidDataError(0, "source has neither video nor audio")

    def packets(self) -> Iterator[tuple[str, av.Packet]]:
        streams = [s for s in (self.video, self.audio) if s is not None]
        while True:
            for pkt in self.container.demux(streams):
                if pkt.size == 0:  # demuxer flush marker
                    continue
                yield pkt.stream.type, pkt
            if not self.src.loop:
                return
            self.container.seek(0)
            yield "loop", None  # type: ignore[misc]

    def close(self) -> None:
        self.container.close()


class Delivery:
    """Turns demuxed packets into MediaUnits for viewers: passthrough where the browser can take
    the source as is (Annex B conversion and in-band parameter sets only), else one shared
    transcode. Runs in the reader thread. `offset` maps the source's timestamps onto the
    continuous timeline (it is the Timeline's, computed once per packet by the reader)."""

    def __init__(self, source: DemoSource | ContainerSource, sink: Callable[[MediaUnit], None], video_cfg) -> None:
        self.sink = sink
        self.video_mode = self.audio_mode = None
        self._bsf = None
        self._vtx = self._atx = None
        self._parameter_sets = b""
        video, audio = (source.video, source.audio)
        if isinstance(source, DemoSource):
            self.video_mode, self.audio_mode = "passthrough", "passthrough"
            return
        if video is not None:
            if needs_video_transcode(video):
                self.video_mode, self._vtx = "transcode", VideoTranscoder(video, video_cfg)
            else:
                self.video_mode = "passthrough"
                extradata = video.codec_context.extradata or b""
                self._parameter_sets = avcc_to_annexb_parameter_sets(extradata)
                if extradata[:1] == b"\x01":  # avcC (MP4/MKV): length-prefixed NALs, browsers need Annex B
                    self._bsf = av.BitStreamFilterContext("h264_mp4toannexb", video)
        if audio is not None:
            if audio.codec_context.name == "opus":
                self.audio_mode = "passthrough"
            else:
                self.audio_mode, self._atx = "transcode", AudioTranscoder(audio)

    def video(self, pkt: av.Packet, offset: float) -> None:
        if self._vtx is not None:
            for data, seconds, key in self._vtx.encode(pkt):
                self.sink(h264_unit(data, round((seconds + offset) * VIDEO_CLOCK), key, b""))
            return
        # The filter takes the packet's data over (pkt is empty after it): read only its outputs.
        for p in (self._bsf.filter(pkt) if self._bsf is not None else (pkt,)):
            if p.pts is None or p.time_base is None:
                continue
            stamp = round((float(p.pts * p.time_base) + offset) * VIDEO_CLOCK)
            self.sink(h264_unit(bytes(p), stamp, p.is_keyframe, self._parameter_sets))

    def audio(self, pkt: av.Packet, offset: float) -> None:
        if self._atx is not None:
            now = float(pkt.pts * pkt.time_base)
            for data, seconds in self._atx.encode(pkt):
                if abs(seconds - now) < 1.0:  # else it is the encoder's tail from before a loop/reconnect
                    self.sink(opus_unit(data, round((seconds + offset) * AUDIO_CLOCK)))
            return
        self.sink(opus_unit(bytes(pkt), round((float(pkt.pts * pkt.time_base) + offset) * AUDIO_CLOCK)))


def _describe(kind: str, index: int, ctx: av.codec.context.CodecContext, time_base: object) -> StreamDescription:
    return StreamDescription(
        index=index, type=kind, codec=ctx.codec.canonical_name, profile=getattr(ctx, "profile", None),
        time_base=str(time_base) if time_base is not None else None,
        width=getattr(ctx, "width", None) if kind == "video" else None,
        height=getattr(ctx, "height", None) if kind == "video" else None,
        pix_fmt=(ctx.pix_fmt if kind == "video" else None),
        sample_rate=getattr(ctx, "sample_rate", None) if kind == "audio" else None,
        channels=getattr(ctx, "channels", None) if kind == "audio" else None,
        has_extradata=bool(ctx.extradata))


class SourceReader(threading.Thread):
    """State lives in plain attributes written by this thread; `on_change` is called (from this
    thread) whenever something worth an immediate state push changes."""

    def __init__(self, src: SourceSettings, on_change: Callable[[], None],
                 sink: Callable[[MediaUnit], None] | None = None) -> None:
        super().__init__(name=f"reader-{src.id}", daemon=True)
        self.src = src
        self.on_change = on_change
        self.sink = sink or (lambda unit: None)
        self.taps: list[PacketTap] = []
        self.timeline = Timeline()
        self.video_delivery: str | None = None
        self.audio_delivery: str | None = None
        self.stats = SourceStats()
        self.state = "starting"
        self.online_since: str | None = None
        self.last_error: str | None = None
        self.next_retry_at: str | None = None
        self.reconnects = 0
        self.video: VideoInfo | None = None
        self.audio: AudioInfo | None = None
        self.container_name: str | None = None
        self.opened_at: str | None = None
        self.streams: list[StreamDescription] = []
        self._stopping = threading.Event()  # not _stop: Thread has one

    def stop(self) -> None:
        self._stopping.set()

    def _set(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.on_change()

    def _open(self) -> DemoSource | ContainerSource:
        if self.src.kind == "demo":
            return DemoSource(self.src.url)
        return ContainerSource(self.src)

    def _on_open(self, source: DemoSource | ContainerSource) -> None:
        streams: list[StreamDescription] = []
        video = audio = None
        if isinstance(source, DemoSource):
            vctx, actx = source.video, source.audio
            streams = [_describe("video", 0, vctx, vctx.time_base), _describe("audio", 1, actx, actx.time_base)]
        else:
            vctx = source.video.codec_context if source.video is not None else None
            actx = source.audio.codec_context if source.audio is not None else None
            streams = [_describe(s.type, s.index, s.codec_context, s.time_base)
                       for s in (source.video, source.audio) if s is not None]
        if vctx is not None:
            video = VideoInfo(codec=vctx.codec.canonical_name, width=vctx.width, height=vctx.height, fps=0.0,
                              bitrate_kbps=0, keyframe_interval_sec=None)
        if actx is not None:
            audio = AudioInfo(codec=actx.codec.canonical_name, sample_rate=actx.sample_rate, channels=actx.channels)
        self.stats.reset()
        log.info("source online: %s", ", ".join(f"{d.type} {d.codec}" for d in streams))
        self._set(state="online", online_since=rfc3339(time.time()), last_error=None, next_retry_at=None,
                  video=video, audio=audio, container_name=source.format_name, opened_at=rfc3339(time.time()),
                  streams=streams)

    def _pump(self, source: DemoSource | ContainerSource) -> None:
        """Read until the source ends or fails; files are paced to their timestamps."""
        paced = self.src.kind == "file"
        self.timeline.new_epoch()
        delivery = Delivery(source, self.sink, self.src.video)
        self.video_delivery, self.audio_delivery = delivery.video_mode, delivery.audio_mode
        if isinstance(source, DemoSource):
            streams = SourceStreams(None, None, source.video, source.audio)
        else:
            streams = SourceStreams(source.video, source.audio,
                                    source.video.codec_context if source.video else None,
                                    source.audio.codec_context if source.audio else None)
        for tap in self.taps:
            tap.on_open(streams)
        wall0: float | None = None
        ts0 = 0.0
        loop_offset = last_ts = 0.0
        first_raw: float | None = None  # a file's first timestamp (MPEG-TS starts at ~1.4 s, not 0)
        previous: dict[str, tuple[float, float]] = {}  # kind -> (arrival, raw timestamp) of the last packet
        for kind, pkt in source.packets():
            if self._stopping.is_set():
                return
            if kind == "loop":
                # Pacing continues across the loop: the file's start comes right after its end.
                loop_offset = last_ts + 0.04 - (first_raw or 0.0)
                self.timeline.new_epoch()
                continue
            now = time.monotonic()
            ts = None
            stamp = pkt.dts if pkt.dts is not None else pkt.pts
            if stamp is not None and pkt.time_base is not None:
                raw_ts = float(stamp * pkt.time_base)
                if first_raw is None:
                    first_raw = raw_ts
                ts = raw_ts + loop_offset
                last_ts = max(last_ts, ts)
            if paced and ts is not None:
                if wall0 is None:
                    wall0, ts0 = now, ts
                delay = wall0 + (ts - ts0) - now
                if delay > 0:
                    self._stopping.wait(delay)
                    now = time.monotonic()
            self.stats.on_packet(kind == "video", pkt.size, pkt.is_keyframe, ts, now)
            if pkt.pts is None or pkt.time_base is None:
                continue
            raw = float(pkt.pts * pkt.time_base)
            if self.src.live and kind in previous:
                arrived, before = previous[kind]
                if (raw - before) - (now - arrived) > FORWARD_JUMP_SEC:
                    self.timeline.jumped(kind)  # a live clock leapt ahead of real time: no gap downstream
            previous[kind] = (now, raw)
            seconds = self.timeline.map(raw, kind)  # once per packet: taps and viewers agree
            for tap in self.taps:  # before delivery: a bitstream filter empties the packet
                tap.on_packet(kind, pkt, seconds)
            if kind == "video":
                delivery.video(pkt, seconds - raw)
            else:
                delivery.audio(pkt, seconds - raw)

    def run(self) -> None:
        delay = RETRY_INITIAL_SEC
        first = True
        while not self._stopping.is_set():
            if self.state != "failed":  # a missing file stays `failed` while we keep looking
                self._set(state="connecting" if first else "reconnecting")
            source = None
            try:
                source = self._open()
                self._on_open(source)
                delay = RETRY_INITIAL_SEC
                self._pump(source)
                if self._stopping.is_set():
                    break
                error, state = "source ended", "reconnecting"
            except SourceUnusable as exc:
                error, state = str(exc), "failed"
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                error, state = f"{type(exc).__name__}: {exc}", "reconnecting"
            finally:
                if source is not None:
                    for tap in self.taps:
                        tap.on_close("stopped" if self._stopping.is_set() else "source lost")
                    try:
                        source.close()
                    except Exception:  # closing a broken demuxer must not kill the reader
                        pass
            if self._stopping.is_set():
                break
            first = False
            self.reconnects += 1
            error = scrub_text(error)
            retry = datetime.now(UTC) + timedelta(seconds=delay)
            if error != self.last_error:
                log.warning("source %s: %s; retrying in %.1fs", state, error, delay)
            self._set(state=state, last_error=error, next_retry_at=rfc3339(retry.timestamp()),
                      online_since=None, video=None, audio=None, streams=[])
            self._stopping.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SEC)
        self._set(state="stopped")
