"""What the reader opens: a demuxed container (file, camera, device, URL) or the built-in demo
pattern. Both give packets as a demuxer does, and describe their streams the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import av

from workers.source.taps import SourceStreams

# What `packets()` yields between two loops of a file: ("loop", None).
LOOP = "loop"


class Interrupted(Exception):
    """`packets()` stopped because `interrupt()` asked it to (the stall watchdog)."""


class OpenedSource(Protocol):
    format_name: str

    def streams(self) -> SourceStreams: ...

    def packets(self) -> Iterator[tuple[str, av.Packet | None]]:
        """(kind, packet) with kind video | audio, or (LOOP, None) when a file starts again."""
        ...

    def interrupt(self) -> None:
        """From any thread: `packets()` raises Interrupted as soon as it reads anything at all."""
        ...

    def close(self) -> None: ...
