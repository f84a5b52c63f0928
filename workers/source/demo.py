"""The built-in test pattern: a lavfi picture and tone, encoded once to H.264 + Opus, so a demo
source behaves exactly like a camera (real encoded packets, real keyframes, real pacing)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction

import av
from av.video.frame import PictureType

from protocol.demo_url import DemoParams, parse_demo_url
from workers.source.base import Interrupted
from workers.source.taps import SourceStreams
from workers.source.transcode import open_h264_encoder, open_opus_encoder

# Synthetic scenes for motion tests (lavfi's own patterns can be named too, e.g. smptehdbars):
# `square`: a white square (2/9 of the height) on dark grey, moving left to right across the middle
#   for `move` s of every `period` s, then resting; back to the left at each period.
# `lightstep`: SMPTE bars whose luma steps up by 40 for 2 s of every 4 s (a light switched on).
SCENES = {
    "square": ("color=c=0x404040:size={size}:rate={rate}[bg];color=c=white:size={side}x{side}:rate={rate}[sq];"
               "[bg][sq]overlay=x='{x0}+{span}*min(mod(t\\,{period})/{move}\\,1)':y={y}:shortest=1"),
    "lightstep": "smptehdbars=size={size}:rate={rate},lutyuv=y='clip(val+40\\,0\\,255)':enable='gte(mod(t\\,4)\\,2)'",
}


def video_graph(p: DemoParams) -> str:
    """Only checked parameters get here (parse_demo_url): a whitelisted pattern and numbers."""
    scene = SCENES.get(p.pattern)
    if scene is None:
        return f"{p.pattern}=size={p.size}:rate={p.rate}"
    side = p.height * 2 // 9
    return scene.format(size=p.size, rate=p.rate, side=side, y=(p.height - side) // 2,
                        span=p.width - 2 * side, move=p.move, period=p.period, x0=side // 2)


def lavfi_graph(p: DemoParams) -> str:
    # `realtime`/`arealtime` pace lavfi, which otherwise produces as fast as the CPU allows.
    gate = ""
    if p.burst is not None:
        on, period = p.burst
        gate = f",volume=0:enable='gte(mod(t\\,{period})\\,{on})'"
    return (f"{video_graph(p)},format=yuv420p,realtime[out0];"
            f"sine=frequency={p.tone}:sample_rate=48000{gate},arealtime[out1]")


class DemoSource:
    """Packets as a demuxer would give them; `video`/`audio` are the encoder contexts."""

    format_name: str = "lavfi+libx264+libopus"

    def __init__(self, url: str) -> None:
        self.params = p = parse_demo_url(url)
        self.container = av.open(lavfi_graph(p), format="lavfi")
        # ~0.1 bit per pixel: camera-like. What a browser-ready camera sends (see open_h264_encoder).
        self.video = open_h264_encoder(p.width, p.height, Fraction(p.rate, 1), int(p.width * p.height * p.rate * 0.1),
                                       p.gop, Fraction(1, p.rate))
        self.audio, self._resampler = open_opus_encoder()
        self._frames = 0
        self._interrupted = threading.Event()

    def streams(self) -> SourceStreams:
        return SourceStreams(None, None, self.video, self.audio)

    def packets(self) -> Iterator[tuple[str, av.Packet | None]]:
        for pkt in self.container.demux():
            if self._interrupted.is_set():
                raise Interrupted()
            for frame in pkt.decode():
                if isinstance(frame, av.VideoFrame):
                    frame.pts, frame.time_base = self._frames, self.video.time_base
                    # lavfi marks every frame as I; left set, x264 would make each one an IDR.
                    frame.pict_type = PictureType.NONE
                    self._frames += 1
                    for out in self.video.encode(frame):
                        yield "video", out
                elif isinstance(frame, av.AudioFrame):
                    for chunk in self._resampler.resample(frame):
                        for out in self.audio.encode(chunk):
                            yield "audio", out

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self.container.close()
