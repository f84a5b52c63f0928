"""MotionDetector: icey's grid, warm-up, threshold and cooldown, on block means, blind to a global
light change."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np
import pytest

from protocol.config import MotionConfig
from workers.intelligence.artifact_dir import ArtifactDir, artifact_name
from workers.intelligence.decoder import BoundedQueue, FrameDecoder, FrameSampler
from workers.intelligence.motion import MotionDetector, cell_means, regions_of
from workers.source.taps import SourceStreams

W, H = 640, 360
STEP_USEC = 200_000


def scene(square_x: int | None = None, square_y: int = 140, size: int = 80, background: np.ndarray | None = None,
          seed: int = 0) -> np.ndarray:
    """A textured static scene (bars, a gradient, white and black areas, sensor noise) with an
    optional white square."""
    if background is None:
        background = textured()
    img = background.astype(np.int16)
    rng = np.random.default_rng(seed)
    img = img + rng.integers(-3, 4, img.shape)
    if square_x is not None:
        img[square_y:square_y + size, square_x:square_x + size] = 235
    return np.clip(img, 0, 255).astype(np.uint8)


def textured() -> np.ndarray:
    img = np.zeros((H, W), dtype=np.int16)
    levels = [16, 60, 110, 150, 190, 235, 250, 40]
    for i, level in enumerate(levels):
        img[:, i * W // len(levels):(i + 1) * W // len(levels)] = level
    img[H * 3 // 4:, :] = np.linspace(16, 255, W)[None, :]  # a gradient strip, white end saturating
    return img


def run(detector: MotionDetector, frames: list[np.ndarray], t0: int = 0) -> list:
    events = []
    for i, frame in enumerate(frames):
        events += detector.process(frame, t0 + i * STEP_USEC)
    return events


def cfg(**kw) -> MotionConfig:
    base = {"grid_width": 32, "grid_height": 18, "warmup_frames": 2, "threshold": 0.02, "cooldown_usec": 500_000}
    base.update(kw)
    return MotionConfig(**base)


def covers(region, x0: float, y0: float, x1: float, y1: float, slack: float = 0.04) -> bool:
    return (region.x <= x0 + slack and region.y <= y0 + slack and region.x + region.w >= x1 - slack
            and region.y + region.h >= y1 - slack)


def test_cell_means_are_block_means():
    luma = np.zeros((36, 64), dtype=np.uint8)
    luma[:2, :2] = 255  # one pixel per cell would miss this half-cell change
    grid = cell_means(luma, 32, 18)
    assert grid.shape == (18, 32)
    assert grid[0, 0] == pytest.approx(255) and grid[1:, :].max() == 0
    odd = np.full((37, 65), 100, dtype=np.uint8)  # cells that do not divide the frame evenly
    assert np.allclose(cell_means(odd, 32, 18), 100)


def test_moving_square_starts_motion_with_a_region_covering_it():
    detector = MotionDetector(cfg())
    xs = [40 + 40 * i for i in range(10)]
    events = run(detector, [scene(x, seed=i) for i, x in enumerate(xs)])
    starts = [e for e in events if e.type == "motion.start"]
    assert len(starts) == 1
    start = starts[0]
    # Warm-up 2: the first score is on the 3rd frame, which is where it starts.
    assert start.pts_usec == 2 * STEP_USEC
    assert start.data.score >= 0.02 and start.data.cells > 0
    # The square moved from x=80 to x=120 (80x80 at y=140): the changed area spans both.
    top = start.data.regions[0]
    assert covers(top, 120 / W, 140 / H, 200 / W, 220 / H) or covers(top, 80 / W, 140 / H, 120 / W, 220 / H)
    union_x0 = min(r.x for r in start.data.regions)
    union_x1 = max(r.x + r.w for r in start.data.regions)
    assert union_x0 <= 80 / W + 0.04 and union_x1 >= 200 / W - 0.04
    assert all(0 <= r.x and r.x + r.w <= 1 and 0 <= r.y and r.y + r.h <= 1 for r in start.data.regions)
    assert all(r.y >= 140 / H - 0.07 and r.y + r.h <= 220 / H + 0.07 for r in start.data.regions)
    assert detector.active


def test_static_scene_never_moves():
    detector = MotionDetector(cfg(threshold=0.0))  # even with no threshold: a changed cell is needed
    events = run(detector, [scene(200, seed=i) for i in range(20)])
    assert events == []
    assert detector.last_score == 0.0


@pytest.mark.parametrize("change", ["offset+40", "offset-40", "gain1.3", "gain0.7"])
def test_global_light_change_is_not_motion(change):
    detector = MotionDetector(cfg(threshold=0.01))
    base = textured()
    frames = [scene(200, background=base, seed=i) for i in range(4)]
    after = base.astype(np.float64)
    if change.startswith("offset"):
        after = after + float(change[6:])
    else:
        after = after * float(change[4:])
    after = np.clip(after, 0, 255)
    lit = [scene(None, background=after, seed=10 + i) for i in range(4)]
    for img in lit:  # the (static) square brightens with the room: re-draw it lit
        img[140:220, 200:280] = np.clip(235 + float(change[6:]) if change.startswith("offset") else
                                        235 * float(change[4:]), 0, 255)
    events = run(detector, frames + lit + frames)
    assert events == [], events


def test_motion_is_still_seen_through_a_light_change():
    detector = MotionDetector(cfg())
    base = textured()
    brighter = np.clip(base + 40, 0, 255)
    frames = [scene(40, background=base, seed=i) for i in range(3)] + [scene(160, background=brighter, seed=4)]
    events = run(detector, frames)
    assert [e.type for e in events] == ["motion.start"]
    assert any(covers(r, 160 / W, 140 / H, 240 / W, 220 / H) for r in events[0].data.regions)


def test_warmup_frames_are_not_scored():
    frames = [scene(40), scene(40), scene(300), scene(300), scene(300)]  # the jump is between frames 1 and 2
    assert [e.type for e in run(MotionDetector(cfg(warmup_frames=2)), frames)] == ["motion.start"]
    # Warm-up 3: frame 2 is still stored, not scored; nothing moves after it.
    assert run(MotionDetector(cfg(warmup_frames=3)), frames) == []
    # Warm-up 0 or 1 (icey): the second frame is the first scored.
    detector = MotionDetector(cfg(warmup_frames=0))
    events = run(detector, [scene(40), scene(300)])
    assert [e.type for e in events] == ["motion.start"] and events[0].pts_usec == STEP_USEC


def test_cooldown_ends_motion_after_quiet_time():
    detector = MotionDetector(cfg(cooldown_usec=500_000))
    moving = [scene(40 + 40 * i) for i in range(6)]  # motion scored on frames 2..5
    still = [scene(240)] * 8  # the square rests where it stopped
    events = run(detector, moving + still)
    assert [e.type for e in events] == ["motion.start", "motion.end"]
    end = events[1]
    assert end.pts_usec == 5 * STEP_USEC  # media time of the end: the last frame with motion
    # ...emitted on the first quiet frame at least cooldown after it: 5*0.2 + 0.6 (>= 0.5)
    detector = MotionDetector(cfg(cooldown_usec=500_000))
    emitted_at = None
    for i, frame in enumerate(moving + still):
        if any(e.type == "motion.end" for e in detector.process(frame, i * STEP_USEC)):
            emitted_at = i * STEP_USEC
    assert emitted_at == 8 * STEP_USEC
    # The episode's regions cover the whole path of the square (x 80..280).
    assert min(r.x for r in end.data.regions) <= 80 / W + 0.04
    assert max(r.x + r.w for r in end.data.regions) >= 280 / W - 0.04
    assert end.data.score >= events[0].data.score


def test_motion_within_cooldown_continues_the_episode():
    detector = MotionDetector(cfg(cooldown_usec=1_000_000))
    frames = ([scene(40 + 40 * i) for i in range(4)] + [scene(160)] * 3 + [scene(200 + 40 * i) for i in range(3)]
              + [scene(280)] * 8)
    events = run(detector, frames)
    assert [e.type for e in events] == ["motion.start", "motion.end"]


def test_zero_cooldown_ends_at_first_quiet_frame():
    detector = MotionDetector(cfg(cooldown_usec=0))
    events = run(detector, [scene(40 + 40 * i) for i in range(4)] + [scene(160)] * 2)
    assert [(e.type, e.pts_usec) for e in events] == [("motion.start", 2 * STEP_USEC),
                                                       ("motion.end", 3 * STEP_USEC)]


def test_threshold_is_a_fraction_of_cells():
    small = [scene(40, size=20), scene(40, size=20), scene(40, size=20), scene(300, size=20)]
    assert run(MotionDetector(cfg(threshold=0.02)), small) == []  # 2-4 cells of 576 < 2 %
    assert [e.type for e in run(MotionDetector(cfg(threshold=0.003)), small)] == ["motion.start"]


def test_resolution_change_restarts_warmup_and_ends_episode():
    detector = MotionDetector(cfg(cooldown_usec=10_000_000))
    events = run(detector, [scene(40 + 40 * i) for i in range(4)])
    assert detector.active
    small = np.full((180, 320), 80, dtype=np.uint8)
    events = detector.process(small, 10 * STEP_USEC)
    assert [e.type for e in events] == ["motion.end"] and not detector.active
    assert detector.process(small, 11 * STEP_USEC) == []  # warm-up again


def test_regions_merge_connected_cells_largest_first():
    mask = np.zeros((18, 32), dtype=bool)
    mask[2:5, 2:6] = True  # 12 cells
    mask[10, 20] = mask[11, 21] = True  # diagonal neighbours: one region of 2
    regions = regions_of(mask)
    assert [cells for _, cells in regions] == [12, 2]
    box = regions[0][0]
    assert (box.x, box.y, box.w, box.h) == pytest.approx((2 / 32, 2 / 18, 4 / 32, 3 / 18))


def test_sampler_every_nth_and_min_interval():
    sampler = FrameSampler(6, 200_000)
    taken = [i for i in range(60) if sampler.accept(round(i * 1e6 / 30))]
    assert taken == list(range(0, 60, 6))  # 30 fps -> 5 fps, exactly at the interval
    sampler = FrameSampler(1, 200_000)
    taken = [i for i in range(30) if sampler.accept(round(i * 1e6 / 30))]
    assert taken == list(range(0, 30, 6))
    sampler = FrameSampler(6, 500_000)  # the interval wins: every 6th frame, but not closer than 0.5 s
    taken = [i for i in range(60) if sampler.accept(round(i * 1e6 / 30))]
    assert taken == [0, 18, 36, 54]
    sampler = FrameSampler(0, 0)  # 0 means every frame
    assert all(sampler.accept(i) for i in range(5))


def test_queue_drops_the_oldest_and_counts():
    q = BoundedQueue(3)
    for i in range(5):
        q.put(i)
    assert q.drops == 2
    assert [q.get(0)[0] for _ in range(3)] == [2, 3, 4]
    assert q.get(0) == (None, False)


def _encoded(frames: int, gop: int, size=(160, 96)) -> tuple[av.CodecContext, list[av.Packet]]:
    """H.264 packets of a moving bar, SPS/PPS in band (what the demo source gives)."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25, 1)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "repeat-headers": "1"}
    enc.open()
    packets = []
    for i in range(frames):
        img = np.full((size[1], size[0]), 60, dtype=np.uint8)
        img[:, (i * 4) % size[0]:(i * 4) % size[0] + 8] = 220
        frame = av.VideoFrame.from_ndarray(img, format="gray").reformat(format="yuv420p")
        frame.pts, frame.time_base = i, enc.time_base
        frame.pict_type = av.video.frame.PictureType.NONE
        packets += enc.encode(frame)
    packets += enc.encode(None)
    return enc, packets


def test_decoder_samples_every_nth_frame_on_the_timeline():
    enc, packets = _encoded(48, gop=12)
    got = []
    decoder = FrameDecoder("t", every_nth=6, min_interval_usec=200_000, on_frame=got.append)
    decoder.on_open(SourceStreams(None, None, enc, None))
    for p in packets:
        decoder.on_packet("video", p, 100.0 + float(p.pts * p.time_base))  # a timeline offset of 100 s
    decoder.start()
    deadline = time.monotonic() + 5
    while len(got) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    decoder.stop()
    assert [round(f.seconds, 3) for f in got] == [round(100 + i * 0.24, 3) for i in range(8)]
    assert got[0].luma.shape == (96, 160) and got[0].luma.dtype == np.uint8
    assert decoder.video_queue.drops == 0


def test_decoder_overflow_drops_oldest_then_waits_for_a_keyframe():
    enc, packets = _encoded(60, gop=20)
    got = []
    decoder = FrameDecoder("t", every_nth=1, min_interval_usec=0, on_frame=got.append, video_queue=25)
    decoder.on_open(SourceStreams(None, None, enc, None))
    for p in packets:  # nobody decodes yet: a stalled consumer
        decoder.on_packet("video", p, float(p.pts * p.time_base))
    assert decoder.video_queue.drops == 35
    decoder.start()
    deadline = time.monotonic() + 5
    while len(got) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    decoder.stop()
    # The 25 newest packets were kept (frames 35..59); decoding resumed at the keyframe (frame 40),
    # never from a P-frame without its references.
    assert [round(f.seconds * 25) for f in got] == list(range(40, 60))
    assert got[0].keyframe


def test_artifact_names_and_urls(tmp_path):
    name = artifact_name("front", 1_795_698_312.345, "mp4")
    assert name == "front-2026-11-26T13-05-12.345Z.mp4"
    record = tmp_path / "rec"
    assert ArtifactDir.resolve(str(record), "", "snapshots").url("a.jpg") == "/artifacts/snapshots/a.jpg"
    assert ArtifactDir.resolve(str(record), str(record / "x" / "clips"), "clips").url("a.mp4") == (
        "/artifacts/x/clips/a.mp4")
    outside = ArtifactDir.resolve(str(record), str(tmp_path / "elsewhere"), "snapshots")
    assert outside.path == tmp_path / "elsewhere" and outside.url("a.jpg") is None  # no link that 404s
    assert ArtifactDir.resolve(str(record), str(record / "recordings" / "s"), "snapshots").url("a.jpg") is None



def test_new_settings_while_running():
    """A threshold applies from the next frame without a new warm-up; a new grid starts over and
    ends the episode in progress."""
    detector = MotionDetector(cfg(threshold=0.02, cooldown_usec=0))
    bg = textured()
    events = run(detector, [scene(None, background=bg, seed=i) for i in range(3)]
                 + [scene(40 + 60 * i, background=bg, seed=10 + i) for i in range(2)])
    assert [e.type for e in events] == ["motion.start"] and detector.active
    assert detector.configure(cfg(threshold=1.0, cooldown_usec=0)) == [] and detector.active
    later = run(detector, [scene(160 + 60 * i, background=bg, seed=20 + i) for i in range(2)], t0=2_000_000)
    assert [e.type for e in later] == ["motion.end"] and detector.threshold == 1.0
    assert run(detector, [scene(300 + 60 * i, background=bg, seed=30 + i) for i in range(3)], t0=3_000_000) == []
    detector.configure(cfg(threshold=0.02, cooldown_usec=0))
    assert [e.type for e in run(detector, [scene(40, background=bg, seed=40), scene(100, background=bg, seed=41)],
                                t0=4_000_000)] == ["motion.start"]
    assert [e.type for e in detector.configure(cfg(grid_width=16, threshold=0.02))] == ["motion.end"]
    assert run(detector, [scene(200, background=bg, seed=50)], t0=5_000_000) == []  # warming up again
