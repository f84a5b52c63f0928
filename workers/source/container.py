"""A file, camera, device or URL opened with PyAV's demuxer."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import av

from protocol.config import SourceSettings
from protocol.source_kind import local_path
from workers.source.base import LOOP, Interrupted
from workers.source.taps import SourceStreams

OPEN_TIMEOUT_SEC = 5.0
# Low-latency demux for live network sources: no probing backlog, no reorder buffer.
LIVE_OPTIONS = {"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay", "max_delay": "0",
                "reorder_queue_size": "0", "analyzeduration": "500000", "probesize": "200000"}


class SourceUnusable(Exception):
    """The source's config cannot work as it stands (a missing file): state `failed`."""


class ContainerSource:
    """`read_timeout`: PyAV gives up on one read that long without a packet (see watchdog.py)."""

    def __init__(self, src: SourceSettings, read_timeout: float) -> None:
        self.src = src
        self._interrupted = threading.Event()
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
        self.container = av.open(url, format=fmt, options=options, timeout=(OPEN_TIMEOUT_SEC, read_timeout))
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
        """Demuxes every stream and skips the ones not used here: each read comes back to this
        loop, so an interrupt is seen even while only other streams' packets arrive."""
        wanted = {s.index for s in (self.video, self.audio) if s is not None}
        while True:
            for pkt in self.container.demux():
                if self._interrupted.is_set():
                    raise Interrupted()
                if pkt.size == 0 or pkt.stream_index not in wanted:  # flush marker, or a stream we skip
                    continue
                yield pkt.stream.type, pkt
            if not self.src.loop:
                return
            self.container.seek(0)
            yield LOOP, None

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self.container.close()
