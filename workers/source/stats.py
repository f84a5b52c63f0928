"""Rolling measurements of what a source really delivers: fps, bitrate, keyframe interval,
packet age. Fed per packet by the reader thread, read by the state publisher.

Per packet only counters move and one tuple goes into a bounded deque; the window is trimmed
and the rates are worked out when someone asks (about once a second), not per packet. No
lock: the reader thread is the only writer, and `list(deque)` copies in one step under the GIL."""

from __future__ import annotations

from collections import deque

WINDOW_SEC = 5.0
# The window's samples at most: 5 s of video up to 240 fps. A source faster than that only
# shortens the window the rates are measured over.
MAX_SAMPLES = 1200


class SourceStats:
    def __init__(self) -> None:
        self._video: deque[tuple[float, float, int]] = deque(maxlen=MAX_SAMPLES)  # (arrival mono, media s, bytes)
        self._last_key_pts: float | None = None
        self.keyframe_interval_sec: float | None = None
        self.last_packet_mono: float | None = None
        self.packets = 0
        self.video_bytes = 0  # cumulative, across reconnects: the worker's receive counters
        self.audio_bytes = 0

    @property
    def bytes(self) -> int:
        return self.video_bytes + self.audio_bytes

    def reset(self) -> None:
        """A new open: the rates and keyframe interval start afresh (the counters do not)."""
        self._video = deque(maxlen=MAX_SAMPLES)
        self._last_key_pts = None
        self.keyframe_interval_sec = None

    def on_packet(self, is_video: bool, size: int, is_key: bool, pts_sec: float | None, now: float) -> None:
        self.packets += 1
        self.last_packet_mono = now
        if not is_video:
            self.audio_bytes += size
            return
        self.video_bytes += size
        self._video.append((now, now if pts_sec is None else pts_sec, size))
        if is_key and pts_sec is not None:
            if self._last_key_pts is not None and pts_sec > self._last_key_pts:
                self.keyframe_interval_sec = round(pts_sec - self._last_key_pts, 3)
            self._last_key_pts = pts_sec

    def video_rates(self, now: float) -> tuple[float, int]:
        """(fps, kbit/s) of the packets that arrived in the window, over the media time they
        span: a reader that stalls and then catches up (a loaded box) does not read as 50 fps."""
        samples = [s for s in list(self._video) if now - s[0] <= WINDOW_SEC]
        if len(samples) < 2:
            return 0.0, 0
        stamps = sorted(s[1] for s in samples)
        span = stamps[-1] - stamps[0]
        if span <= 0:
            return 0.0, 0
        fps = (len(samples) - 1) / span
        kbps = sum(s[2] for s in samples[1:]) * 8 / span / 1000
        return round(fps, 2), int(kbps)
