"""The one source every system serves: a 720p30 ~2 Mbit/s H.264 Baseline MPEG-TS, GOP 60, no B-frames."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def make_source(path: Path, seconds: int) -> None:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
           "-profile:v", "baseline", "-level", "3.1", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M",
           "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
           "-f", "mpegts", str(path) + ".part"]
    subprocess.run(cmd, check=True)
    os.replace(str(path) + ".part", path)


def probe_source(path: Path) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,profile,width,height,r_frame_rate:format=duration,bit_rate",
                          "-of", "json", str(path)], capture_output=True, text=True, check=False).stdout
    try:
        doc = json.loads(out)
        s, f = doc["streams"][0], doc["format"]
        return (f"{s['codec_name']} {s.get('profile')} {s['width']}x{s['height']} @{s['r_frame_rate']}, "
                f"{float(f['duration']):.0f} s, {int(f['bit_rate']) / 1e6:.2f} Mbit/s, GOP 60 (2 s), no B-frames")
    except (ValueError, KeyError, IndexError):
        return "?"
