"""Media files with known parameters, made with PyAV for tests."""

from __future__ import annotations

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
