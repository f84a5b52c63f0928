"""Fmp4Writer on real packets: tracks from a template or from in-band SPS/PPS, the `.part` file
renamed on close, timestamps that never go back, and no file without a packet of its main track."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from support.media import make_media_file

from workers.recording.fmp4 import Fmp4Writer, NotSelfContained
from workers.source.demo import DemoSource
from workers.source.h264 import NAL_PPS, NAL_SPS, nal_type, nal_units


@pytest.fixture(scope="module")
def source_file(tmp_path_factory) -> Path:
    return make_media_file(tmp_path_factory.mktemp("fmp4") / "src.mp4", seconds=2.0, fps=15)


@pytest.fixture(scope="module")
def demo_packets() -> list[tuple[str, bytes, float, bool]]:
    """About a second of the demo's H.264 (SPS/PPS in band) and Opus: (kind, data, seconds, key)."""
    source = DemoSource("demo://testsrc2?size=160x90&rate=15")
    found = []
    for kind, packet in source.packets():
        found.append((kind, bytes(packet), float(packet.pts * packet.time_base), bool(packet.is_keyframe)))
        if sum(k == "video" for k, *_ in found) >= 15:
            break
    source.close()
    return found


def read_back(path: Path) -> dict[str, list[av.Packet]]:
    found: dict[str, list[av.Packet]] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size:
                found.setdefault(p.stream.type, []).append(p)
    return found


def test_template_tracks_and_the_part_file_renamed_on_close(tmp_path, source_file):
    final = tmp_path / "clip.mp4"
    part = tmp_path / "clip.mp4.part"
    with av.open(str(source_file)) as source:
        video, audio = source.streams.video[0], source.streams.audio[0]
        writer = Fmp4Writer(final, write_to=part)
        writer.add_video(video, b"")
        writer.add_audio(audio)
        sent = 0
        for pkt in source.demux():
            if pkt.size and pkt.pts is not None:
                dts = pkt.dts if pkt.dts is not None else pkt.pts
                writer.write(pkt.stream.type, bytes(pkt), float(pkt.pts * pkt.time_base),
                             float(dts * pkt.time_base), float(pkt.duration * pkt.time_base), pkt.is_keyframe)
                sent += 1
        source_extradata = bytes(video.codec_context.extradata)
    assert part.exists() and not final.exists()  # complete files only under the final name
    size = writer.close()
    assert not part.exists() and size == final.stat().st_size > 0
    packets = read_back(final)
    assert sum(len(p) for p in packets.values()) == sent == sum(writer.packets.values())
    with av.open(str(final)) as c:
        assert bytes(c.streams.video[0].codec_context.extradata) == source_extradata  # the source's own avcC
        assert c.streams.audio[0].codec_context.name == "aac"
        assert len(list(c.decode(video=0))) == 30


def test_in_band_parameter_sets_make_the_video_track(tmp_path, demo_packets):
    key = next(data for kind, data, _, is_key in demo_packets if kind == "video" and is_key)
    bare = b"".join(b"\x00\x00\x00\x01" + n for n in nal_units(key) if nal_type(n) not in (NAL_SPS, NAL_PPS))
    with pytest.raises(NotSelfContained):
        Fmp4Writer(tmp_path / "bare.mp4").add_video(None, bare)
    writer = Fmp4Writer(tmp_path / "demo.mp4")
    stream = writer.add_video(None, key)
    assert (stream.codec_context.width, stream.codec_context.height) == (160, 90)
    writer.add_opus()
    for kind, data, seconds, is_key in demo_packets:
        writer.write(kind, data, seconds, seconds, key=is_key)
    assert writer.close() > 0
    with av.open(str(tmp_path / "demo.mp4")) as c:
        frames = list(c.decode(video=0))
        assert len(frames) == 15 and {(f.width, f.height) for f in frames} == {(160, 90)}
        assert c.streams.audio[0].codec_context.name == "opus"


def test_timestamps_never_go_back(tmp_path, demo_packets):
    writer = Fmp4Writer(tmp_path / "back.mp4")
    writer.add_video(None, next(d for k, d, _, key in demo_packets if k == "video" and key))
    video = [(data, seconds, key) for kind, data, seconds, key in demo_packets if kind == "video"]
    times = [0.0, 0.1, 0.1, 0.05, 0.2, 0.2000001] + [0.3 + 0.1 * i for i in range(len(video) - 6)]
    for (data, _, key), t in zip(video, times, strict=True):  # repeated, backwards, sub-tick steps
        writer.write("video", data, t, t, key=key)
    assert writer.close() > 0
    written = read_back(tmp_path / "back.mp4")["video"]
    dts = [p.dts for p in written]
    assert len(written) == len(video) and all(b > a for a, b in zip(dts, dts[1:], strict=False))
    assert all(p.pts >= p.dts for p in written)


def test_a_file_without_a_packet_of_its_main_track_is_removed(tmp_path, demo_packets):
    writer = Fmp4Writer(tmp_path / "audio-only.mp4", write_to=tmp_path / "audio-only.mp4.part")
    writer.add_video(None, next(d for k, d, _, key in demo_packets if k == "video" and key))
    writer.add_opus()
    for kind, data, seconds, _ in demo_packets:
        if kind == "audio":
            assert writer.write(kind, data, seconds, seconds)
    assert writer.close() == 0
    assert list(tmp_path.iterdir()) == []


def test_no_track_for_what_mp4_cannot_carry(tmp_path):
    src = tmp_path / "ulaw.mov"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("pcm_mulaw", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        out.mux([*stream.encode(frame), *stream.encode(None)])
    with av.open(str(src)) as source:
        writer = Fmp4Writer(tmp_path / "x.mp4")
        assert writer.add_audio(source.streams.audio[0]) is None
        assert writer.write("audio", b"\x00" * 160, 0.0, 0.0) is False
    assert writer.close() == 0 and not (tmp_path / "x.mp4").exists()
