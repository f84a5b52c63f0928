"""Reload when the config file changes (`supervisor.watchConfig`).

The file's DIRECTORY is watched (watchfiles, inotify on Linux), not the file: a Kubernetes
ConfigMap is updated by swapping a symlink in that directory (`..data`), which never touches
the file's own inode, and an editor or `os.replace` puts a new file in its place. Changes are
debounced (watchfiles yields once the directory has been quiet for SETTLE_MS), so an editor's
several writes make one reload. What decides is the file's identity read through symlinks
(inode, size, mtime): a change elsewhere in the directory, or the service's own write of the
file (`accept_current`), reloads nothing; a file missing mid-swap is waited for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import watchfiles

log = logging.getLogger("icey.supervisor")

SETTLE_MS = 500  # quiet this long after the last change in the directory: the change is complete
MAX_WAIT_MS = 3000  # a directory that never stops changing is still looked at this often

Fingerprint = tuple[int, int, int] | None


def fingerprint(path: Path) -> Fingerprint:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class ConfigWatch:
    def __init__(self, path: Path, on_change: Callable[[], None], settle_ms: int = SETTLE_MS) -> None:
        self.path, self.on_change, self.settle_ms = path, on_change, settle_ms
        self.seen = fingerprint(path)
        self.stopping = asyncio.Event()

    def accept_current(self) -> None:
        """The file as it is now is already applied (the service wrote it itself)."""
        self.seen = fingerprint(self.path)

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Until stop(); a directory that cannot be watched is logged (SIGHUP and the API still
        reload)."""
        try:
            async for _ in watchfiles.awatch(self.path.parent, watch_filter=None, recursive=False,
                                             step=self.settle_ms, debounce=max(MAX_WAIT_MS, self.settle_ms),
                                             stop_event=self.stopping):
                now = fingerprint(self.path)
                if now == self.seen or now is None:
                    continue  # not the config file, our own write, or mid-swap: the running generation stays
                self.seen = now
                self.on_change()
        except (OSError, RuntimeError) as exc:
            log.error("cannot watch %s for config changes (%s); SIGHUP or POST /api/config/reload still reload",
                      self.path.parent, exc)
