"""The source's latest keyframe, kept by a cheap tap so a snapshot can be decoded on demand
without a decoder running for nobody: one copy of one packet per GOP, no decoding."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av

from workers.intelligence.decoder import CodecParams
from workers.source.taps import SourceStreams


@dataclass(frozen=True, slots=True)
class Keyframe:
    seq: int  # identity: a new keyframe, a new number
    params: CodecParams
    data: bytes
    pts: int | None
    time_base: Fraction | None
    arrival: float  # time.monotonic() when it reached the tap


class KeyframeTap:
    """A PacketTap. `latest` is swapped whole on the reader thread, so any thread may read it;
    it is None while the source is closed (a stale picture must not outlive its source)."""

    def __init__(self) -> None:
        self.latest: Keyframe | None = None
        self.opened = 0.0  # time.monotonic() of the source's last (re)open: older pictures are stale
        self._params: CodecParams | None = None
        self._seq = itertools.count(1)

    def on_open(self, streams: SourceStreams) -> None:
        stream, ctx = streams.video_stream, streams.video_codec
        time_base = stream.time_base if stream is not None else (ctx.time_base if ctx is not None else None)
        self._start(CodecParams.of(ctx, time_base))

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        if kind == "video" and packet.is_keyframe:
            self._keep(bytes(packet), packet.pts, packet.time_base)

    def on_close(self, reason: str) -> None:
        self._params = self.latest = None

    def _start(self, params: CodecParams | None) -> None:
        self._params = params
        self.latest, self.opened = None, time.monotonic()

    def _keep(self, data: bytes, pts: int | None, time_base: Fraction | None) -> None:
        if self._params is not None:
            self.latest = Keyframe(next(self._seq), self._params, data, pts, time_base, time.monotonic())


class PublisherKeyframes(KeyframeTap):
    """A relay source's keyframes, from its WHIP publisher instead of a reader: RelaySink hands
    over each H.264 keyframe access unit as received (Annex B, with its SPS/PPS in band, as
    encoders send them before every IDR). It is also the snapshot service's `source`: online
    while a publisher is connected."""

    def publisher_started(self) -> None:
        self._start(CodecParams("h264", None))

    def keyframe(self, annexb: bytes) -> None:
        """From aiortc's receiver thread; one reference swapped, like the reader's tap."""
        self._keep(annexb, None, None)

    def publisher_left(self) -> None:
        self.on_close("the publisher left")

    @property
    def state(self) -> str:
        return "online" if self._params is not None else "offline"


def decode_keyframe(keyframe: Keyframe) -> av.VideoFrame:
    """The keyframe's picture, with a decoder of its own that lives for this one call."""
    ctx = cast(av.VideoCodecContext, keyframe.params.decoder())
    packet = av.Packet(keyframe.data)
    packet.pts = packet.dts = keyframe.pts
    if keyframe.time_base is not None:
        packet.time_base = keyframe.time_base
    frames = [*ctx.decode(packet), *ctx.decode(None)]
    if not frames:
        raise ValueError(f"the {keyframe.params.name} keyframe decoded to no picture")
    return frames[-1]
