"""The reader's taps: everything that wants the source's own packets (viewer delivery,
continuous recording, clips, the shared decoder for vision and speech).

Taps run on the reader thread, so `on_packet` must be quick and must neither keep nor mux the
packet it is given (PyAV muxing and bitstream filters take a packet's data over): keep
`clone_packet(packet)` instead, and hand slow work to a thread of your own. A tap that raises
on a packet loses only that packet (the reader counts it in droppedUnits); one that raises on
open makes the reader reopen the source.
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
    video_codec: av.VideoCodecContext | None
    audio_codec: av.AudioCodecContext | None

    @property
    def encoded_here(self) -> bool:
        """The packets come from our own encoder (the demo): browser-ready by construction."""
        return self.video_stream is None and self.audio_stream is None

    def describe(self) -> list[StreamDescription]:
        found = []
        video, audio = self.video_codec, self.audio_codec
        if video is not None:
            stream = self.video_stream
            found.append(StreamDescription(
                index=stream.index if stream is not None else 0, type="video", codec=video.codec.canonical_name,
                profile=video.profile, time_base=_text(stream.time_base if stream is not None else video.time_base),
                width=video.width, height=video.height, pix_fmt=video.pix_fmt, has_extradata=bool(video.extradata)))
        if audio is not None:
            astream = self.audio_stream
            found.append(StreamDescription(
                index=astream.index if astream is not None else 1, type="audio", codec=audio.codec.canonical_name,
                profile=audio.profile, time_base=_text(astream.time_base if astream is not None else audio.time_base),
                sample_rate=audio.sample_rate, channels=audio.channels, has_extradata=bool(audio.extradata)))
        return found


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


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
