"""workers/recording/segments.py driven like the reader drives it (no server): segment names, rolls
at keyframes, a new segment per open, the index the API reads, recovery after a crash."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import av
import msgspec
import pytest
from support.media import make_media_file

from api.artifact_routes import list_recordings
from protocol.config import RecordConfig, RetentionConfig
from protocol.recordings import INDEX_NAME, OPEN_NAME, parse_segment_name, read_index, segment_name
from workers.recording.segment_store import SegmentStore
from workers.recording.segments import SegmentRecorder
from workers.source.taps import SourceStreams
from workers.source.timeline import Timeline


def test_segment_names_sort_and_round_trip():
    when = datetime(2026, 11, 26, 13, 5, 12, 345_678, tzinfo=UTC)
    assert segment_name(when) == "20261126T130512.345Z.mp4"
    assert parse_segment_name("20261126T130512.345Z.mp4") == when.replace(microsecond=345_000)
    later = datetime(2026, 11, 26, 13, 5, 12, 346_000, tzinfo=UTC)
    assert sorted([segment_name(later), segment_name(when)])[0] == segment_name(when)
    for bad in ("index.json", "20261126T130512.345Z.mp4.tmp", "2026-11-26T13:05:12Z.mp4", "20261126T130512.34xZ.mp4"):
        assert parse_segment_name(bad) is None


def recorder_for(record: RecordConfig) -> SegmentRecorder:
    """A worker's recorder, its store's recovery done (what the store's thread does first)."""
    store = SegmentStore("cam", record)
    store.recover()
    return SegmentRecorder(store)


def feed(recorder: SegmentRecorder, path: Path, timeline: Timeline, close: bool = True) -> int:
    """What SourceReader does for one open of a file source: on_open, every packet, on_close."""
    count = 0
    with av.open(str(path)) as source:
        video = source.streams.video[0] if source.streams.video else None
        audio = source.streams.audio[0] if source.streams.audio else None
        timeline.new_epoch()
        recorder.on_open(SourceStreams(video, audio, video.codec_context if video else None,
                                       audio.codec_context if audio else None))
        for pkt in source.demux():
            if pkt.size == 0 or pkt.pts is None:
                continue
            recorder.on_packet(pkt.stream.type, pkt, timeline.map(float(pkt.pts * pkt.time_base)))
            count += 1
        if close:
            recorder.on_close("source ended")
    return count


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def _duration(path: Path) -> float:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        ends = [float((p.pts + (p.duration or 0)) * p.time_base) for p in c.demux(v) if p.pts is not None]
        return max(ends)


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    return make_media_file(tmp_path / "src.mp4", seconds=6.0, fps=15)  # a keyframe every second


def test_rolls_at_keyframes_and_starts_anew_per_open(tmp_path, source_file):
    record = RecordConfig(enabled=True, segment_seconds=2.0, dir=str(tmp_path / "rec"))
    recorder = recorder_for(record)
    timeline = Timeline()
    feed(recorder, source_file, timeline)
    feed(recorder, source_file, timeline)  # a reconnect: a new epoch, a new segment
    directory = tmp_path / "rec" / "cam"
    segments = sorted(directory.glob("*.mp4"))
    assert len(segments) == 6, segments
    source_packets = _video_packets(source_file)
    for seg in segments:
        with av.open(str(seg)) as c:
            v = c.streams.video[0]
            assert (v.codec_context.width, v.codec_context.height) == (320, 180)
            assert c.streams.audio[0].codec_context.name == "aac"
            first = next(p for p in c.demux(v) if p.size)
            assert first.is_keyframe and first.pts == 0  # every segment starts at 0 on a keyframe
        assert _duration(seg) == pytest.approx(2.0, abs=0.1)
    # No re-encode: the recorded samples are the source's own, byte for byte.
    recorded = [p for seg in segments[:3] for p in _video_packets(seg)]
    assert recorded == source_packets
    index = read_index(directory)
    assert index is not None and [e.file for e in index.segments] == [s.name for s in segments]
    assert all(not e.open and e.bytes == (directory / e.file).stat().st_size for e in index.segments)
    assert all(e.duration_sec == pytest.approx(2.0, abs=0.1) for e in index.segments)
    assert not (directory / OPEN_NAME).exists()
    # The API reads the same index.
    items = msgspec.to_builtins(list_recordings(directory, "cam"))  # the JSON the API serves
    assert [i["url"] for i in items] == [f"/artifacts/recordings/cam/{s.name}" for s in segments]
    assert [i["bytes"] for i in items] == [s.stat().st_size for s in segments]
    assert items[0]["start"].endswith("Z") and items[0]["durationSec"] == index.segments[0].duration_sec


def test_open_segment_is_listed_and_recovered_after_a_crash(tmp_path, source_file):
    record = RecordConfig(enabled=True, segment_seconds=60.0, dir=str(tmp_path / "rec"))
    crashed = recorder_for(record)
    feed(crashed, source_file, Timeline(), close=False)  # never closed: what a kill -9 leaves
    directory = tmp_path / "rec" / "cam"
    (segment,) = directory.glob("*.mp4")
    items = msgspec.to_builtins(list_recordings(directory, "cam"))  # the JSON the API serves
    assert len(items) == 1 and items[0]["open"] is True and items[0]["bytes"] == segment.stat().st_size
    assert (directory / OPEN_NAME).exists()
    # Only what open.json names is open: an index entry left marked open (its close could not
    # rewrite a full disk's index) is listed closed.
    moved = directory / "open.json.away"
    (directory / OPEN_NAME).rename(moved)
    assert [i["open"] for i in msgspec.to_builtins(list_recordings(directory, "cam"))] == [False]
    moved.rename(directory / OPEN_NAME)

    restarted = recorder_for(record)  # the restarted worker
    index = read_index(directory)
    assert index is not None and len(index.segments) == 1
    entry = index.segments[0]
    assert entry.open is False and entry.file == segment.name and entry.duration_sec > 4.0
    assert not (directory / OPEN_NAME).exists()
    # A segment file the index never heard of (killed before the index was written) is adopted.
    orphan = directory / "20200101T000000.000Z.mp4"
    shutil.copy(segment, orphan)
    (directory / INDEX_NAME).unlink()
    recorder_for(record)
    assert [e.file for e in read_index(directory).segments] == [orphan.name, segment.name]
    restarted.stop()


def test_unsupported_audio_is_skipped_and_failures_never_raise(tmp_path, caplog):
    src = tmp_path / "ulaw.mov"
    import numpy as np

    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=15)
        v.width, v.height, v.pix_fmt = 160, 90, "yuv420p"
        v.options = {"preset": "ultrafast", "g": "15"}
        a = out.add_stream("pcm_mulaw", rate=8000)
        a.layout = "mono"
        for i in range(45):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((90, 160, 3), i, np.uint8), format="rgb24")))
        out.mux(v.encode(None))
        for n in range(24):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1000), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 8000, n * 1000
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
    record = RecordConfig(enabled=True, segment_seconds=1.0, dir=str(tmp_path / "rec"),
                          retention=RetentionConfig(max_age_hours=0, max_total_mb=0))
    recorder = recorder_for(record)
    with caplog.at_level(logging.WARNING, logger="icey.recording"):
        feed(recorder, src, Timeline())
        feed(recorder, src, Timeline())
    assert sum("pcm_mulaw" in r.getMessage() for r in caplog.records) == 1  # logged once
    segments = sorted((tmp_path / "rec" / "cam").glob("*.mp4"))
    assert len(segments) >= 4
    with av.open(str(segments[0])) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 0
    # The directory turned into a file: recording fails, logs, and never raises into the reader.
    shutil.rmtree(tmp_path / "rec" / "cam")
    (tmp_path / "rec" / "cam").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="icey.recording"):
        feed(recorder, src, Timeline())
    assert any("recording failed" in r.getMessage() for r in caplog.records)


def test_a_source_clock_going_back_continues_the_track(tmp_path, source_file):
    """GStreamer's RTSP server restarts its timestamps when another client joins a shared stream:
    the segment's tracks must go on increasing (an unplayable track otherwise)."""
    recorder = recorder_for(RecordConfig(enabled=True, segment_seconds=60.0, dir=str(tmp_path / "rec")))
    timeline = Timeline()
    with av.open(str(source_file)) as source:
        video, audio = source.streams.video[0], source.streams.audio[0]
        recorder.on_open(SourceStreams(video, audio, video.codec_context, audio.codec_context))
        for _ in range(2):  # the same timestamps twice in one epoch: the clock jumps back 6 s
            source.seek(0)
            for pkt in source.demux():
                if pkt.size and pkt.pts is not None:
                    recorder.on_packet(pkt.stream.type, pkt, timeline.map(float(pkt.pts * pkt.time_base)))
        recorder.on_close("source ended")
    (segment,) = (tmp_path / "rec" / "cam").glob("*.mp4")
    with av.open(str(segment)) as c:
        for stream in (c.streams.video[0], c.streams.audio[0]):
            dts = [p.dts for p in c.demux(stream) if p.size]
            assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), stream.type
    assert _duration(segment) == pytest.approx(12.0, abs=0.15)
    assert len(_video_packets(segment)) == 2 * len(_video_packets(source_file))
