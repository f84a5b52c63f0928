"""The reader paces a file to real time and loops it without a pause, whatever its start time."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np

from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags
from workers.source.reader import SourceReader


def _ts_file(path, seconds: float = 1.0, fps: int = 25) -> None:
    start = round(1.4 * fps)  # what ffmpeg's MPEG-TS muxer writes: timestamps that start at 1.4 s
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 160, 90, "yuv420p"
        v.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((90, 160, 3), i * 9 % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = start + i, Fraction(1, fps)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))


class _Arrivals:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.seconds: list[float] = []

    def on_open(self, streams) -> None:
        pass

    def on_packet(self, kind, packet, seconds) -> None:
        self.times.append(time.monotonic())
        self.seconds.append(seconds)

    def on_close(self, reason) -> None:
        pass


def test_a_looping_ts_file_has_no_pause_at_the_loop(tmp_path):
    path = tmp_path / "one-second.ts"
    _ts_file(path)
    with av.open(str(path)) as probe:
        assert probe.streams.video[0].start_time * probe.streams.video[0].time_base > 1.0  # the case at hand
    settings = load_settings(parse_flags(["--source", f"clip={path}"]), {})
    arrivals = _Arrivals()
    reader = SourceReader(settings.sources[0], lambda status: None, [arrivals])
    reader.start()
    time.sleep(3.5)  # three loops of a one-second file
    reader.stop()
    gaps = [b - a for a, b in zip(arrivals.times, arrivals.times[1:], strict=False)]
    assert len(arrivals.times) > 60  # paced: ~25 packets a second, not the whole file at once
    assert max(gaps) < 0.3, f"a {max(gaps):.2f} s pause"
    assert arrivals.seconds == sorted(arrivals.seconds)  # one continuous timeline over the loops


def test_a_file_nobody_watches_is_handed_over_in_batches_still_at_real_time(tmp_path):
    """Issue 13: with no viewer a frame-by-frame wake-up buys nothing, so packets come due in
    groups, a few wake-ups a second; the file still plays at real time, not faster."""
    path = tmp_path / "four-seconds.ts"
    _ts_file(path, seconds=4.0)
    settings = load_settings(parse_flags(["--source", f"clip={path}"]), {})
    arrivals = _Arrivals()
    reader = SourceReader(settings.sources[0], lambda status: None, [arrivals], watched=lambda: False)
    reader.start()
    time.sleep(2.5)
    reader.stop()
    gaps = [b - a for a, b in zip(arrivals.times, arrivals.times[1:], strict=False)]
    assert 25 < len(arrivals.times) < 2.5 * 25 + 5  # real time (25 fps), give or take the slack
    wakeups = sum(gap > 0.02 for gap in gaps)  # paced frame by frame, every gap would be ~40 ms
    assert wakeups < len(gaps) / 3, f"{wakeups} wake-ups for {len(arrivals.times)} packets"
    assert arrivals.seconds == sorted(arrivals.seconds)


def test_a_joining_viewer_ends_the_idle_hold_at_once(tmp_path):
    """A viewer joins an unwatched file just after a batch was handed over: without hurry() the
    reader would sleep out its 0.25 s slack, and live frames would lag the viewer's GOP replay."""
    path = tmp_path / "four-seconds.ts"
    _ts_file(path, seconds=4.0)
    settings = load_settings(parse_flags(["--source", f"clip={path}"]), {})
    arrivals = _Arrivals()
    watching = False
    reader = SourceReader(settings.sources[0], lambda status: None, [arrivals], watched=lambda: watching)
    reader.start()
    try:
        deadline = time.monotonic() + 5
        while len(arrivals.times) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        seen = len(arrivals.times)
        while len(arrivals.times) == seen and time.monotonic() < deadline:
            time.sleep(0.001)  # a new batch has just been handed over: the reader now holds
        time.sleep(0.02)  # the rest of that batch
        joined = time.monotonic()
        watching = True
        reader.hurry()
        seen = len(arrivals.times)
        while len(arrivals.times) == seen and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        reader.stop()
    assert len(arrivals.times) > seen, "no packet after the viewer joined"
    waited = arrivals.times[seen] - joined
    assert waited < 0.1, f"the next packet came {waited:.2f} s after the join (one frame is 0.04 s)"


def test_a_camera_nobody_watches_is_read_in_batches_losing_nothing(rtsp_camera):
    """Issue 13: unwatched, a read that waited for the camera is followed by a hold in which its
    next frames gather in the socket: a few wake-ups a second, and still every frame."""
    settings = load_settings(parse_flags(["--source", f"cam={rtsp_camera.url}"]), {})
    arrivals = _Arrivals()
    kinds: list[str] = []
    reader = SourceReader(settings.sources[0], lambda status: None, [arrivals], watched=lambda: False)
    original = arrivals.on_packet
    arrivals.on_packet = lambda kind, packet, seconds: (kinds.append(kind), original(kind, packet, seconds))
    reader.start()
    try:
        deadline = time.monotonic() + 15
        while not arrivals.times and time.monotonic() < deadline:
            time.sleep(0.05)
        assert arrivals.times, "the camera never delivered"
        time.sleep(4.0)
    finally:
        reader.stop()
    span = arrivals.times[-1] - arrivals.times[0]
    video = kinds.count("video")
    assert video >= 15 * (span - 1.0), f"{video} frames in {span:.1f} s of a 15 fps camera"
    gaps = [b - a for a, b in zip(arrivals.times, arrivals.times[1:], strict=False)]
    wakeups = sum(gap > 0.01 for gap in gaps)  # frame by frame (15 fps video, Opus every 20 ms) most would be
    assert wakeups < len(gaps) / 4, f"{wakeups} wake-ups for {len(arrivals.times)} packets"
