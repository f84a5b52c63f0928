"""A hard cap on the API's open HTTP connections (`http.maxConnections`).

Hypercorn has no such setting, and an ASGI app only sees requests, not the connections (and
file descriptors) behind them. So the listening socket counts: `accept()` returns connections
whose `close()` gives their slot back (asyncio closes a transport's socket that way), and past
the cap a new connection gets a canned 503 and is closed at once, so descriptors stay within
the process's limit and nothing else in the process runs out of them.
"""

from __future__ import annotations

import json
import logging
import resource
import socket

log = logging.getLogger("icey.api")
FD_RESERVE = 128  # for everything else in the API process: IPC sockets, files, the event loop
_BODY = json.dumps({"status": "error", "error": "busy", "detail": "too many open HTTP connections"}).encode()
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY))


def connection_limit(configured: int) -> int:
    """The cap the descriptor limit allows: the soft RLIMIT_NOFILE is raised to the hard one,
    and a cap (or no cap, 0) that would not fit below it is lowered, with a warning."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    fits = max(1, soft - FD_RESERVE)
    if configured == 0 or configured > fits:
        log.warning("http.maxConnections %s does not fit the descriptor limit %d: using %d",
                    configured or "0 (none)", soft, fits)
        return fits
    return configured


class _Connection(socket.socket):
    listener: LimitedListener | None = None

    def close(self) -> None:
        if self.listener is not None:
            self.listener.open -= 1
            self.listener = None
        super().close()


class LimitedListener(socket.socket):
    """The supervisor's listening socket (inherited as `fd`), with at most `limit` accepted
    connections open at once. Used from the event loop's thread only."""

    def __init__(self, fd: int, limit: int) -> None:
        super().__init__(fileno=fd)
        self.limit = limit
        self.open = 0
        self.refused = 0

    def accept(self) -> tuple[socket.socket, object]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = _Connection(self.family, self.type, self.proto, fileno=fd)
        if self.open >= self.limit:
            self.refused += 1
            try:
                conn.setblocking(False)
                conn.send(REFUSAL)
            except OSError:
                pass
            conn.close()
            raise ConnectionAbortedError("connection limit reached")  # asyncio: nothing accepted
        conn.listener = self
        self.open += 1
        return conn, address
