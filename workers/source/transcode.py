"""Once-per-source transcoding for what browsers cannot take as is: video that is not H.264
or has B-frames becomes Constrained Baseline H.264; audio that is not Opus becomes Opus. Every
viewer shares the output, so the cost does not grow with viewers (icey encodes per viewer)."""

from __future__ import annotations

from fractions import Fraction
from typing import cast

import av
from av.video.frame import PictureType

from protocol.config import VideoConfig


def open_h264_encoder(width: int, height: int, rate: Fraction, bitrate: int, gop: int,
                      time_base: Fraction) -> av.VideoCodecContext:
    """Constrained Baseline, no B-frames, SPS/PPS before every IDR: what every browser decodes
    and what a late joiner can start from at any keyframe."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base, enc.framerate, enc.bit_rate = time_base, rate, bitrate
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "g": str(gop),
                   "repeat-headers": "1"}
    enc.open()
    return enc


def open_opus_encoder() -> tuple[av.AudioCodecContext, av.AudioResampler]:
    """libopus at 48 kHz stereo with a resampler that cuts its 20 ms frames."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48_000, "stereo", "s16"
    enc.time_base = Fraction(1, 48_000)
    enc.open()
    return enc, av.AudioResampler(format="s16", layout="stereo", rate=48_000, frame_size=enc.frame_size)


def needs_video_transcode(stream: av.video.stream.VideoStream) -> bool:
    ctx = stream.codec_context
    return ctx.name != "h264" or bool(ctx.has_b_frames)


class VideoTranscoder:
    """Decode + libx264 (ultrafast, zerolatency, baseline, SPS/PPS before every IDR)."""

    def __init__(self, stream: av.video.stream.VideoStream, cfg: VideoConfig) -> None:
        self.decoder = cast(av.VideoCodecContext, av.CodecContext.create(stream.codec_context.name, "r"))
        if stream.codec_context.extradata:
            self.decoder.extradata = stream.codec_context.extradata
        rate = stream.average_rate or stream.guessed_rate or Fraction(cfg.fps, 1)
        self.rate = Fraction(rate).limit_denominator(1001)
        self.encoder: av.VideoCodecContext | None = None
        self.cfg = cfg

    def _open_encoder(self, frame: av.VideoFrame) -> av.VideoCodecContext:
        gop = max(1, round(float(self.rate)))  # one keyframe a second keeps late joiners' GOP cache small
        return open_h264_encoder(frame.width - frame.width % 2, frame.height - frame.height % 2, self.rate,
                                 self.cfg.bitrate, gop, Fraction(1, 90_000))

    def encode(self, packet: av.Packet) -> list[tuple[bytes, float, bool]]:
        """(Annex B access unit, pts in seconds, keyframe) for each frame the packet completes."""
        out = []
        for frame in self.decoder.decode(packet):
            if frame.pts is None or frame.time_base is None:
                continue
            seconds = float(frame.pts * frame.time_base)
            if self.encoder is None:
                self.encoder = self._open_encoder(frame)
            if frame.format.name != "yuv420p" or frame.width != self.encoder.width:
                frame = frame.reformat(width=self.encoder.width, height=self.encoder.height, format="yuv420p")
            frame.pts, frame.time_base = round(seconds * 90_000), Fraction(1, 90_000)
            frame.pict_type = PictureType.NONE
            for pkt in self.encoder.encode(frame):
                if pkt.pts is not None and pkt.time_base is not None:
                    out.append((bytes(pkt), float(pkt.pts * pkt.time_base), pkt.is_keyframe))
        return out


class AudioTranscoder:
    """Decode + resample + libopus at 48 kHz stereo, 20 ms frames."""

    def __init__(self, stream: av.audio.stream.AudioStream) -> None:
        self.decoder = cast(av.AudioCodecContext, av.CodecContext.create(stream.codec_context.name, "r"))
        if stream.codec_context.extradata:
            self.decoder.extradata = stream.codec_context.extradata
        ctx = stream.codec_context
        if ctx.sample_rate:
            self.decoder.sample_rate = ctx.sample_rate
        if ctx.layout:
            self.decoder.layout = ctx.layout
        self.encoder, self.resampler = open_opus_encoder()

    def encode(self, packet: av.Packet) -> list[tuple[bytes, float]]:
        """(Opus packet, seconds): the resampler carries the input's timestamps through to the
        encoder, so output time follows the input's, restarts included (a looping file)."""
        out = []
        for frame in self.decoder.decode(packet):
            for chunk in self.resampler.resample(frame):
                for pkt in self.encoder.encode(chunk):
                    if pkt.pts is not None and pkt.time_base is not None:
                        out.append((bytes(pkt), float(pkt.pts * pkt.time_base)))
        return out
