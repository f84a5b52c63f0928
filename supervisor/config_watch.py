"""Reload when the config file changes (`supervisor.watchConfig`): its identity (inode, size,
mtime, read through symlinks, so a Kubernetes ConfigMap's symlink swap counts) is polled, and a
change is acted on once it has held still for one more interval, so an editor's several writes
make one reload. Polling needs no dependency and sees files on any filesystem."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

INTERVAL_SEC = 1.0

Fingerprint = tuple[int, int, int] | None


def fingerprint(path: Path) -> Fingerprint:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class ConfigWatch:
    def __init__(self, path: Path, on_change: Callable[[], None], interval: float = INTERVAL_SEC) -> None:
        self.path, self.on_change, self.interval = path, on_change, interval
        self.seen = fingerprint(path)

    def accept_current(self) -> None:
        """The file as it is now is already applied (the service wrote it itself)."""
        self.seen = fingerprint(self.path)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = fingerprint(self.path)
            if now == self.seen or now is None:
                continue  # unchanged, or mid-swap / removed: the running generation stays
            await asyncio.sleep(self.interval)
            if fingerprint(self.path) != now:
                continue  # still being written: look again next round
            self.seen = now
            self.on_change()
