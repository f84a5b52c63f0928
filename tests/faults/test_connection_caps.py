"""Issue 8, item 7: SSE clients and HTTP connections are capped, and /api/health keeps answering.

Every SSE client and every connection held a file descriptor for as long as it liked; enough of
them and the API could accept nothing, /api/health included."""

from __future__ import annotations

import json
import socket
import time

from support.proc_stats import footprint
from support.processes import wait_for

STREAMS = 5
CONNECTIONS = 20
IDLE_SEC = 2.0


def _head(sock: socket.socket) -> tuple[int, bytes]:
    """The status of the response on `sock` and what follows its headers so far."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def _get(port: int, path: str) -> tuple[socket.socket, int, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    status, rest = _head(sock)
    return sock, status, rest


def _error_body(sock: socket.socket, rest: bytes) -> dict:
    while True:
        try:
            return json.loads(rest)
        except ValueError:
            chunk = sock.recv(4096)
            assert chunk, rest
            rest += chunk


def test_event_streams_are_capped_and_health_still_answers(icey):
    server = icey(["--demo", "--no-turn"], config={"http": {"maxEventStreams": STREAMS}})
    streams, refused = [], []
    try:
        for _ in range(STREAMS + 5):
            sock, status, rest = _get(server.port, "/api/events")
            (streams if status == 200 else refused).append((sock, status, rest))
        assert len(streams) == STREAMS
        assert [status for _, status, _ in refused] == [503] * 5
        body = _error_body(refused[0][0], refused[0][2])
        assert body["status"] == "error" and body["error"] == "busy" and str(STREAMS) in body["detail"]
        assert server.get("/api/health").status == 200
        assert server.get("/api/status").status == 200
        # A stream that ends gives its slot back.
        streams.pop()[0].close()
        sock, status, _ = wait_for(lambda: (r := _get(server.port, "/api/events"))[1] == 200 and r, 5,
                                   what="a free stream slot")
        streams.append((sock, status, b""))
    finally:
        for sock, _, _ in streams + refused:
            sock.close()


def test_connections_are_capped_and_idle_ones_closed(icey):
    server = icey(["--demo", "--no-turn"],
                  config={"http": {"maxConnections": CONNECTIONS, "keepAliveTimeoutSec": IDLE_SEC}})
    api = server.children()["api"]
    before = footprint(api).fds
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(CONNECTIONS + 40)]
    try:
        # Connections past the cap get a 503 at once and are closed: the API's descriptors stay
        # within the cap, whatever the number of clients.
        sock, status, rest = _get(server.port, "/api/health")
        sock.close()
        assert status == 503 and json.loads(rest)["error"] == "busy"
        assert footprint(api).fds <= before + CONNECTIONS + 5  # a few for whatever the API opens meanwhile
        # Idle connections (no request) are closed after keepAliveTimeoutSec, and the API
        # answers again.
        started = time.monotonic()
        wait_for(lambda: server.get("/api/health", timeout=1).status == 200, IDLE_SEC + 5, what="health")
        assert time.monotonic() - started < IDLE_SEC + 5
        assert all(s.recv(1) == b"" for s in idle[:CONNECTIONS])  # the server closed them
    finally:
        for sock in idle:
            sock.close()
