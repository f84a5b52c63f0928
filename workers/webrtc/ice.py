"""Server-side ICE from the config: the STUN/TURN servers of /api/config (never a hard-coded
public STUN server, which aiortc would otherwise use) and the host candidates to offer."""

from __future__ import annotations

import ipaddress
import re

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from protocol.config import Settings

_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ", re.IGNORECASE)


def restrict_host_addresses(addresses: list[str]) -> None:
    """Offer only these host addresses (aioice would offer every interface but loopback)."""
    if addresses:
        chosen = list(addresses)

        def host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
            return chosen

        aioice.ice.get_host_addresses = host_addresses


def configuration(settings: Settings) -> RTCConfiguration:
    """STUN only: the server needs a reflexive candidate when it sits behind NAT, but never a
    relay of its own (the browser's TURN candidate pairs with our host or reflexive one)."""
    servers = [RTCIceServer(urls=url) for url in settings.stun.urls]
    return RTCConfiguration(iceServers=servers)  # an empty list, not None: None means Google's STUN


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # an mDNS .local name


def filter_remote_candidates(sdp: str, host_addresses: list[str]) -> str:
    """A loopback-only server cannot reach anything else: drop the remote candidates it could
    never pair with (and mDNS names, which would make aioice query the LAN)."""
    if not host_addresses or not all(_is_loopback(a) for a in host_addresses):
        return sdp
    kept = []
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match and not _is_loopback(match.group(1)):
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
