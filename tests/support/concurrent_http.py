"""Many HTTP requests at once, each on its own connection and from a chosen loopback address
(127.0.0.0/8 is all local, so 127.0.0.2 is a second client to the server's limits)."""

from __future__ import annotations

import http.client
import threading
from concurrent.futures import ThreadPoolExecutor


def post(port: int, path: str, body: bytes, headers: dict[str, str], source: str = "127.0.0.1",
         timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_all_at_once(port: int, path: str, body: bytes, headers: dict[str, str], count: int) -> list[int]:
    """`count` POSTs released together by a barrier; their statuses."""
    barrier = threading.Barrier(count)

    def one(_: int) -> int:
        barrier.wait(10)
        return post(port, path, body, headers)[0]

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))
