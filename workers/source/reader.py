"""Reads one source continuously with PyAV in a thread: opens it, paces files to real time,
loops them, measures what arrives, hands every packet to the taps, and reconnects with backoff
when a camera drops or hangs.

Pacing a file costs a wake-up per packet, and on this kind of machine a wake-up (a timed wait,
then the interpreter, demuxer and taps running with cold caches) costs far more than the
packet's own Python. While nobody watches (`watched()` false) nothing needs a packet at its
exact time, so the reader sleeps IDLE_PACING_SLACK_SEC past the due time and then hands over
every packet that has come due in one go: a few wake-ups a second instead of one per frame.
An RTSP camera (over TCP) wakes the reader with every frame it sends; unwatched, a read that
had to wait for its packet is followed by a hold of the same length, in which the next frames
gather in the socket, to be read in one go.

Nothing that goes wrong while reading ends the thread: any error of an open source (the
source's own, a tap's on open, a bug) reopens it with backoff and shows in lastError; a packet
a tap cannot take is dropped for that tap and counted (droppedUnits). `reconnects` counts
outages (an open source lost), `reconnectAttempts` every reopening tried."""

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
from workers.fault_injection import fault_point
from workers.source.base import LOOP, Interrupted, OpenedSource
from workers.source.container import OPEN_TIMEOUT_SEC, ContainerSource, SourceUnusable
from workers.source.demo import DemoSource
from workers.source.h264 import MalformedUnit
from workers.source.stats import SourceStats
from workers.source.taps import PacketTap, SourceStreams
from workers.source.timeline import Timeline
from workers.source.watchdog import read_timeout, stall_timeout
from workers.threads import GUARD

log = logging.getLogger("icey.reader")

RETRY_INITIAL_SEC = 0.5
RETRY_MAX_SEC = 10.0
# A live source whose timestamps run this far ahead of the wall clock between two packets has
# jumped (a shared RTSP mount re-basing when another client joins): treat it as a new epoch.
FORWARD_JUMP_SEC = 2.0
# How late a file's packets may reach the taps while nobody watches (recording, stills, vision
# and the stats do not need them on the frame).
IDLE_PACING_SLACK_SEC = 0.25
# A read that took longer than this waited for the source: nothing was buffered.
BLOCKED_READ_SEC = 0.005


def open_source(src: SourceSettings) -> OpenedSource:
    return DemoSource(src.url) if src.kind == "demo" else ContainerSource(src, read_timeout(src))


class SourceReader(threading.Thread):
    """The status is an immutable SourceStatus swapped whole (by this thread, or by the stall
    watchdog through `stall_if_idle`), so any thread may read it; `on_change(status)` is called
    on every change, from the thread that made it. `taps` get every packet in order.
    `watched()` (any thread's answer will do) says whether someone needs the packets on time."""

    def __init__(self, src: SourceSettings, on_change: Callable[[SourceStatus], None],
                 taps: list[PacketTap], watched: Callable[[], bool] = lambda: True) -> None:
        super().__init__(name=f"reader-{src.id}", daemon=True)
        self.src = src
        self.on_change = on_change
        self.taps = taps
        self.watched = watched
        self.timeline = Timeline()
        self.stats = SourceStats()
        self._status = SourceStatus()
        self._descriptions: list[StreamDescription] = []  # taken at open: never touch a closed demuxer's streams
        self._format_name: str | None = None
        self._opened_at: str | None = None
        self._stopping = threading.Event()  # not _stop: Thread has one
        self._lock = threading.Lock()  # status changes: this thread and the watchdog
        self._wake = threading.Event()  # ends a pacing wait early: stop(), a stall or hurry()
        self._source: OpenedSource | None = None
        self._opened_mono = 0.0
        self._stall: tuple[float, str] | None = None  # (when, why) the watchdog declared this open stalled
        self.stall_timeout_sec = stall_timeout(src, None)
        self.dropped_units = 0
        self._drop_logged = False

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
        return msgspec.structs.replace(status, video=video, last_packet_mono=self.stats.last_packet_mono,
                                       dropped_units=self.dropped_units)

    def describe(self) -> SourceDescription:
        return SourceDescription(source_id=self.src.id, state=self._status.state, container=self._format_name,
                                 opened_at=self._opened_at, packets=self.stats.packets, bytes=self.stats.bytes,
                                 streams=list(self._descriptions))

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        source = self._source
        if source is not None:
            source.interrupt()

    def hurry(self) -> None:
        """A viewer is joining (event loop): end an idle hold or loose pacing wait now, so live
        frames follow its GOP replay without the up to 0.25 s an unwatched source may lag."""
        self._wake.set()

    def _pause(self, seconds: float) -> bool:
        """Wait up to `seconds` (reader thread); False when the reader is stopping. A wait that
        `hurry` cut short re-arms the event: only stop() and a stall leave it set."""
        if self._wake.wait(seconds) and not self._stopping.is_set() and self._stall is None:
            self._wake.clear()  # stop() and a stall set their flag before the event: checked below
        if self._stopping.is_set():
            return False
        if self._stall is not None:
            raise Interrupted()
        return True

    # -- the stall watchdog (another thread) -------------------------------------------------------

    @property
    def stalled_mono(self) -> float | None:
        """When the open source was declared stalled, while this reader has not let go of it."""
        stall = self._stall
        return stall[0] if stall is not None and self._status.state == "stalled" else None

    def stall_if_idle(self, now: float) -> None:
        """An online source without a packet for its stall timeout becomes `stalled`, and this
        reader is asked to let go of it (it then reconnects)."""
        with self._lock:
            if self._status.state != "online":
                return
            since = max(self.stats.last_packet_mono or 0.0, self._opened_mono)
            if now - since < self.stall_timeout_sec:
                return
            self._stall = (now, f"stalled: no packet since {rfc3339(time.time() - (now - since))} "
                                f"(stallTimeoutSec {self.stall_timeout_sec:g})")
            self._set_locked(state="stalled")
        log.warning("source %s", self._stall[1])
        self._wake.set()
        source = self._source
        if source is not None:
            source.interrupt()

    # -- the thread ------------------------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._set_locked(**changes)

    def _set_locked(self, **changes: object) -> None:
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
        vstream = streams.video_stream
        rate = (vstream.average_rate or vstream.guessed_rate) if vstream is not None else None
        self.stall_timeout_sec = stall_timeout(self.src, float(rate) if rate else None)
        self._drop_logged = False
        log.info("source online: %s", ", ".join(f"{d.type} {d.codec}" for d in self._descriptions))
        with self._lock:
            self._stall, self._opened_mono = None, time.monotonic()
            self._wake.clear()
            if self._stopping.is_set():
                self._wake.set()
            self._set_locked(state="online", online_since=rfc3339(), last_error=None, next_retry_at=None,
                             video=video, audio=audio)
        return streams

    def _pump(self, source: OpenedSource, streams: SourceStreams) -> None:
        """Read until the source ends or fails; files are paced to their timestamps."""
        paced = self.src.kind == "file"
        held = self.src.kind == "rtsp"  # TCP: the kernel keeps what arrives during a hold
        handed = time.monotonic()  # when the last packet was handed over: a later arrival had to wait
        self.timeline.new_epoch()
        for tap in self.taps:
            tap.on_open(streams)
        wall0: float | None = None
        ts0 = 0.0
        loop_offset = last_ts = 0.0
        first_raw: float | None = None  # a file's first timestamp (MPEG-TS starts at ~1.4 s, not 0)
        previous: dict[str, tuple[float, float]] = {}  # kind -> (arrival, raw timestamp) of the last packet
        bases: dict[str, float | None] = {}  # kind -> its time base as a float (PyAV makes a new Fraction)
        for kind, pkt in source.packets():
            fault_point("reader")
            if self._stopping.is_set():
                return
            if self._stall is not None:
                raise Interrupted()
            if pkt is None or kind == LOOP:
                # Pacing continues across the loop: the file's start comes right after its end.
                loop_offset = last_ts + 0.04 - (first_raw or 0.0)
                self.timeline.new_epoch()
                continue
            now = time.monotonic()
            ts = None
            if kind in bases:
                base = bases[kind]
            else:
                tb = pkt.time_base
                base = bases[kind] = float(tb) if tb is not None else None
            pts = pkt.pts
            dts = pkt.dts
            stamp = dts if dts is not None else pts
            if stamp is not None and base is not None:
                raw_ts = stamp * base
                if first_raw is None:
                    first_raw = raw_ts
                ts = raw_ts + loop_offset
                last_ts = max(last_ts, ts)
            if held and now - handed > BLOCKED_READ_SEC and not self.watched():
                if not self._pause(IDLE_PACING_SLACK_SEC):
                    return
                now = time.monotonic()
            if paced and ts is not None:
                if wall0 is None:
                    wall0, ts0 = now, ts
                delay = wall0 + (ts - ts0) - now
                if delay > 0:
                    if not self._pause(delay if self.watched() else delay + IDLE_PACING_SLACK_SEC):
                        return
                    now = time.monotonic()
            self.stats.on_packet(kind == "video", pkt.size, pkt.is_keyframe, ts, now)
            if pts is None or base is None:
                continue
            raw = pts * base
            if self.src.live and kind in previous:
                arrived, before = previous[kind]
                if (raw - before) - (now - arrived) > FORWARD_JUMP_SEC:
                    self.timeline.jumped(kind)  # a live clock leapt ahead of real time: no gap downstream
            previous[kind] = (now, raw)
            seconds = self.timeline.map(raw, kind)  # once per packet: every tap agrees
            dropped = False
            for tap in self.taps:
                try:
                    tap.on_packet(kind, pkt, seconds)
                except Exception as exc:  # this unit is lost to this tap; the stream goes on
                    dropped = True
                    self._log_drop(kind, tap, exc)
            if dropped:
                self.dropped_units += 1
            handed = time.monotonic()

    def _log_drop(self, kind: str, tap: PacketTap, exc: Exception) -> None:
        """The first drop of each open is logged (with its traceback if it is not a known
        malformation); the rest are only counted."""
        if self._drop_logged:
            return
        self._drop_logged = True
        log.warning("dropped a %s unit %s could not take (%s: %s); further drops are only counted",
                    kind, type(tap).__name__, type(exc).__name__, exc, exc_info=not isinstance(exc, MalformedUnit))

    def _failure(self, exc: Exception, opened: bool) -> str:
        """What lastError says of an error that ended an open (or an attempt to open)."""
        if opened and self._stall is not None:
            return self._stall[1]  # the reader let go because the watchdog asked it to
        if isinstance(exc, av.error.ExitError):  # PyAV's timeout; FFmpeg says "Immediate exit requested"
            return (f"stalled: no packet for {read_timeout(self.src):g}s" if opened
                    else f"no answer within {OPEN_TIMEOUT_SEC:g}s")
        if not isinstance(exc, av.error.FFmpegError | OSError | ValueError | Interrupted):
            log.error("unexpected error reading the source", exc_info=exc)  # a bug: its traceback is wanted
        return f"{type(exc).__name__}: {exc}"

    def run(self) -> None:
        GUARD.run(self.name, self._read)

    def _read(self) -> None:
        delay = RETRY_INITIAL_SEC
        first = True
        while not self._stopping.is_set():
            attempts = self._status.reconnect_attempts + (0 if first else 1)
            if self.state == "failed":  # a missing file stays `failed` while we keep looking
                self._set(reconnect_attempts=attempts)
            else:
                self._set(state="connecting" if first else "reconnecting", reconnect_attempts=attempts)
            source = None
            opened = False
            try:
                source = self._source = open_source(self.src)
                streams = self._on_open(source)
                opened = True
                delay = RETRY_INITIAL_SEC
                self._pump(source, streams)
                if self._stopping.is_set():
                    break
                error, state = "source ended", "reconnecting"
            except SourceUnusable as exc:
                error, state = str(exc), "failed"
            except Exception as exc:  # whatever it is, reopening with backoff is the way on
                error, state = self._failure(exc, opened), "reconnecting"
            finally:
                self._source = None
                if source is not None:
                    for tap in self.taps:
                        try:
                            tap.on_close("stopped" if self._stopping.is_set() else "source lost")
                        except Exception:  # the source is going anyway: the other taps must still hear it
                            log.exception("%s failed on close", type(tap).__name__)
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
                      audio=None, reconnects=self._status.reconnects + (1 if opened else 0))
            self._stopping.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SEC)
        self._set(state="stopped")
