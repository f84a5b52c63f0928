"""Media files with known parameters, made with PyAV for tests."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest


def make_media_file(path: Path, seconds: float = 2.0, fps: int = 15, size: tuple[int, int] = (320, 180),
                    audio: bool = True) -> Path:
    """An H.264 (+ AAC) MP4 made with PyAV: a real file source with known parameters."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.options = {"preset": "ultrafast", "g": str(fps)}
        a = out.add_stream("aac", rate=48000) if audio else None
        frames = int(seconds * fps)
        for i in range(frames):
            img = np.full((size[1], size[0], 3), (i * 7) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            samples = 1024
            for n in range(int(seconds * 48000 / samples)):
                pcm = np.zeros((1, samples * 2), dtype=np.int16)
                af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
                af.sample_rate, af.pts, af.time_base = 48000, n * samples, Fraction(1, 48000)
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def make_b_frame_file(path: Path, frames: int = 30, gop: int = 15) -> Path:
    """320x180 15 fps H.264 with B-frames (x264's medium preset): browsers stall on them, so the
    worker transcodes it. A keyframe every `gop` frames exactly; the container from the suffix."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=15)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        v.options = {"preset": "medium", "bf": "3", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for i in range(frames):
            frame = av.VideoFrame(320, 180, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 8 % 255]) * plane.buffer_size)
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    return path


def ffprobe(path: Path) -> dict:
    """What ffprobe reads of a file (streams with counted frames, `by_type`, format) and what a
    full decode of it complains about (`decode_errors`, empty for a clean file)."""
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        pytest.fail("ffprobe/ffmpeg not installed (see .ci/install-deps)")
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,codec_name,profile,level,width,height,pix_fmt,r_frame_rate,"
                          "nb_read_frames,sample_rate,channels:format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60)
    # passthrough: keep the file's own frame timing; ffmpeg would otherwise re-time frames to a
    # constant rate for the null output and report its own rounding collisions as errors.
    errors = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vsync", "passthrough", "-f", "null", "-"],
                            capture_output=True, text=True, timeout=60).stderr
    info = json.loads(out.stdout or "{}")
    info["returncode"], info["errors"] = out.returncode, out.stderr.strip()
    info["by_type"] = {s["codec_type"]: s for s in info.get("streams", [])}
    info["decode_errors"] = errors.strip()
    return info


def h264_access_units(seconds: float, fps: int, size: tuple[int, int]) -> list:
    """Annex B access units from libx264, SPS/PPS before every keyframe, no B-frames."""
    import av
    import numpy as np

    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, fps), fps
    enc.options = {"preset": "ultrafast", "bf": "0", "g": str(fps), "repeat-headers": "1"}
    units = []
    for i in range(int(seconds * fps)):
        img = np.full((size[1], size[0], 3), (i * 9) % 255, dtype=np.uint8)
        img[:, (i * 4) % size[0]:(i * 4) % size[0] + 8] = 255  # a moving bar: every frame differs
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        units += enc.encode(frame)
    return units + enc.encode(None)


def _template(keyframe):
    """A stream to copy parameters from (FFmpeg's raw H.264 demuxer reads them off a keyframe):
    an output stream made with add_stream would open an encoder of its own."""
    import av

    return av.open(io.BytesIO(bytes(keyframe)), format="h264")


def make_ts_with_empty_nals(path: Path, seconds: float = 2.0, fps: int = 15,
                            size: tuple[int, int] = (320, 180)) -> Path:
    """An MPEG-TS of H.264 whose every access unit starts with two start codes in a row: an
    empty NAL unit, which the demuxer passes through as it is."""
    import av

    units = h264_access_units(seconds, fps, size)
    with av.open(str(path), "w", format="mpegts") as out, _template(units[0]) as template:
        stream = out.add_stream_from_template(template.streams.video[0])
        for unit in units:
            packet = av.Packet(b"\x00\x00\x00\x01" + bytes(unit))
            packet.pts = packet.dts = unit.pts
            packet.time_base, packet.is_keyframe, packet.stream = Fraction(1, fps), unit.is_keyframe, stream
            out.mux(packet)
    return path


def make_mp4_with_cut_avcc(path: Path, cut_to: int = 9, corrupt_every: int = 5) -> Path:
    """An H.264 MP4 whose avcC record is cut after `cut_to` bytes (inside its SPS), whose
    keyframes carry SPS/PPS in band (so it stays watchable), and whose every `corrupt_every`-th
    non-key sample has a NAL length running past the sample (a unit nothing can use)."""
    import av

    from workers.source.h264 import nal_type, nal_units

    units = h264_access_units(2.0, 15, (320, 180))
    first = nal_units(bytes(units[0]))
    sps = next(x for x in first if nal_type(x) == 7)
    pps = next(x for x in first if nal_type(x) == 8)
    avcc = bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1, *len(sps).to_bytes(2, "big"), *sps, 1,
                  *len(pps).to_bytes(2, "big"), *pps])
    with av.open(str(path), "w", format="mp4") as out, _template(units[0]) as template:
        stream = out.add_stream_from_template(template.streams.video[0])
        stream.codec_context.extradata = avcc[:cut_to]
        for n, unit in enumerate(units, 1):
            sample = b"".join(len(x).to_bytes(4, "big") + x for x in nal_units(bytes(unit)))
            if not unit.is_keyframe and n % corrupt_every == 0:
                sample = (len(sample) + 100).to_bytes(4, "big") + sample[4:]
            packet = av.Packet(sample)
            packet.pts = packet.dts = unit.pts
            packet.time_base, packet.is_keyframe, packet.stream = Fraction(1, 15), unit.is_keyframe, stream
            out.mux(packet)
    return path


def make_noise_file(path: Path, seconds: float = 2.0, fps: int = 30, size: tuple[int, int] = (640, 360),
                    gop: int = 30) -> Path:
    """Browser-ready H.264 (baseline, no B-frames) of random pixels: every frame is large, so a
    source of it delivers megabytes per second at a small resolution."""
    import av
    import numpy as np

    rng = np.random.default_rng(8)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.options = {"preset": "ultrafast", "profile": "baseline", "g": str(gop), "qp": "24"}
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8),
                                               format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    return path
