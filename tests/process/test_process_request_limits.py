"""Request bodies are bounded: one larger than the server takes is answered 413 (the JSON error)
before it is read whole, so a client cannot make the API buffer it."""

from __future__ import annotations

import json
import socket
import time


def _post_head_only(server, path: str, length: int) -> tuple[int, dict, float]:
    """Send the request head announcing `length` bytes and no body at all; (status, JSON, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body), time.monotonic() - started


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
    return next((int(line.split(":")[1]) for line in head.split("\r\n") if line.startswith("content-length:")), 0)


def test_an_oversized_offer_is_refused_before_it_is_read(icey):
    server = icey(["--demo", "--no-turn"])
    status, body, took = _post_head_only(server, "/api/sources/demo-1/whep", 64 * 1024 * 1024)
    assert status == 413 and took < 3  # the 64 MiB never came, so nothing waited for it
    assert body["status"] == "error" and body["error"] == "too_large"
