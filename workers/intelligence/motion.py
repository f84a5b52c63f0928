"""Motion detection with icey's parameters and semantics, made robust to
noise and light changes. Pure numpy: it sees luma planes and timestamps, never a process or a thread.

- The frame is cut into a `gridWidth` x `gridHeight` grid and each cell is reduced to its MEAN
  luma (icey samples one pixel per cell, so noise and a one-pixel edge decide).
- Consecutive sampled frames are compared (as icey), after removing a global illumination change:
  the current cell means are predicted from the previous ones by a robustly fitted gain and
  offset (`cur ~ gain * prev + offset`), cells near black or white being allowed to clip; only
  the residual counts. A whole-frame brightening, a camera's auto exposure or a lamp switched on
  moves every cell the same way and leaves no residual; an object moving leaves a local one.
  (A light change that covers part of the frame, e.g. a headlight beam, is local: it counts.)
- A cell "changed" when its residual is at least `cell_delta` (of full scale); the score is the
  fraction of changed cells, and `threshold` applies to that fraction.
- Warm-up as icey: the first frame (or a resolution change) stores the grid with count 1; while
  the count is below `warmupFrames` the grid is stored and the count grows; scoring starts after.
- Events are episodes rather than icey's repeated `detect`: `motion.start` when the score reaches
  the threshold, `motion.end` once no frame reached it for `cooldownUsec` (cooldown <= 0: at the
  first quiet frame). `motion.end` carries the episode's peak score and the regions of every cell
  that changed during it; its media time is the last frame with motion.
- Regions: changed cells merged into 8-connected components, largest first (at most 8), each as
  its bounding box normalized to 0..1.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from protocol.config import MotionConfig
from protocol.events import MotionData, Region

CELL_DELTA = 0.04  # residual of a cell mean, of full scale (10 luma levels): icey's hot-cell level at 0.08
MAX_REGIONS = 8
MAX_REGION_CELLS = 4096
GAIN_RANGE = (0.5, 2.0)
BLACK_RAIL, WHITE_RAIL = 20.0, 231.0  # clipping may sit here (limited range: 16/235) or at 0/255
FLAT_VARIANCE = 64.0  # below this (std 8 luma levels) the previous grid cannot tell a gain from an offset


@dataclass(frozen=True, slots=True)
class MotionEvent:
    type: str  # motion.start | motion.end
    data: MotionData
    pts_usec: int


def cell_means(luma: np.ndarray, grid_w: int, grid_h: int) -> np.ndarray:
    """(grid_h, grid_w) float means of a 2-D uint8 plane (any stride), cells as icey cuts them."""
    height, width = luma.shape
    gw, gh = max(1, min(grid_w, width)), max(1, min(grid_h, height))
    ys = (np.arange(gh) * height) // gh
    xs = (np.arange(gw) * width) // gw
    rows = np.add.reduceat(luma, ys, axis=0, dtype=np.uint32)
    sums = np.add.reduceat(rows, xs, axis=1, dtype=np.uint64)
    heights = np.diff(np.append(ys, height))
    widths = np.diff(np.append(xs, width))
    return sums / np.outer(heights, widths)


def illumination_residual(prev: np.ndarray, cur: np.ndarray, inlier_levels: float) -> np.ndarray:
    """What a global light change does not explain: cur minus the prediction from prev.

    The prediction `gain * prev + offset` is fitted (least squares, iteratively trimmed to the
    cells that agree) on the cells away from black and white, so neither a minority of moving
    cells nor saturation bends it. A cell at a rail gets an open interval: one that was black
    (or white) may have been darker (brighter) than it showed, one that is black (white) now may
    be clipped, in either full or limited range."""
    p, c = prev.ravel(), cur.ravel()
    usable = (p > BLACK_RAIL) & (p < WHITE_RAIL) & (c > BLACK_RAIL) & (c < WHITE_RAIL)
    if usable.sum() < max(3, p.size // 10):
        usable = np.ones(p.shape, dtype=bool)
    mask = usable
    gain, offset = 1.0, 0.0
    for _ in range(5):
        pp, cc = p[mask], c[mask]
        if pp.size >= 3 and pp.var() >= FLAT_VARIANCE:
            gain = float(np.clip(np.cov(pp, cc, bias=True)[0, 1] / pp.var(), *GAIN_RANGE))
            offset = float(np.median(cc - gain * pp))
        else:
            gain, offset = 1.0, float(np.median(cc - pp)) if pp.size else 0.0
        residual = c - (gain * p + offset)
        spread = 1.4826 * float(np.median(np.abs(residual[usable] - np.median(residual[usable]))))
        new_mask = usable & (np.abs(residual) < max(inlier_levels, 2.5 * spread))
        if new_mask.sum() < max(3, usable.sum() // 3) or np.array_equal(new_mask, mask):
            break
        mask = new_mask
    pred = np.clip(gain * p + offset, 0.0, 255.0)
    high = np.where(p >= WHITE_RAIL, 255.0, pred)
    low = np.where(p <= BLACK_RAIL, 0.0, pred)
    low = np.where((c >= WHITE_RAIL) & (pred >= c), c, low)  # clipped white now
    high = np.where((c <= BLACK_RAIL) & (pred <= c), c, high)  # clipped black now
    out = np.where(c > high, c - high, np.where(c < low, c - low, 0.0))
    return out.reshape(cur.shape)


def regions_of(mask: np.ndarray, limit: int = MAX_REGIONS) -> list[tuple[Region, int]]:
    """8-connected components of a boolean grid: (normalized bounding box, cell count), largest first.
    A very fine grid is coarsened first (any changed cell marks its block), so the flood fill stays cheap."""
    if mask.size > MAX_REGION_CELLS:
        k = int(np.ceil(np.sqrt(mask.size / MAX_REGION_CELLS)))
        gh, gw = mask.shape
        padded = np.zeros((-(-gh // k) * k, -(-gw // k) * k), dtype=bool)
        padded[:gh, :gw] = mask
        coarse = np.asarray(padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).any(axis=(1, 3)))
        scale_y, scale_x = padded.shape[0] / gh, padded.shape[1] / gw
        return [(Region(x=r.x * scale_x, y=r.y * scale_y, w=min(r.w * scale_x, 1 - r.x * scale_x),
                        h=min(r.h * scale_y, 1 - r.y * scale_y)), cells * k * k)
                for r, cells in regions_of(coarse, limit)]
    gh, gw = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    found: list[tuple[int, int, int, int, int]] = []  # cells, x0, y0, x1, y1
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        todo = deque([(int(y0), int(x0))])
        cells, bx0, by0, bx1, by1 = 0, int(x0), int(y0), int(x0), int(y0)
        while todo:
            y, x = todo.popleft()
            cells += 1
            bx0, by0, bx1, by1 = min(bx0, x), min(by0, y), max(bx1, x), max(by1, y)
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < gh and 0 <= nx < gw and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        todo.append((ny, nx))
        found.append((cells, bx0, by0, bx1, by1))
    found.sort(key=lambda r: -r[0])
    return [(Region(x=x0 / gw, y=y0 / gh, w=(x1 - x0 + 1) / gw, h=(y1 - y0 + 1) / gh), cells)
            for cells, x0, y0, x1, y1 in found[:limit]]


@dataclass(slots=True)
class _Episode:
    start_usec: int
    last_motion_usec: int
    peak: float
    cells: np.ndarray = field(repr=False)


class MotionDetector:
    def __init__(self, cfg: MotionConfig, cell_delta: float = CELL_DELTA) -> None:
        self._take(cfg)
        self.cell_levels = cell_delta * 255.0
        self.last_score: float | None = None
        self.frames = 0  # analysed (scored) frames
        self._prev: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self._warm = 0
        self._episode: _Episode | None = None

    @property
    def active(self) -> bool:
        return self._episode is not None

    def reset(self) -> list[MotionEvent]:
        """A new stream: warm up again; an episode in progress ends at its last motion."""
        events = self.finish()
        self._prev, self._shape, self._warm = None, None, 0
        return events

    def configure(self, cfg: MotionConfig) -> list[MotionEvent]:
        """New settings while running: a threshold or cooldown applies from the next frame; a
        new grid or warm-up starts over (an episode in progress ends), as a new stream does."""
        regrid = (max(1, cfg.grid_width), max(1, cfg.grid_height), cfg.warmup_frames) != (
            self.grid_w, self.grid_h, self.warmup)
        events = self.reset() if regrid else []
        self._take(cfg)
        return events

    def _take(self, cfg: MotionConfig) -> None:
        self.grid_w, self.grid_h = max(1, cfg.grid_width), max(1, cfg.grid_height)
        self.warmup = cfg.warmup_frames
        self.threshold = max(0.0, cfg.threshold)
        self.cooldown_usec = cfg.cooldown_usec

    def finish(self) -> list[MotionEvent]:
        if self._episode is None:
            return []
        episode, self._episode = self._episode, None
        return [self._end_event(episode)]

    def process(self, luma: np.ndarray, pts_usec: int) -> list[MotionEvent]:
        grid = cell_means(luma, self.grid_w, self.grid_h)
        if self._shape != luma.shape or self._prev is None or self._prev.shape != grid.shape:
            events = self.finish() if self._shape is not None else []
            self._prev, self._shape, self._warm = grid, luma.shape, 1
            return events
        if self._warm < self.warmup:
            self._prev, self._warm = grid, self._warm + 1
            return []
        residual = illumination_residual(self._prev, grid, self.cell_levels)
        self._prev = grid
        changed = np.abs(residual) >= self.cell_levels
        score = float(changed.mean())
        self.last_score = score
        self.frames += 1
        moving = score >= self.threshold and changed.any()
        events = []
        episode = self._episode
        if moving:
            if episode is None:
                self._episode = _Episode(pts_usec, pts_usec, score, changed.copy())
                events.append(MotionEvent("motion.start", self._data(score, changed), pts_usec))
            else:
                episode.last_motion_usec = pts_usec
                episode.peak = max(episode.peak, score)
                episode.cells |= changed
        elif episode is not None:
            quiet_for = pts_usec - episode.last_motion_usec
            if self.cooldown_usec <= 0 or quiet_for >= self.cooldown_usec or quiet_for < 0:
                self._episode = None
                events.append(self._end_event(episode))
        return events

    def _data(self, score: float, changed: np.ndarray) -> MotionData:
        regions = regions_of(changed)
        return MotionData(score=round(score, 4), regions=[r for r, _ in regions], cells=int(changed.sum()))

    def _end_event(self, episode: _Episode) -> MotionEvent:
        return MotionEvent("motion.end", self._data(episode.peak, episode.cells), episode.last_motion_usec)
