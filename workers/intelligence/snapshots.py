"""JPEG snapshots of the sampled frame that started a motion: FFmpeg's mjpeg encoder (no new
dependency), at most one per `snapshots.minIntervalUsec` of media time, written on the analysis
thread, never the reader's."""

from __future__ import annotations

import logging
from fractions import Fraction

import av

from protocol.events import ArtifactData
from workers.intelligence.artifact_dir import PART, ArtifactDir, ArtifactStore
from workers.recording.write_health import WriteHealth

log = logging.getLogger("icey.snapshots")


def encode_jpeg(frame: av.VideoFrame, width: int | None = None, height: int | None = None,
                qscale: int | None = None) -> bytes:
    """`width`/`height` rescale on the way; `qscale` is mjpeg's fixed quantizer (2 best .. 31),
    else the encoder's default rate control."""
    full = frame.reformat(width=width, height=height, format="yuvj420p")  # JPEG is full range
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = full.width, full.height, "yuvj420p"
    enc.time_base = Fraction(1, 25)
    if qscale is not None:
        enc.qmin = enc.qmax = qscale
    enc.open()
    return b"".join(bytes(p) for p in [*enc.encode(full), *enc.encode(None)])


class SnapshotWriter:
    def __init__(self, source_id: str, directory: ArtifactDir, min_interval_usec: int,
                 store: ArtifactStore | None = None, health: WriteHealth | None = None) -> None:
        self.source_id, self.directory, self.store = source_id, directory, store
        self.health = health
        self.min_interval_usec = min_interval_usec
        self.last_usec: int | None = None
        self.last_url: str | None = None
        self.count = 0

    def write(self, frame: av.VideoFrame, pts_usec: int, wall: float) -> ArtifactData | None:
        """A snapshot unless one was taken less than the interval before (media time)."""
        if (self.last_usec is not None and self.min_interval_usec > 0
                and 0 <= pts_usec - self.last_usec < self.min_interval_usec):
            return None
        path = self.directory.unique(self.source_id, wall, "jpg")
        part = path.with_name(path.name + PART)
        try:
            data = encode_jpeg(frame)
            part.write_bytes(data)
            part.rename(path)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.warning("snapshot failed: %s", exc)
            part.unlink(missing_ok=True)
            if isinstance(exc, OSError) and self.health is not None:  # the disk, not the picture
                self.health.failed(exc)
            return None
        if self.health is not None:
            self.health.succeeded()
        self.last_usec, self.count = pts_usec, self.count + 1
        self.last_url = self.directory.url(path.name)
        if self.store is not None:
            self.store.written()
        return ArtifactData(url=self.last_url or "", bytes=len(data))
