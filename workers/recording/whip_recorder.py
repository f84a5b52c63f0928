"""Writes a WHIP publisher's own H.264 + Opus to fragmented MP4 (no decode, no encode); a kill -9
of the worker leaves a playable file that misses about a second at most (fmp4.FRAGMENTED)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import av

from protocol.recordings import segment_name
from workers.recording.fmp4 import Fmp4Writer
from workers.source.h264 import NAL_IDR, NAL_PPS, NAL_SPS, is_h264_keyframe, nal_type, nal_units
from workers.webrtc.media_unit import AUDIO_CLOCK, VIDEO_CLOCK

log = logging.getLogger("icey.recorder")


def recording_name(source_id: str, when: datetime | None = None) -> str:
    """`<source-id>-20261126T130512.345Z.mp4`: named like a continuous-recording segment."""
    return f"{source_id}-{segment_name(when or datetime.now(UTC))}"


class WhipRecorder:
    """Starts at the first keyframe that carries SPS/PPS; audio before it is dropped.

    A keyframe with a different SPS (a browser ramping its resolution up) starts a new file:
    an MP4's avcC header describes one SPS, and players that trust it would mis-scale the rest."""

    def __init__(self, directory: Path, source_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.source_id = directory, source_id
        self.path = directory / recording_name(source_id)
        self._sps = b""
        self._writer: Fmp4Writer | None = None
        self._origin: dict[str, tuple[int, float]] = {}  # kind -> (first RTP timestamp, arrival offset)
        self._t0: float | None = None
        self.frames = 0
        self._lock = threading.Lock()  # audio and video arrive on two receiver threads

    def _open(self, keyframe: bytes) -> Fmp4Writer:
        self._sps = next(n for n in nal_units(keyframe) if nal_type(n) == NAL_SPS)
        writer = Fmp4Writer(self.path)
        try:
            video = cast(av.VideoCodecContext, writer.add_video(None, keyframe).codec_context)
            writer.add_opus()
        except BaseException:
            writer.close()
            raise
        self._writer, self._t0 = writer, time.monotonic()
        log.info("recording to %s (%dx%d)", self.path.name, video.width, video.height)
        return writer

    def _seconds(self, kind: str, timestamp: int, clock: int) -> float:
        """Each track's RTP clock starts anywhere: align both on arrival of their first frame."""
        if kind not in self._origin:
            assert self._t0 is not None
            self._origin[kind] = (timestamp, time.monotonic() - self._t0)
        first, offset = self._origin[kind]
        return (int((timestamp - first) % (1 << 32)) + round(offset * clock)) / clock

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        with self._lock:
            self._write(kind, data, timestamp)

    def _write(self, kind: str, data: bytes, timestamp: int) -> None:
        nals = nal_units(data) if kind == "video" else []
        self_contained = {NAL_SPS, NAL_PPS, NAL_IDR} <= {nal_type(n) for n in nals}
        writer = self._writer
        if writer is None:
            if not self_contained:
                return  # wait for a self-contained keyframe
            writer = self._open(data)
        elif self_contained and next(n for n in nals if nal_type(n) == NAL_SPS) != self._sps:
            self._close()
            self.path = self.directory / recording_name(self.source_id)
            self._origin.clear()
            writer = self._open(data)
        clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        seconds = self._seconds(kind, timestamp, clock)
        key = kind == "video" and is_h264_keyframe(data)
        writer.write(kind, data, seconds, seconds, key=key)
        if kind == "video":
            self.frames += 1

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            log.info("recording saved to %s (%d video frames)", self.path.name, self.frames)
            self.frames = 0

    def close(self) -> None:
        with self._lock:
            self._close()
