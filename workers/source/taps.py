"""The reader's taps: everything that wants the source's own packets (viewer delivery,
continuous recording, clips, the shared decoder for vision and speech).

Taps run on the reader thread, so `on_packet` must be quick and must neither keep nor mux the
packet it is given (PyAV muxing and bitstream filters take a packet's data over): keep
`clone_packet(packet)` instead, and hand slow work to a thread of your own. The one exception
is viewer delivery, which may consume the packet and therefore runs last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av

from protocol.messages import StreamDescription


@dataclass(frozen=True)
class SourceStreams:
    """What the source delivers. A demuxed source has streams (usable as mux templates); the
    demo source has only its encoder contexts (its H.264 carries SPS/PPS in band)."""

    video_stream: av.video.stream.VideoStream | None
    audio_stream: av.audio.stream.AudioStream | None
    video_codec: av.CodecContext | None
    audio_codec: av.CodecContext | None

    @property
    def encoded_here(self) -> bool:
        """The packets come from our own encoder (the demo): browser-ready by construction."""
        return self.video_stream is None and self.audio_stream is None

    def describe(self) -> list[StreamDescription]:
        found = []
        for kind, stream, ctx, default_index in (("video", self.video_stream, self.video_codec, 0),
                                                  ("audio", self.audio_stream, self.audio_codec, 1)):
            if ctx is None:
                continue
            index = stream.index if stream is not None else default_index
            time_base = stream.time_base if stream is not None else ctx.time_base
            found.append(StreamDescription(
                index=index, type=kind, codec=ctx.codec.canonical_name, profile=getattr(ctx, "profile", None),
                time_base=str(time_base) if time_base is not None else None,
                width=getattr(ctx, "width", None) if kind == "video" else None,
                height=getattr(ctx, "height", None) if kind == "video" else None,
                pix_fmt=ctx.pix_fmt if kind == "video" else None,
                sample_rate=getattr(ctx, "sample_rate", None) if kind == "audio" else None,
                channels=getattr(ctx, "channels", None) if kind == "audio" else None,
                has_extradata=bool(ctx.extradata)))
        return found


class PacketTap(Protocol):
    def on_open(self, streams: SourceStreams) -> None:
        """The source (re)opened; packets follow. A new epoch: start a new segment."""

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        """`seconds` is on the continuous source timeline (monotonic over loops/reconnects)."""

    def on_close(self, reason: str) -> None:
        """The source dropped or the worker is stopping."""


def clone_packet(packet: av.Packet) -> av.Packet:
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy
