"""The snapshot service on real H.264 keyframes (libx264 via PyAV): sizes, one decode for concurrent
requests, the rate limit, the cache, and no picture while the source is not online."""

from __future__ import annotations

import asyncio
import io
from fractions import Fraction

import av
import numpy as np
import pytest

from protocol.messages import ControlError, SnapshotReply, SnapshotRequest
from workers.source.taps import SourceStreams
from workers.source.transcode import open_h264_encoder
from workers.stills import service as stills
from workers.stills.keyframes import KeyframeTap
from workers.stills.service import SnapshotService, fit, qscale


class Reader:
    def __init__(self) -> None:
        self.state = "online"


def keyframes(count: int, size: tuple[int, int] = (320, 180)) -> tuple[av.VideoCodecContext, list[av.Packet]]:
    """`count` packets, each a keyframe of a different grey."""
    enc = open_h264_encoder(size[0], size[1], Fraction(10), 200_000, 1, Fraction(1, 10))
    packets = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 40 + 50 * i, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 10)
        packets += enc.encode(frame)
    packets += enc.encode(None)
    assert all(p.is_keyframe for p in packets)
    return enc, packets


def feed(tap: KeyframeTap, enc: av.VideoCodecContext, packet: av.Packet, first: bool = False) -> None:
    if first:
        tap.on_open(SourceStreams(None, None, enc, None))
    tap.on_packet("video", packet, 0.0)


def grey(reply: SnapshotReply) -> float:
    with av.open(io.BytesIO(reply.jpeg), format="mjpeg") as container:
        return float(next(container.decode(video=0)).to_ndarray(format="gray").mean())


def test_fit_keeps_the_aspect_and_never_enlarges():
    assert fit(1280, 720, 0, 0) == (1280, 720)
    assert fit(1280, 720, 640, 0) == (640, 360)
    assert fit(1280, 720, 0, 180) == (320, 180)
    assert fit(1280, 720, 640, 100) == (178, 100)
    assert fit(320, 180, 1920, 1080) == (320, 180)
    assert (qscale(100), qscale(1)) == (2, 31)
    assert 2 < qscale(85) < 10


async def test_concurrent_requests_share_one_decode_and_new_pictures_are_rate_limited(monkeypatch):
    enc, packets = keyframes(3)
    tap, reader = KeyframeTap(), Reader()
    service = SnapshotService(tap, reader)
    try:
        reply = await service.take(SnapshotRequest())
        assert isinstance(reply, ControlError) and reply.code == "unavailable"  # nothing decoded yet: no picture

        feed(tap, enc, packets[0], first=True)
        replies = await asyncio.gather(*(service.take(SnapshotRequest(width=160)) for _ in range(6)))
        assert all(isinstance(r, SnapshotReply) and (r.width, r.height) == (160, 90) for r in replies)
        assert (service.decodes, service.encodes) == (1, 1)
        first = grey(replies[0])

        feed(tap, enc, packets[1])  # a newer keyframe, asked for too soon: the cached picture
        soon = await service.take(SnapshotRequest(width=160))
        assert isinstance(soon, SnapshotReply) and soon.jpeg == replies[0].jpeg and service.decodes == 1

        monkeypatch.setattr(stills, "MIN_INTERVAL_SEC", 0.0)
        later = await service.take(SnapshotRequest(width=160))
        assert isinstance(later, SnapshotReply) and service.decodes == 2
        assert grey(later) > first + 20  # the newer keyframe's picture

        cached = await service.take(SnapshotRequest(width=160, max_age_sec=60))  # young enough: no work at all
        assert isinstance(cached, SnapshotReply) and cached.jpeg == later.jpeg
        assert (service.decodes, service.encodes) == (2, 2)

        reader.state = "reconnecting"
        gone = await service.take(SnapshotRequest(max_age_sec=60))
        assert isinstance(gone, ControlError) and gone.code == "unavailable" and "reconnecting" in gone.detail
    finally:
        service.close()


@pytest.mark.parametrize("request_", [SnapshotRequest(quality=0), SnapshotRequest(quality=101),
                                      SnapshotRequest(width=-1), SnapshotRequest(max_age_sec=-1)])
async def test_bad_requests_are_refused(request_):
    service = SnapshotService(KeyframeTap(), Reader())
    try:
        reply = await service.take(request_)
        assert isinstance(reply, ControlError) and reply.code == "bad_request"
    finally:
        service.close()
