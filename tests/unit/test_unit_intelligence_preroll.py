"""PreRollRing: whole GOPs from the last keyframe at or before the horizon, nothing before the
first keyframe, a byte cap, and where a clip for a motion at a given time starts."""

from __future__ import annotations

import pytest

from workers.intelligence.preroll import PreRollRing, TimedPacket

FPS = 10  # a video packet every 0.1 s, a keyframe every second, an audio packet after each


def packet(kind: str, seconds: float, key: bool = False, size: int = 100) -> TimedPacket:
    return TimedPacket(kind, bytes(size), seconds, seconds, 0.0, key, 1_000_000.0 + seconds, 1)


def feed(ring: PreRollRing, start: float, stop: float, size: int = 100) -> None:
    for i in range(round(start * FPS), round(stop * FPS)):
        t = i / FPS
        ring.add(packet("video", t, key=i % FPS == 0, size=size))
        ring.add(packet("audio", t + 0.05, key=True, size=10))


def kept(ring: PreRollRing) -> list[TimedPacket]:
    return ring.from_keyframe_before(float("-inf"))


def test_nothing_is_kept_before_the_first_keyframe():
    ring = PreRollRing(keep_sec=5.0)
    ring.add(packet("audio", 0.0, key=True))
    ring.add(packet("video", 0.1))
    assert len(ring) == 0 and ring.bytes == 0 and ring.newest is None
    ring.add(packet("video", 0.2, key=True))
    ring.add(packet("video", 0.3))
    assert [p.seconds for p in kept(ring)] == [0.2, 0.3]


def test_keeps_from_the_last_keyframe_at_or_before_the_horizon():
    ring = PreRollRing(keep_sec=2.5)
    feed(ring, 0.0, 10.0)  # the newest packet: audio at 9.95; the horizon: 7.45
    items = kept(ring)
    assert items[0].seconds == 7.0 and items[0].video_key
    assert [p.seconds for p in items if p.kind == "video"] == pytest.approx([i / FPS for i in range(70, 100)])
    assert ring.bytes == sum(len(p.data) for p in items) == 30 * 100 + 30 * 10
    assert ring.newest is not None and ring.newest.seconds == pytest.approx(9.95)


def test_a_keyframe_exactly_at_the_horizon_is_where_the_ring_starts():
    ring = PreRollRing(keep_sec=2.0)
    feed(ring, 0.0, 9.0)  # the newest packet: audio at 8.95, the horizon 6.95
    assert kept(ring)[0].seconds == 6.0
    ring.add(packet("video", 9.0, key=True))  # the horizon 7.0: a keyframe exactly there
    assert kept(ring)[0].seconds == 7.0


def test_the_byte_cap_drops_the_oldest_gops_first():
    ring = PreRollRing(keep_sec=60.0, max_bytes=25_000)  # a GOP is 10 * 1000 + 10 * 10 bytes
    feed(ring, 0.0, 5.0, size=1000)
    items = kept(ring)
    assert items[0].seconds == 3.0 and ring.bytes <= 25_000
    assert [p.seconds for p in items if p.video_key] == [3.0, 4.0]


def test_a_gop_larger_than_the_cap_leaves_no_pre_roll_until_the_next_keyframe():
    ring = PreRollRing(keep_sec=60.0, max_bytes=5_000)
    feed(ring, 0.0, 0.9, size=1000)  # one GOP, over the cap from its sixth frame on
    assert len(ring) == 0 and ring.bytes == 0
    feed(ring, 1.0, 1.3, size=1000)  # a new keyframe: kept again
    assert [p.seconds for p in kept(ring) if p.kind == "video"] == pytest.approx([1.0, 1.1, 1.2])


def test_a_clip_starts_at_the_last_keyframe_at_or_before_the_motion():
    ring = PreRollRing(keep_sec=10.0)
    assert ring.from_keyframe_before(5.0) == []  # nothing yet: the clip waits for a keyframe
    feed(ring, 0.0, 6.0)
    assert ring.from_keyframe_before(3.5)[0].seconds == 3.0
    assert ring.from_keyframe_before(4.0)[0].seconds == 4.0
    assert ring.from_keyframe_before(-1.0)[0].seconds == 0.0  # before them all: the first one
    assert ring.from_keyframe_before(5.9)[0].seconds == 5.0
    assert ring.from_keyframe_before(3.5)[-1] is ring.newest  # and on to the newest packet


def test_clear_empties_it():
    ring = PreRollRing(keep_sec=10.0)
    feed(ring, 0.0, 2.0)
    ring.clear()
    assert len(ring) == 0 and ring.bytes == 0 and ring.from_keyframe_before(1.0) == []
    ring.add(packet("video", 3.1))  # after a clear, a keyframe again comes first
    assert len(ring) == 0
