"""ASGI middleware: a request that declares a body over the limit is answered 413 at once, before
the app reads any of it, in the one JSON error shape.

The rest of that body is then read and dropped (up to DRAIN_SEC / DRAIN_MAX_BYTES) before the
response ends: most clients send the whole body before they read anything, and a server that
closes on an unread body makes the kernel reset the connection, which loses the answer. The
only bodies the API takes are SDP offers, so the limit is the worker's own (MAX_SDP_BYTES); a body
without a declared length (chunked) is cut by Quart's MAX_CONTENT_LENGTH, set to the same value.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

DRAIN_SEC = 10.0
DRAIN_MAX_BYTES = 32 * 1024 * 1024


def declared_length(scope: HTTPScope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses such a request before it gets here
    return None


class BodyLimit:
    def __init__(self, app: ASGIFramework, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        length = declared_length(scope) if scope["type"] == "http" else None
        if length is None or length <= self.limit:
            await self.app(scope, receive, send)
            return
        body = msgspec.json.encode({"status": "error", "error": "too_large",
                                    "detail": f"the body has {length} bytes; at most {self.limit} are taken"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await self._drain(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _drain(receive: ASGIReceiveCallable) -> None:
        deadline, dropped = time.monotonic() + DRAIN_SEC, 0
        while dropped < DRAIN_MAX_BYTES:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                return  # a client that stalls: the connection closes on the rest
            if message["type"] != "http.request":
                return  # the client went away
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
