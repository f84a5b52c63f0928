"""Fixtures shared by every test folder: real servers on free ports, a real RTSP camera, media."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.media import make_media_file  # noqa: E402
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


@pytest.fixture
def media_file(tmp_path: Path) -> Path:
    return make_media_file(tmp_path / "clip.mp4")
