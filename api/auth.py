"""The shared-token rule: Bearer, X-Icey-Token or ?token=,
compared in constant time; `/api/health` is always open. Operator actions that change what runs
(restart a worker) also need a local client when no token is configured."""

from __future__ import annotations

import hmac
import ipaddress

from quart import Request

OPEN_PATHS = ("/api/health",)
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


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


def may_act(request: Request, token: str) -> bool:
    """With a token, whoever presents it; without one, only a client on this host, and not one
    relayed by a proxy (a reverse proxy on this host would make every client look local)."""
    if token:
        return authorized(request, token)
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        addr = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback
