"""One fragmented MP4 file of a source's own packets (no decode, no encode): the writer behind
continuous-recording segments, WHIP recordings and motion clips.

`FRAGMENTED`: an empty moov first, then a fragment at every video keyframe and at least every
0.5 s, each flushed as it is written, so a kill -9 of the worker leaves a playable file that
misses about a second at most.

Tracks keep the clocks the MP4 muxer keeps (video 1/90000, audio 1/sample rate), so the repair
happens in the file's own ticks: a packet whose DTS is not after its track's last one goes one
tick after it (rounding to the track clock, a stalled source clock), and no PTS precedes its DTS.
"""

from __future__ import annotations

import io
import logging
import struct
from fractions import Fraction
from pathlib import Path

import av

from workers.source.h264 import NAL_PPS, NAL_SPS, nal_type, nal_units

log = logging.getLogger("icey.fmp4")

FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000",
              "flush_packets": "1"}
VIDEO_TIME_BASE = Fraction(1, 90_000)
OPUS_RATE = 48_000

_MP4_CODECS: set[str] | None = None


def mp4_can_hold(codec: str) -> bool:
    """Whether FFmpeg's MP4 muxer takes `codec` (a canonical name: "h264", "aac", "opus"...)."""
    global _MP4_CODECS
    if _MP4_CODECS is None:
        with av.open(io.BytesIO(), "w", format="mp4") as probe:
            _MP4_CODECS = set(probe.supported_codecs)
    return codec in _MP4_CODECS


def has_fragment(path: Path) -> bool:
    """Whether the file holds a complete fragment (a `moof` box and the `mdat` after it) on disk:
    a file cut short by a full disk or a kill may end in a partial one and still play, while a
    header alone (what a write to a full disk leaves) plays nothing. Reads box headers only."""
    try:
        with path.open("rb") as f:
            size_on_disk = f.seek(0, io.SEEK_END)
            pos, moof = 0, False
            while pos + 8 <= size_on_disk:
                f.seek(pos)
                size, kind = struct.unpack(">I4s", f.read(8))
                if size == 1:  # a 64-bit size follows
                    size = struct.unpack(">Q", f.read(8))[0]
                if size < 8 or pos + size > size_on_disk:
                    return False
                if kind == b"mdat" and moof:
                    return True
                moof = kind == b"moof"
                pos += size
    except OSError:
        return False
    return False


class NotSelfContained(ValueError):
    """A keyframe without SPS/PPS cannot describe the video track: wait for one that has them."""


class Fmp4Writer:
    """Written at `write_to` (default: `path` itself) and renamed to `path` by `close()`, so a
    caller that wants only complete files under their final name passes a `.part` path."""

    def __init__(self, path: Path, write_to: Path | None = None) -> None:
        self.path = path
        self.write_to = write_to or path
        self.container = av.open(str(self.write_to), "w", format="mp4", options=dict(FRAGMENTED))
        self.packets = {"video": 0, "audio": 0}
        self._streams: dict[str, av.stream.Stream] = {}
        self._time_base: dict[str, Fraction] = {}
        self._last_dts: dict[str, int] = {}

    def add_video(self, template: av.stream.Stream | None, keyframe: bytes) -> av.stream.Stream:
        """The track of `template` when that describes the codec (avcC or SDP parameter sets, or
        not H.264), else of the keyframe's in-band SPS/PPS (our encoder, WHIP, a bare SDP)."""
        if template is not None and (template.codec_context.extradata or template.codec_context.name != "h264"):
            stream = self.container.add_stream_from_template(template)
        else:
            if not {NAL_SPS, NAL_PPS} <= {nal_type(n) for n in nal_units(keyframe)}:
                raise NotSelfContained("keyframe without SPS/PPS")
            # FFmpeg's raw H.264 demuxer turns the in-band SPS/PPS into extradata (the MP4's avcC).
            with av.open(io.BytesIO(keyframe), format="h264") as template_input:
                stream = self.container.add_stream_from_template(template_input.streams.video[0])
        return self._track("video", stream, VIDEO_TIME_BASE)

    def add_audio(self, template: av.audio.stream.AudioStream | None,
                  encoder: av.AudioCodecContext | None = None) -> av.stream.Stream | None:
        """The track of `template`, else Opus as our own Opus `encoder` makes it; None when MP4
        cannot carry the template's codec or there is neither."""
        if template is not None:
            ctx = template.codec_context
            if not mp4_can_hold(ctx.codec.canonical_name):
                return None
            stream = self.container.add_stream_from_template(template)
            return self._track("audio", stream, Fraction(1, ctx.sample_rate or OPUS_RATE))
        if encoder is not None and encoder.codec.canonical_name == "opus":
            return self.add_opus(encoder.sample_rate or OPUS_RATE, encoder.layout)
        return None

    def add_opus(self, rate: int = OPUS_RATE, layout: av.AudioLayout | None = None) -> av.stream.Stream:
        stream = self.container.add_stream("libopus", rate=rate)
        if layout is not None:
            stream.codec_context.layout = layout
        return self._track("audio", stream, Fraction(1, rate))

    def _track(self, kind: str, stream: av.stream.Stream, time_base: Fraction) -> av.stream.Stream:
        stream.time_base = time_base
        self._streams[kind], self._time_base[kind] = stream, time_base
        return stream

    def write(self, kind: str, data: bytes, pts: float, dts: float, duration: float = 0.0,
              key: bool = False) -> bool:
        """Muxes one packet, its times in seconds from the file's start; False when the file has
        no `kind` track. Raises what the muxer raises."""
        stream = self._streams.get(kind)
        if stream is None:
            return False
        tb = self._time_base[kind]
        pts_ticks, dts_ticks = round(pts / tb), round(dts / tb)
        last = self._last_dts.get(kind)
        if last is not None and dts_ticks <= last:
            dts_ticks = last + 1
        packet = av.Packet(data)
        packet.time_base, packet.pts, packet.dts = tb, max(pts_ticks, dts_ticks), dts_ticks
        if duration:
            packet.duration = max(1, round(duration / tb))
        packet.is_keyframe = key
        packet.stream = stream
        self.container.mux(packet)
        self._last_dts[kind] = dts_ticks
        self.packets[kind] += 1
        return True

    def close(self) -> int:
        """Ends the file and returns its size; 0 when it was removed because it plays nothing:
        no packet of its main track (video, else audio), or no fragment reached the disk."""
        try:
            self.container.close()
        except Exception as exc:  # the fragments already flushed still play
            log.warning("closing %s: %s", self.write_to.name, exc)
        main = "video" if "video" in self._streams else "audio"
        try:
            size = self.write_to.stat().st_size
        except OSError:
            size = 0
        if size == 0 or not self.packets[main] or not has_fragment(self.write_to):
            self.write_to.unlink(missing_ok=True)
            return 0
        if self.write_to != self.path:
            self.write_to.rename(self.path)
        return size
