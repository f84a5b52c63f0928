"""The built-in test pattern: a lavfi picture and tone, encoded once to H.264 + Opus, so a demo
source behaves exactly like a camera (real encoded packets, real keyframes, real pacing)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from fractions import Fraction

import av
from av.video.frame import PictureType

from protocol.source_kind import DEMO_SCHEME


class DemoParams:
    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        self.pattern = (parsed.netloc or url[len(DEMO_SCHEME):].split("?")[0]) or "testsrc2"
        self.size = query.get("size", "640x360")
        self.width, self.height = (int(x) for x in self.size.split("x"))
        self.rate = int(query.get("rate", "25"))
        self.tone = int(query.get("tone", "440"))
        self.gop = int(query.get("gop", str(self.rate)))

    @property
    def graph(self) -> str:
        # `realtime`/`arealtime` pace lavfi, which otherwise produces as fast as the CPU allows.
        return (f"{self.pattern}=size={self.size}:rate={self.rate},format=yuv420p,realtime[out0];"
                f"sine=frequency={self.tone}:sample_rate=48000,arealtime[out1]")


class DemoSource:
    """Packets as a demuxer would give them; `video`/`audio` are the encoder contexts."""

    format_name = "lavfi+libx264+libopus"

    def __init__(self, url: str) -> None:
        self.params = p = DemoParams(url)
        self.container = av.open(p.graph, format="lavfi")
        self.video = av.CodecContext.create("libx264", "w")
        self.video.width, self.video.height, self.video.pix_fmt = p.width, p.height, "yuv420p"
        self.video.time_base = Fraction(1, p.rate)
        self.video.framerate = Fraction(p.rate, 1)
        # Baseline, no B-frames, headers before every IDR: what a browser-ready camera sends.
        self.video.bit_rate = int(p.width * p.height * p.rate * 0.1)  # ~0.1 bit/pixel: camera-like
        self.video.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                              "g": str(p.gop), "repeat-headers": "1"}
        self.video.open()
        self.audio = av.CodecContext.create("libopus", "w")
        self.audio.sample_rate, self.audio.layout, self.audio.format = 48000, "stereo", "s16"
        self.audio.time_base = Fraction(1, 48000)
        self.audio.open()
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000,
                                            frame_size=self.audio.frame_size)
        self._frames = 0

    def packets(self) -> Iterator[tuple[str, av.Packet]]:
        for pkt in self.container.demux():
            kind = pkt.stream.type
            for frame in pkt.decode():
                if kind == "video":
                    frame.pts, frame.time_base = self._frames, self.video.time_base
                    # lavfi marks every frame as I; left set, x264 would make each one an IDR.
                    frame.pict_type = PictureType.NONE
                    self._frames += 1
                    for out in self.video.encode(frame):
                        yield "video", out
                else:
                    for chunk in self._resampler.resample(frame):
                        for out in self.audio.encode(chunk):
                            yield "audio", out

    def close(self) -> None:
        self.container.close()
