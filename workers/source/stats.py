"""Rolling measurements of what a source really delivers: fps, bitrate, keyframe interval,
packet age. Fed per packet by the reader thread, read by the state publisher."""

from __future__ import annotations

import threading
from collections import deque

WINDOW_SEC = 5.0


class SourceStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._video: deque[tuple[float, float, int]] = deque()  # (arrival mono, media seconds, bytes)
        self._last_key_pts: float | None = None
        self.keyframe_interval_sec: float | None = None
        self.last_packet_mono: float | None = None
        self.packets = 0
        self.bytes = 0
        self.video_bytes = 0  # cumulative, across reconnects: the worker's receive counters
        self.audio_bytes = 0

    def reset(self) -> None:
        with self._lock:
            self._video.clear()
            self._last_key_pts = None
            self.keyframe_interval_sec = None

    def on_packet(self, is_video: bool, size: int, is_key: bool, pts_sec: float | None, now: float) -> None:
        with self._lock:
            self.packets += 1
            self.bytes += size
            self.last_packet_mono = now
            if not is_video:
                self.audio_bytes += size
                return
            self.video_bytes += size
            self._video.append((now, now if pts_sec is None else pts_sec, size))
            while self._video and now - self._video[0][0] > WINDOW_SEC:
                self._video.popleft()
            if is_key and pts_sec is not None:
                if self._last_key_pts is not None and pts_sec > self._last_key_pts:
                    self.keyframe_interval_sec = round(pts_sec - self._last_key_pts, 3)
                self._last_key_pts = pts_sec

    def video_rates(self, now: float) -> tuple[float, int]:
        """(fps, kbit/s) of the packets that arrived in the window, over the media time they
        span: a reader that stalls and then catches up (a loaded box) does not read as 50 fps."""
        with self._lock:
            samples = [s for s in self._video if now - s[0] <= WINDOW_SEC]
        if len(samples) < 2:
            return 0.0, 0
        stamps = sorted(s[1] for s in samples)
        span = stamps[-1] - stamps[0]
        if span <= 0:
            return 0.0, 0
        fps = (len(samples) - 1) / span
        kbps = sum(s[2] for s in samples[1:]) * 8 / span / 1000
        return round(fps, 2), int(kbps)
