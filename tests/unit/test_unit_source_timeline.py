"""The continuous output timeline that viewers' RTP timestamps and recordings ride on."""

from __future__ import annotations

from workers.source.timeline import Timeline


def test_loops_and_reconnects_keep_increasing():
    t = Timeline()
    first = [t.map(s) for s in (10.0, 10.04, 10.08)]
    t.new_epoch()  # a reconnect: the source's clock restarts at 0
    second = [t.map(s) for s in (0.0, 0.04)]
    out = first + second
    assert out == sorted(out) and out[0] == 0.0
    assert 0 < second[0] - first[-1] < 0.1


def test_a_clock_jumping_back_is_absorbed_but_interleaving_is_kept():
    t = Timeline()
    a = [t.map(s) for s in (100.0, 100.5, 101.0, 109.0)]
    behind = t.map(100.2, "audio")  # a file storing seconds of video ahead of its audio: kept as is
    assert abs(behind - 0.2) < 1e-9
    jumped = t.map(105.1)  # a shared RTSP mount rewound the video clock ~3.9 s
    after = t.map(105.14)
    assert jumped > a[-1] and after > jumped


def test_streams_jumping_one_after_the_other_stay_continuous():
    """What GStreamer's shared RTSP mount does when a second client joins: the audio clock
    re-bases to 0, the video clock a few packets later, then both leap ahead by seconds."""
    t = Timeline()
    feed = [("video", 2.80), ("audio", 2.86), ("audio", 2.88), ("video", 2.867), ("audio", 0.0),
            ("video", 2.90), ("audio", 0.02), ("video", 0.0), ("audio", 0.04), ("video", 0.0667)]
    out: dict[str, list[float]] = {"audio": [], "video": []}
    for kind, seconds in feed:
        out[kind].append(t.map(seconds, kind))
    t.jumped("video")  # the reader saw the video clock leap 3 s ahead of real time
    out["video"].append(t.map(3.1, "video"))
    for kind, values in out.items():
        steps = [b - a for a, b in zip(values, values[1:], strict=False)]
        assert all(0 < s < 0.1 for s in steps), (kind, steps)
