"""The fan-out's hand-off (workers/webrtc/fanout.py): a camera nobody watches keeps its current GOP,
unpacketized, and hands nothing to the event loop; a viewer starting from that GOP is then given
only the units after it."""

from __future__ import annotations

import asyncio

import pytest
from support.media import h264_access_units

from workers.webrtc.fanout import Fanout
from workers.webrtc.media_unit import MediaUnit, h264_unit, opus_unit


@pytest.fixture(scope="module")
def access_units() -> list[bytes]:
    return [bytes(p) for p in h264_access_units(0.8, 15, (160, 90))]  # 12 units, the first a keyframe


class Recorder:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.offered: list[tuple[MediaUnit, int]] = []

    def offer(self, unit: MediaUnit, serial: int) -> None:
        self.offered.append((unit, serial))

    def missed(self, count: int) -> None:
        raise AssertionError("nothing was lost")


async def test_an_idle_camera_keeps_its_gop_unpacketized_and_wakes_no_loop(access_units):
    fanout = Fanout(asyncio.get_running_loop())
    units = [h264_unit(data, i * 6000, False, b"") for i, data in enumerate(access_units)]
    assert units[0].keyframe and not any(u.keyframe for u in units[1:])
    for unit in units[:5]:
        fanout.publish_threadsafe(unit)
        fanout.publish_threadsafe(opus_unit(b"\xfc" * 40, 0))
    assert not fanout._scheduled  # no drain for the event loop
    gop, serial = fanout.snapshot()
    assert gop == units[:5] and serial == 10
    assert all(u._payloads is None for u in gop)  # nothing packetized while nobody watched
    # The first viewer: it starts from the snapshot, then gets only what follows it.
    viewer, listener = Recorder("video"), Recorder("audio")
    fanout.subscribe(viewer)
    fanout.subscribe(listener)
    for unit in units[5:8]:
        fanout.publish_threadsafe(unit)
    await asyncio.sleep(0)
    assert [(u, s) for u, s in viewer.offered] == [(units[5], 11), (units[6], 12), (units[7], 13)]
    assert not listener.offered
    assert gop[0].payloads and gop[0].payloads[0][0] & 0x1F in (7, 24)  # packetized on use: SPS/PPS first
    fanout.unsubscribe(viewer)
    fanout.unsubscribe(listener)
    fanout.publish_threadsafe(units[8])
    await asyncio.sleep(0)
    assert len(viewer.offered) == 3 and fanout.snapshot()[0] == units[:9]
    fanout.reset_threadsafe()
    assert fanout.snapshot()[0] == []
