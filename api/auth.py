"""The shared-token rule: Bearer, X-Icey-Token or ?token=, compared in constant time;
`/api/health` and the OpenAPI document are always open. Without a token, writes are for local
clients (local_writes.py)."""

from __future__ import annotations

import hmac

from quart import Request

OPEN_PATHS = ("/api/health", "/api/openapi.json")


def presented_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):]
    return request.headers.get("X-Icey-Token") or request.args.get("token")


def authorized(request: Request, token: str) -> bool:
    if not token:
        return True
    given = presented_token(request)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())

