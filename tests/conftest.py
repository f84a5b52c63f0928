"""Fixtures shared by every test folder: real servers on free ports, a real RTSP camera, media."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.processes import SYSTEM_PYTHON, IceyServer, RtspCamera  # noqa: E402


@pytest.fixture
def icey(tmp_path: Path) -> Iterator:
    """Factory: `icey(args, config=None, env=None)` starts a real server; all are stopped after."""
    started: list[IceyServer] = []

    def start(args: list[str], config: dict | None = None, env: dict[str, str] | None = None) -> IceyServer:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        server = IceyServer(workdir, args, config, env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill_all()


def _gst_available() -> bool:
    return Path(SYSTEM_PYTHON).exists() and shutil.which("gst-launch-1.0") is not None


@pytest.fixture
def rtsp_camera() -> Iterator[RtspCamera]:
    if not _gst_available():
        pytest.fail("GStreamer RTSP server not installed (see .ci/run for the packages)")
    camera = RtspCamera().start()
    yield camera
    camera.stop()


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


@pytest.fixture
def media_file(tmp_path: Path) -> Path:
    return make_media_file(tmp_path / "clip.mp4")
