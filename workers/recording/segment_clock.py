"""A segment's timestamps: seconds from its first keyframe, per track, and a track that goes on
increasing when the source's clock stalls or jumps back (an RTSP server restarting its pipeline
when another client joins, a loop seam): an MP4 track whose time goes back does not play."""

from __future__ import annotations

DEFAULT_STEP_SEC = {"video": 1 / 30, "audio": 0.02}


class SegmentClock:
    def __init__(self, base: float) -> None:
        self.base = base  # the DTS of the segment's first keyframe, on the source timeline
        self.end_sec = 0.0  # the end of the latest packet placed so far
        self._last_dts: dict[str, float] = {}
        self._step: dict[str, float] = {}  # a frame's (packet's) duration, from the stream
        self._shift: dict[str, float] = {}  # added since the source's clock went back

    def place(self, kind: str, pts: float, dts: float, duration: float) -> tuple[float, float, float]:
        """(pts, dts) from the segment's start for a packet at `pts`/`dts` on the source timeline,
        and how far the source's clock went back (0.0 when it did not, nor merely repeated a time).
        A packet not after its track's last one goes one frame after it, and the track after it."""
        shift = self._shift.get(kind, 0.0)
        pts_rel, dts_rel = pts - self.base + shift, dts - self.base + shift
        last = self._last_dts.get(kind)
        if last is None or dts_rel > last:
            return pts_rel, dts_rel, 0.0
        step = self._step.get(kind) or duration or DEFAULT_STEP_SEC[kind]
        jump = last + step - dts_rel
        self._shift[kind] = shift + jump
        return pts_rel + jump, dts_rel + jump, max(jump - step, 0.0)

    def advance(self, kind: str, pts_rel: float, dts_rel: float, duration: float) -> None:
        """A packet placed at `pts_rel`/`dts_rel` was written."""
        previous = self._last_dts.get(kind)
        self._last_dts[kind] = dts_rel
        if duration:
            self._step[kind] = duration
        elif previous is not None and 0 < dts_rel - previous < 1.0:
            self._step[kind] = dts_rel - previous
        self.end_sec = max(self.end_sec, pts_rel + self._step.get(kind, 0.0))
