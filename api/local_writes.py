"""Without a token, only this host's clients may change anything. Anyone who can reach the port
may still watch (a WHEP offer is a POST, but it only reads) and read the API; publishing (WHIP),
ending or kicking sessions and every later write are refused to other addresses, so the default
bind (all interfaces, no token) is safe to leave on a LAN. A token lifts the rule: it is then
the token that decides.

A reverse proxy on the same host makes every client look local: a write that carries a proxy's
forwarding header is refused without a token; behind a proxy, set a token."""

from __future__ import annotations

import ipaddress

from quart import Request

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
DETAIL = ("no auth token is configured, so only clients on this host may publish, end sessions or change "
          "settings; set auth.token (or ICEY_AUTH_TOKEN) and send it")


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _is_watch(request: Request) -> bool:
    return request.endpoint == "webrtc.offer" and (request.view_args or {}).get("kind") == "whep"


def refused(request: Request, token: str) -> bool:
    """True when this request changes something and may not without a token."""
    if token or request.method in READ_METHODS or _is_watch(request):
        return False
    relayed = any(name in request.headers for name in PROXY_HEADERS)
    return relayed or not is_loopback(request.remote_addr)
