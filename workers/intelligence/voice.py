"""Voice activity (energy VAD) with icey's thresholds and hold. Pure numpy:
it sees mono float samples (-1..1) at a fixed rate with their timeline time.

Differences from icey, on purpose: the level is the RMS of fixed 20 ms windows (icey takes the
mean absolute value of whatever packet size the source uses, with a sample-rate *hint*), so the
thresholds mean the same thing for every source.

- Sanitising as icey: stopThreshold < 0 -> 0; startThreshold < stopThreshold -> = stopThreshold.
- Inactive: a window with level >= startThreshold emits `speech.start` (its level and peak).
- Active: a window below stopThreshold starts (or continues) a silence; once the silence has
  lasted `minSilenceUsec` (<= 0: at once) `speech.stop` is emitted, its media time being when the
  silence began (the end of speech), its level the last window's, its peak the utterance's.
  A window at or above stopThreshold ends the silence.
- Level meter: `level` (RMS) and `peak` over each `updateIntervalUsec` (<= 0: every window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.config import SpeechConfig
from protocol.events import SpeechData

WINDOW_USEC = 20_000
RESYNC_SEC = 0.1  # a chunk further than this from where the last one ended starts a new clock


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    type: str  # speech.start | speech.stop
    data: SpeechData
    seconds: float


class VoiceActivityDetector:
    def __init__(self, cfg: SpeechConfig, sample_rate: int = 16_000) -> None:
        self.configure(cfg)
        self.rate = sample_rate
        self.window = max(1, round(sample_rate * WINDOW_USEC / 1e6))
        self.active = False
        self.level = 0.0  # meter: RMS over the last update interval
        self.peak = 0.0
        self._pending = np.zeros(0, dtype=np.float32)
        self._clock: float | None = None  # timeline time of _pending[0]
        self._silence_since: float | None = None
        self._utterance_peak = 0.0
        self._meter_start: float | None = None
        self._meter_sq = 0.0
        self._meter_n = 0
        self._meter_peak = 0.0

    def configure(self, cfg: SpeechConfig) -> None:
        """Thresholds and timings, also while running: they apply from the next 20 ms window."""
        stop = max(0.0, cfg.stop_threshold)
        self.stop_threshold, self.start_threshold = stop, max(cfg.start_threshold, stop)
        self.min_silence = cfg.min_silence_usec / 1e6
        self.update_interval = max(0.0, cfg.update_interval_usec / 1e6)

    def reset(self) -> list[SpeechEvent]:
        """A new stream: an utterance in progress stops where the old stream ended."""
        events = []
        if self.active and self._clock is not None:
            at = self._silence_since if self._silence_since is not None else self._clock
            events.append(self._stop(at, 0.0))
        self._pending = np.zeros(0, dtype=np.float32)
        self._clock = self._silence_since = self._meter_start = None
        self._meter_sq, self._meter_n, self._meter_peak = 0.0, 0, 0.0
        self.level = self.peak = 0.0  # no stale reading while the source is away
        return events

    def process(self, samples: np.ndarray, seconds: float) -> list[SpeechEvent]:
        """`samples`: 1-D float mono; `seconds`: the timeline time of its first sample."""
        samples = np.asarray(samples, dtype=np.float32).ravel()
        events: list[SpeechEvent] = []
        if self._clock is None or abs(seconds - (self._clock + len(self._pending) / self.rate)) > RESYNC_SEC:
            self._pending, self._clock = samples, seconds
            self._meter_start, self._meter_sq, self._meter_n, self._meter_peak = None, 0.0, 0, 0.0
            if self._silence_since is not None:
                self._silence_since = seconds  # a silence is measured on one clock
        else:
            self._pending = np.concatenate((self._pending, samples))
        usable = len(self._pending) - len(self._pending) % self.window
        if usable == 0:
            return events
        blocks = self._pending[:usable].reshape(-1, self.window).astype(np.float64)
        levels = np.sqrt(np.mean(blocks * blocks, axis=1))
        peaks = np.max(np.abs(blocks), axis=1)
        for i in range(len(levels)):
            start = self._clock + i * self.window / self.rate
            events.extend(self._window(start, float(levels[i]), float(peaks[i])))
        self._clock += usable / self.rate
        self._pending = self._pending[usable:]
        return events

    def _window(self, start: float, level: float, peak: float) -> list[SpeechEvent]:
        self._meter(start, level, peak)
        end = start + self.window / self.rate
        if not self.active:
            if level >= self.start_threshold:
                self.active, self._silence_since, self._utterance_peak = True, None, peak
                return [SpeechEvent("speech.start", SpeechData(level=round(level, 4), peak=round(peak, 4)), start)]
            return []
        if level < self.stop_threshold:
            if self._silence_since is None:
                self._silence_since = start
            if self.min_silence <= 0 or end - self._silence_since >= self.min_silence - 1e-9:
                return [self._stop(self._silence_since, level)]
            return []
        self._silence_since = None
        self._utterance_peak = max(self._utterance_peak, peak)
        return []

    def _stop(self, at: float, level: float) -> SpeechEvent:
        self.active, self._silence_since = False, None
        return SpeechEvent("speech.stop", SpeechData(level=round(level, 4), peak=round(self._utterance_peak, 4)), at)

    def _meter(self, start: float, level: float, peak: float) -> None:
        if self._meter_start is None:
            self._meter_start = start
        self._meter_sq += level * level
        self._meter_n += 1
        self._meter_peak = max(self._meter_peak, peak)
        if start + self.window / self.rate - self._meter_start >= self.update_interval - 1e-9:
            self.level = float(np.sqrt(self._meter_sq / self._meter_n))
            self.peak = self._meter_peak
            self._meter_start, self._meter_sq, self._meter_n, self._meter_peak = None, 0.0, 0, 0.0
