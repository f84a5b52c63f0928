"""One continuous output timeline for a source whose own clock restarts or jumps."""

from __future__ import annotations


class Timeline:
    """Maps source timestamps (seconds) onto one continuous output timeline: a file that loops,
    a camera that reconnects, or a stream whose clock jumps (a shared RTSP mount re-bases each
    stream, one after the other, when a second client joins) keeps the RTP timestamps increasing.

    An epoch (open, loop, reconnect) gives every stream the same offset, which keeps the source's
    own audio/video alignment. A jump of one stream's clock re-bases only that stream, right
    after its own last timestamp, so the stream that has not jumped yet is left alone."""

    GAP_SEC = 1 / 30
    # Within one stream, a step back larger than this is a jump (B-frame reordering never comes
    # close). Across streams it is only interleaving (a file may store seconds of video ahead of
    # its audio), so each stream is judged against itself.
    MAX_STEP_BACK_SEC = 1.0

    def __init__(self) -> None:
        self._epoch_offset: float | None = None
        self._offsets: dict[str, float] = {}
        self._last = 0.0
        self._last_of: dict[str, float] = {}
        self._step_of: dict[str, float] = {}  # a stream's last frame interval: the gap to leave at a seam
        self._jumped: set[str] = set()

    def new_epoch(self) -> None:
        self._epoch_offset = None
        self._offsets.clear()
        self._jumped.clear()

    def jumped(self, kind: str) -> None:
        """The reader saw this stream's clock leap ahead of real time: re-base its next packet."""
        self._jumped.add(kind)

    def map(self, seconds: float, kind: str = "video") -> float:
        offset = self._offsets.get(kind)
        last = self._last_of.get(kind)
        step = self._step_of.get(kind, self.GAP_SEC)
        if offset is not None and last is not None and (
                kind in self._jumped or seconds + offset < last - self.MAX_STEP_BACK_SEC):
            offset = self._offsets[kind] = last + step - seconds
            self._jumped.discard(kind)
        if offset is None:
            if self._epoch_offset is None:
                self._epoch_offset = self._last + step - seconds if self._last else -seconds
            offset = self._offsets[kind] = self._epoch_offset
        out = seconds + offset
        if last is not None and 0 < out - last < 1.0:
            self._step_of[kind] = out - last
        self._last = max(self._last, out)
        self._last_of[kind] = max(self._last_of.get(kind, out), out)
        return out
