"""A real small filesystem (tmpfs) for tests of a full disk: mounted for the test, always unmounted."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """`path` as a tmpfs of `size_mb` MiB. Needs root (CI runs as root); skips when mount is refused."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave: int = 0) -> Path:
    """A filler file that leaves `leave` bytes free on `path`'s filesystem."""
    filler = path / "filler.bin"
    with filler.open("wb") as f:
        remaining = max(free_bytes(path) - leave, 0)
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            try:
                remaining -= f.write(chunk[:remaining])
            except OSError:  # the disk is full before the count says so (rounding to pages)
                break
    return filler
