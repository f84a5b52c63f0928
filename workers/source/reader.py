"""Reads one source continuously with PyAV in a thread: opens it, paces files to real time,
loops them, measures what arrives, hands every packet to the taps, and reconnects with backoff
when a camera drops or hangs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import av
import msgspec

from protocol.config import SourceSettings
from protocol.messages import AudioInfo, SourceDescription, SourceStatus, StreamDescription, VideoInfo
from protocol.scrub import scrub_text
from protocol.times import rfc3339
from workers.source.base import LOOP, OpenedSource
from workers.source.container import ContainerSource, SourceUnusable
from workers.source.demo import DemoSource
from workers.source.stats import SourceStats
from workers.source.taps import PacketTap, SourceStreams
from workers.source.timeline import Timeline

log = logging.getLogger("icey.reader")

RETRY_INITIAL_SEC = 0.5
RETRY_MAX_SEC = 10.0
# A live source whose timestamps run this far ahead of the wall clock between two packets has
# jumped (a shared RTSP mount re-basing when another client joins): treat it as a new epoch.
FORWARD_JUMP_SEC = 2.0


def open_source(src: SourceSettings) -> OpenedSource:
    return DemoSource(src.url) if src.kind == "demo" else ContainerSource(src)


class SourceReader(threading.Thread):
    """The status is an immutable SourceStatus swapped whole by this thread, so any thread may
    read it; `on_change(status)` is called (from this thread) whenever it changes. `taps` get every
    packet in order; the last one may consume it (see taps.py)."""

    def __init__(self, src: SourceSettings, on_change: Callable[[SourceStatus], None],
                 taps: list[PacketTap]) -> None:
        super().__init__(name=f"reader-{src.id}", daemon=True)
        self.src = src
        self.on_change = on_change
        self.taps = taps
        self.timeline = Timeline()
        self.stats = SourceStats()
        self._status = SourceStatus()
        self._descriptions: list[StreamDescription] = []  # taken at open: never touch a closed demuxer's streams
        self._format_name: str | None = None
        self._opened_at: str | None = None
        self._stopping = threading.Event()  # not _stop: Thread has one

    # -- what others read ----------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._status.state

    def status(self, now: float) -> SourceStatus:
        """The status with the measured rates of the last few seconds filled in."""
        status = self._status
        video = status.video
        if video is not None:
            fps, kbps = self.stats.video_rates(now)
            video = msgspec.structs.replace(video, fps=fps, bitrate_kbps=kbps,
                                            keyframe_interval_sec=self.stats.keyframe_interval_sec)
        return msgspec.structs.replace(status, video=video, last_packet_mono=self.stats.last_packet_mono)

    def describe(self) -> SourceDescription:
        return SourceDescription(source_id=self.src.id, state=self._status.state, container=self._format_name,
                                 opened_at=self._opened_at, packets=self.stats.packets, bytes=self.stats.bytes,
                                 streams=list(self._descriptions))

    def stop(self) -> None:
        self._stopping.set()

    # -- the thread ------------------------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        self._status = msgspec.structs.replace(self._status, **changes)
        self.on_change(self._status)

    def _on_open(self, source: OpenedSource) -> SourceStreams:
        streams = source.streams()
        vctx, actx = streams.video_codec, streams.audio_codec
        video = audio = None
        if vctx is not None:
            video = VideoInfo(codec=vctx.codec.canonical_name, width=vctx.width, height=vctx.height, fps=0.0,
                              bitrate_kbps=0, keyframe_interval_sec=None)
        if actx is not None:
            audio = AudioInfo(codec=actx.codec.canonical_name, sample_rate=actx.sample_rate, channels=actx.channels)
        self.stats.reset()
        self._descriptions, self._format_name, self._opened_at = streams.describe(), source.format_name, rfc3339()
        log.info("source online: %s", ", ".join(f"{d.type} {d.codec}" for d in self._descriptions))
        self._set(state="online", online_since=rfc3339(), last_error=None, next_retry_at=None, video=video,
                  audio=audio)
        return streams

    def _pump(self, source: OpenedSource, streams: SourceStreams) -> None:
        """Read until the source ends or fails; files are paced to their timestamps."""
        paced = self.src.kind == "file"
        self.timeline.new_epoch()
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
            if pkt is None or kind == LOOP:
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
            seconds = self.timeline.map(raw, kind)  # once per packet: every tap agrees
            for tap in self.taps:
                tap.on_packet(kind, pkt, seconds)

    def run(self) -> None:
        delay = RETRY_INITIAL_SEC
        first = True
        while not self._stopping.is_set():
            if self.state != "failed":  # a missing file stays `failed` while we keep looking
                self._set(state="connecting" if first else "reconnecting")
            source = None
            try:
                source = open_source(self.src)
                streams = self._on_open(source)
                delay = RETRY_INITIAL_SEC
                self._pump(source, streams)
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
            error = scrub_text(error)
            retry = time.time() + delay
            if error != self._status.last_error:
                log.warning("source %s: %s; retrying in %.1fs", state, error, delay)
            self._descriptions = []
            self._set(state=state, last_error=error, next_retry_at=rfc3339(retry), online_since=None, video=None,
                      audio=None, reconnects=self._status.reconnects + 1)
            self._stopping.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SEC)
        self._set(state="stopped")
