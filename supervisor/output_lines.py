"""A child's output as lines of bounded length, read in chunks.

`StreamReader.readline` gives up on a line past its 64 KiB limit; the relay then stopped reading
and the child blocked for good on its full pipe. Here the pipe is always drained: a line longer
than `max_bytes` keeps its head, the rest is dropped and counted, and the line ends with a
marker saying how much was cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

MAX_LINE_BYTES = 16 * 1024
CHUNK_BYTES = 64 * 1024


class LineCutter:
    """Splits a byte stream into lines; holds at most `max_bytes` of the line in progress."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._kept = bytearray()
        self._dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The lines `data` completes, without their newline."""
        lines: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            room = max(0, self.max_bytes - len(self._kept))
            self._kept += piece[:room]
            self._dropped += max(0, len(piece) - room)
            if end < 0:
                return lines
            lines.append(self._take())
            start = end + 1

    def flush(self) -> bytes | None:
        """The unterminated last line, if any."""
        return self._take() if self._kept or self._dropped else None

    def _take(self) -> bytes:
        line = bytes(self._kept)
        if self._dropped:
            line += f" [... {self._dropped} more bytes cut]".encode()
        self._kept.clear()
        self._dropped = 0
        return line


async def bounded_lines(stream: asyncio.StreamReader, max_bytes: int = MAX_LINE_BYTES) -> AsyncIterator[bytes]:
    cutter = LineCutter(max_bytes)
    while chunk := await stream.read(CHUNK_BYTES):
        for line in cutter.feed(chunk):
            yield line
    if (last := cutter.flush()) is not None:
        yield last
