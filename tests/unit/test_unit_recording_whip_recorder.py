"""The WHIP recorder writes what it is given into MP4s that describe it truthfully."""

from __future__ import annotations

import time

import av

from protocol.config import RecordConfig
from workers.recording.segment_store import SegmentStore
from workers.recording.whip_recorder import WhipRecorder
from workers.source.demo import DemoSource


def _feed(recorder: WhipRecorder, url: str, seconds: float, clock_origin: int = 0) -> None:
    source = DemoSource(url)
    started = time.monotonic()
    for kind, packet in source.packets():
        clock = 90_000 if kind == "video" else 48_000
        recorder.write(kind, bytes(packet), clock_origin + int(packet.pts * packet.time_base * clock))
        if time.monotonic() - started > seconds:
            break
    source.close()


def test_a_resolution_change_starts_a_new_file(tmp_path):
    store = SegmentStore("desk", RecordConfig(dir=str(tmp_path)))
    store.recover()
    recorder = WhipRecorder(store)
    _feed(recorder, "demo://testsrc2?size=320x180&rate=25", 1.2)
    _feed(recorder, "demo://testsrc2?size=640x360&rate=25", 1.2, clock_origin=90_000 * 2)
    recorder.close()
    files = sorted((tmp_path / "desk").glob("*.mp4"))
    assert len(files) == 2
    sizes = []
    for path in files:
        with av.open(str(path)) as f:
            stream = f.streams.video[0]
            frames = list(f.decode(stream))
            assert len(frames) > 15
            assert {(fr.width, fr.height) for fr in frames} == {(stream.width, stream.height)}
            sizes.append((stream.width, stream.height))
    assert sizes == [(320, 180), (640, 360)]
