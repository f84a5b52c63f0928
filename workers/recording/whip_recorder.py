"""Writes a WHIP publisher's own H.264 + Opus to fragmented MP4 (no decode, no encode).

Fragments of at most 0.5 s are flushed as they are written, so a kill -9 of the worker leaves
a playable file that misses about a second at most (measured in notes/infra.md item 2).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av

from workers.source.h264 import NAL_IDR, NAL_PPS, NAL_SPS, is_h264_keyframe, nal_type, nal_units
from workers.webrtc.media_unit import AUDIO_CLOCK, VIDEO_CLOCK

log = logging.getLogger("icey.recorder")
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000",
              "flush_packets": "1"}


def recording_name(source_id: str, when: datetime | None = None) -> str:
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
    return f"{source_id}-{stamp}.mp4"


class WhipRecorder:
    """Starts at the first keyframe that carries SPS/PPS; audio before it is dropped.

    A keyframe with a different SPS (a browser ramping its resolution up) starts a new file:
    an MP4's avcC header describes one SPS, and players that trust it would mis-scale the rest."""

    def __init__(self, directory: Path, source_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.source_id = directory, source_id
        self.path = directory / recording_name(source_id)
        self._sps = b""
        self.container: av.container.OutputContainer | None = None
        self.video = self.audio = None
        self._origin: dict[str, tuple[int, float]] = {}  # kind -> (first RTP timestamp, arrival offset)
        self._t0: float | None = None
        self.frames = 0
        self.width = self.height = 0
        self._lock = threading.Lock()  # audio and video arrive on two receiver threads

    def _open(self, keyframe: bytes) -> None:
        """The video stream's parameters come from the keyframe itself, via FFmpeg's raw H.264
        demuxer (it extracts SPS/PPS into extradata, which the MP4 muxer turns into avcC)."""
        self._sps = next(n for n in nal_units(keyframe) if nal_type(n) == NAL_SPS)
        template_input = av.open(io.BytesIO(keyframe), format="h264")
        template = template_input.streams.video[0]
        self.container = av.open(str(self.path), "w", format="mp4", options=FRAGMENTED)
        self.video = self.container.add_stream_from_template(template)
        self.video.time_base = Fraction(1, VIDEO_CLOCK)
        self.width, self.height = template.codec_context.width, template.codec_context.height
        template_input.close()
        self.audio = self.container.add_stream("libopus", rate=48_000)
        self.audio.time_base = Fraction(1, AUDIO_CLOCK)
        self._t0 = time.monotonic()
        log.info("recording to %s (%dx%d)", self.path.name, self.width, self.height)

    def _pts(self, kind: str, timestamp: int, clock: int) -> int:
        """Each track's RTP clock starts anywhere: align both on arrival of their first frame."""
        if kind not in self._origin:
            assert self._t0 is not None
            self._origin[kind] = (timestamp, time.monotonic() - self._t0)
        first, offset = self._origin[kind]
        return int((timestamp - first) % (1 << 32)) + round(offset * clock)

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        with self._lock:
            self._write(kind, data, timestamp)

    def _write(self, kind: str, data: bytes, timestamp: int) -> None:
        nals = nal_units(data) if kind == "video" else []
        self_contained = {NAL_SPS, NAL_PPS, NAL_IDR} <= {nal_type(n) for n in nals}
        if self.container is None:
            if not self_contained:
                return  # wait for a self-contained keyframe
            self._open(data)
        elif self_contained and next(n for n in nals if nal_type(n) == NAL_SPS) != self._sps:
            self._close()
            self.path = self.directory / recording_name(self.source_id)
            self._origin.clear()
            self._open(data)
        if kind == "video":
            pkt = av.Packet(data)
            pkt.pts = pkt.dts = self._pts(kind, timestamp, VIDEO_CLOCK)
            pkt.time_base, pkt.stream = self.video.time_base, self.video
            pkt.is_keyframe = is_h264_keyframe(data)
            self.frames += 1
        else:
            pkt = av.Packet(data)
            pkt.pts = pkt.dts = self._pts(kind, timestamp, AUDIO_CLOCK)
            pkt.time_base, pkt.stream = self.audio.time_base, self.audio
        self.container.mux(pkt)

    def _close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None
            log.info("recording saved to %s (%d video frames)", self.path.name, self.frames)
            self.frames = 0

    def close(self) -> None:
        with self._lock:
            self._close()
