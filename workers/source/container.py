"""A file, camera, device or URL opened with PyAV's demuxer."""

from __future__ import annotations

import os
from collections.abc import Iterator

import av

from protocol.config import SourceSettings
from protocol.source_kind import local_path
from workers.source.base import LOOP
from workers.source.taps import SourceStreams

OPEN_TIMEOUT_SEC = 5.0
# A camera that stops sending for this long is declared gone (PyAV raises on the read timeout).
READ_TIMEOUT_SEC = 3.0
# Low-latency demux for live network sources: no probing backlog, no reorder buffer.
LIVE_OPTIONS = {"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay", "max_delay": "0",
                "reorder_queue_size": "0", "analyzeduration": "500000", "probesize": "200000"}


class SourceUnusable(Exception):
    """The source's config cannot work as it stands (a missing file): state `failed`."""


class ContainerSource:
    def __init__(self, src: SourceSettings) -> None:
        self.src = src
        url, fmt, options = src.url, None, {}
        if src.kind == "file":
            url = local_path(src.url) or src.url
            if not os.path.isfile(url):
                raise SourceUnusable(f"Local media source not found: {url}")
        elif src.kind == "device":
            url, fmt = (src.url[5:] if src.url.startswith("v4l2:") else src.url), "v4l2"
            options = {"framerate": str(src.video.fps), "video_size": f"{src.video.width}x{src.video.height}"}
        elif src.live:
            options = dict(LIVE_OPTIONS) if src.kind == "rtsp" else {}
        self.container = av.open(url, format=fmt, options=options, timeout=(OPEN_TIMEOUT_SEC, READ_TIMEOUT_SEC))
        self.format_name: str = self.container.format.name
        self.video = next((s for s in self.container.streams.video), None)
        self.audio = next((s for s in self.container.streams.audio), None)
        if self.video is None and self.audio is None:
            raise av.error.InvalidDataError(0, "source has neither video nor audio")

    def streams(self) -> SourceStreams:
        video, audio = self.video, self.audio
        return SourceStreams(video, audio, video.codec_context if video is not None else None,
                             audio.codec_context if audio is not None else None)

    def packets(self) -> Iterator[tuple[str, av.Packet | None]]:
        streams = [s for s in (self.video, self.audio) if s is not None]
        while True:
            for pkt in self.container.demux(streams):
                if pkt.size == 0:  # demuxer flush marker
                    continue
                yield pkt.stream.type, pkt
            if not self.src.loop:
                return
            self.container.seek(0)
            yield LOOP, None

    def close(self) -> None:
        self.container.close()
