"""CORS for the origins listed in `auth.allowedOrigins`, none for any other. The server's own
pages are same-origin and need none; a listed origin (a dashboard served elsewhere) gets its own
origin echoed back, never `*`, so no other web page can drive the API from a visitor's browser."""

from __future__ import annotations

from quart import Response

ALLOW_METHODS = "GET, POST, DELETE, PATCH, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, X-Icey-Token, If-Match"
# What a page of a listed origin may read: WHEP/WHIP's Location and Link, the ETag of config edits
# and snapshots, and a snapshot's X-Icey-Frame-Time (a wall of several boxes shows how old each still is).
EXPOSE_HEADERS = "Location, Link, ETag, Accept-Patch, X-Icey-Frame-Time"


def normalized(origins: list[str]) -> frozenset[str]:
    """Browsers send `scheme://host[:port]` in lower case, without a path."""
    return frozenset(origin.lower().rstrip("/") for origin in origins)


def add_headers(response: Response, origin: str | None, allowed: frozenset[str]) -> None:
    if not allowed:
        return
    response.vary.add("Origin")  # the answer depends on it: caches must not mix origins
    if origin is not None and origin.lower() in allowed:
        response.headers.update({
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        })
