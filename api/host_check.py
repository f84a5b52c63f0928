"""Only requests addressed to one of this server's names are answered. This stops DNS
rebinding: a page from evil.example re-resolves its own name to this box, and the browser then
treats /api/* as same-origin. Its requests still say `Host: evil.example`, which is refused.

Allowed: localhost, the bind hosts (HTTP and metrics), any literal IP address, and the names in
`http.allowedHosts` (a reverse proxy's public name, the box's mDNS name)."""

from __future__ import annotations

import ipaddress

from protocol.config import WILDCARD_HOSTS, Settings


def allowed_names(settings: Settings) -> frozenset[str]:
    names = {"localhost", *settings.http.allowed_hosts}
    names.update(h for h in (settings.http.host, settings.metrics.bind_host(settings.http)) if h not in WILDCARD_HOSTS)
    return frozenset(name.lower().rstrip(".") for name in names)


def host_name(host: str) -> str:
    """`name:port`, `[v6]:port` or `v6` without the port and brackets, lower case."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, _, _ = host.rpartition(":")
    if not name or ":" in name:  # no port, or a bare IPv6 address
        name = host
    return name.lower().rstrip(".")


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host: str, names: frozenset[str]) -> bool:
    """No Host at all (an HTTP/1.0 probe) is allowed: browsers always send one."""
    name = host_name(host)
    return not name or name in names or is_ip_literal(name)
