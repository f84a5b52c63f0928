"""VoiceActivityDetector: icey's start/stop thresholds, silence hold and level meter, on RMS."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.config import SpeechConfig
from workers.intelligence.voice import WINDOW_USEC, VoiceActivityDetector

RATE = 16_000
WINDOW = WINDOW_USEC / 1e6


def bursts(pattern: list[tuple[float, float]], amplitude: float = 0.125, freq: float = 440.0) -> np.ndarray:
    """(seconds, on?) segments of a sine; amplitude 0.125 is lavfi `sine`'s (RMS 0.088)."""
    out = []
    t0 = 0.0
    for seconds, on in pattern:
        n = round(seconds * RATE)
        t = t0 + np.arange(n) / RATE
        out.append((amplitude * np.sin(2 * np.pi * freq * t) if on else np.zeros(n)).astype(np.float32))
        t0 += seconds
    return np.concatenate(out)


def feed(vad: VoiceActivityDetector, samples: np.ndarray, chunk: int = 333, t0: float = 5.0):
    """Odd-sized chunks (as a resampler gives them); returns (event, time it was emitted)."""
    got = []
    for i in range(0, len(samples), chunk):
        part = samples[i:i + chunk]
        for event in vad.process(part, t0 + i / RATE):
            got.append((event, t0 + (i + len(part)) / RATE))
    return got


def test_tone_bursts_start_and_stop_at_the_right_times():
    cfg = SpeechConfig(min_silence_usec=250_000, update_interval_usec=250_000)
    vad = VoiceActivityDetector(cfg, RATE)
    pattern = [(0.5, False), (1.0, True), (1.0, False), (0.7, True), (1.0, False)]
    got = feed(vad, bursts(pattern))
    assert [e.type for e, _ in got] == ["speech.start", "speech.stop", "speech.start", "speech.stop"]
    t0 = 5.0
    onsets, ends = [t0 + 0.5, t0 + 2.5], [t0 + 1.5, t0 + 3.2]
    for (event, emitted), onset in zip([g for g in got if g[0].type == "speech.start"], onsets, strict=True):
        assert onset - 1e-6 <= event.seconds <= onset + WINDOW
        assert emitted <= onset + WINDOW + 333 / RATE
        assert event.data.level == pytest.approx(0.125 / np.sqrt(2), rel=0.1)
        assert event.data.peak == pytest.approx(0.125, rel=0.02)
    for (event, emitted), end in zip([g for g in got if g[0].type == "speech.stop"], ends, strict=True):
        assert end - 1e-6 <= event.seconds <= end + WINDOW  # media time: where speech ended
        # emitted once the silence held for minSilence (within one window and one chunk)
        assert end + 0.25 - 1e-6 <= emitted <= end + 0.25 + WINDOW + 333 / RATE
        assert event.data.level < cfg.stop_threshold and event.data.peak == pytest.approx(0.125, rel=0.02)
    assert not vad.active


def test_silence_and_quiet_noise_never_start():
    vad = VoiceActivityDetector(SpeechConfig(), RATE)
    assert feed(vad, np.zeros(RATE * 3, dtype=np.float32)) == []
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(RATE * 3) * 0.02).astype(np.float32)  # RMS 0.02 < start 0.045
    assert feed(vad, noise) == []
    assert vad.level == pytest.approx(0.02, rel=0.15)


def test_hysteresis_between_the_thresholds_keeps_speaking():
    vad = VoiceActivityDetector(SpeechConfig(start_threshold=0.045, stop_threshold=0.02), RATE)
    loud = bursts([(0.5, True)], amplitude=0.1)  # RMS 0.071
    middle = bursts([(2.0, True)], amplitude=0.042)  # RMS 0.03: below start, above stop
    got = feed(vad, np.concatenate([loud, middle]))
    assert [e.type for e, _ in got] == ["speech.start"] and vad.active
    # ...and the middle level alone does not start speech
    assert feed(VoiceActivityDetector(SpeechConfig(), RATE), middle) == []


def test_short_pauses_shorter_than_the_hold_do_not_stop():
    vad = VoiceActivityDetector(SpeechConfig(min_silence_usec=250_000), RATE)
    pattern = [(0.5, True), (0.2, False), (0.5, True), (0.15, False), (0.5, True), (0.5, False)]
    got = feed(vad, bursts(pattern))
    assert [e.type for e, _ in got] == ["speech.start", "speech.stop"]
    assert got[1][0].seconds == pytest.approx(5.0 + 1.85, abs=WINDOW)


def test_zero_hold_stops_at_the_first_quiet_window():
    vad = VoiceActivityDetector(SpeechConfig(min_silence_usec=0), RATE)
    got = feed(vad, bursts([(0.5, True), (0.1, False)]))
    assert [e.type for e, _ in got] == ["speech.start", "speech.stop"]
    assert got[1][1] <= 5.5 + WINDOW + 333 / RATE


def test_level_meter_updates_every_interval():
    vad = VoiceActivityDetector(SpeechConfig(update_interval_usec=250_000), RATE)
    tone = bursts([(0.3, True)])
    vad.process(tone[: round(0.2 * RATE)], 0.0)
    assert vad.level == 0.0 and vad.peak == 0.0  # less than one interval: no reading yet
    vad.process(tone[round(0.2 * RATE):], 0.2)
    assert vad.level == pytest.approx(0.125 / np.sqrt(2), rel=0.05)
    assert vad.peak == pytest.approx(0.125, rel=0.02)
    vad.process(np.zeros(round(0.5 * RATE), dtype=np.float32), 0.3)  # the 0.25-0.5 reading has some tone
    assert vad.level < 0.001 and vad.peak < 0.001  # the 0.5-0.75 one has none


def test_thresholds_are_sanitised_as_icey():
    vad = VoiceActivityDetector(SpeechConfig(start_threshold=0.01, stop_threshold=0.05), RATE)
    assert vad.start_threshold == vad.stop_threshold == 0.05
    vad = VoiceActivityDetector(SpeechConfig(start_threshold=0.05, stop_threshold=-1.0), RATE)
    assert vad.stop_threshold == 0.0


def test_a_timestamp_jump_restarts_the_clock_and_reset_stops_speech():
    vad = VoiceActivityDetector(SpeechConfig(), RATE)
    tone = bursts([(0.5, True)])
    got = vad.process(tone, 10.0) + vad.process(tone, 100.0)  # a reconnect: a new timeline place
    assert [e.type for e in got] == ["speech.start"]
    events = vad.reset()
    assert [e.type for e in events] == ["speech.stop"] and not vad.active
    assert 100.0 <= events[0].seconds <= 100.5


def test_new_thresholds_while_running():
    vad = VoiceActivityDetector(SpeechConfig(min_silence_usec=0), RATE)
    assert [e.type for e, _ in feed(vad, bursts([(0.3, True)]))] == ["speech.start"]
    vad.configure(SpeechConfig(start_threshold=0.5, stop_threshold=0.2, min_silence_usec=0))
    assert (vad.start_threshold, vad.stop_threshold) == (0.5, 0.2)
    # The same tone (RMS 0.088) is now below the stop threshold: speech stops, and does not start again.
    assert [e.type for e, _ in feed(vad, bursts([(0.5, True)]), t0=5.3)] == ["speech.stop"]
