"""The reader's taps: everything besides viewers that wants the source's own packets
(continuous recording, clips, the shared decoder for vision and speech).

Taps run on the reader thread, so `on_packet` must be quick and must neither keep nor mux the
packet it is given (PyAV muxing and bitstream filters take a packet's data over): keep
`clone_packet(packet)` instead, and hand slow work to a thread of your own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av


@dataclass(frozen=True)
class SourceStreams:
    """What the source delivers. A demuxed source has streams (usable as mux templates); the
    demo source has only its encoder contexts (its H.264 carries SPS/PPS in band)."""

    video_stream: av.video.stream.VideoStream | None
    audio_stream: av.audio.stream.AudioStream | None
    video_codec: av.CodecContext | None
    audio_codec: av.CodecContext | None


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
