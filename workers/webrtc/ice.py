"""Server-side ICE from the config: the STUN/TURN servers of /api/config (never a hard-coded
public STUN server, which aiortc would otherwise use), the host candidates to offer, and the
remote candidates a client may make the server check."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import aioice.ice
import ifaddr
from aiortc import RTCConfiguration, RTCIceServer

from protocol.config import Settings
from workers.webrtc.session_error import SessionError


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


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class CandidatePolicy:
    """Which remote candidates the server may send connectivity checks to.

    A remote candidate makes aioice send STUN to that address and port, so an offer could aim the
    server at any host its networks reach. Kept: the HTTP client's own address; global addresses
    (an internet viewer's reflexive or relay candidates); other (private, link-local, ...)
    addresses only inside the networks of the server's own host addresses; and only in an
    address family the server has. Loopback is the client's own address or nothing, and a
    loopback-only server keeps nothing else. Names (mDNS `.local`, DNS) are never resolved for a
    client. At most MAX_CANDIDATES_PER_MEDIA are kept per m-line; an offer listing more than
    MAX_OFFER_CANDIDATES is refused outright."""

    networks: tuple[IpNetwork, ...]
    trusted: frozenset[IpAddress]  # always reachable: the TURN relay's public address

    @property
    def loopback_only(self) -> bool:
        return bool(self.networks) and all(n.network_address.is_loopback for n in self.networks)

    def allows(self, address: str, client: str) -> bool:
        ip = _ip(address)
        if ip is None:
            return False
        if ip == _ip(client) or ip in self.trusted:
            return True
        if self.loopback_only or ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
            return False
        if ip.version not in {n.version for n in self.networks}:
            return False
        return ip.is_global or any(ip in n for n in self.networks)


MAX_OFFER_CANDIDATES = 64
MAX_CANDIDATES_PER_MEDIA = 16
_CANDIDATE_FIELDS = re.compile(r"^a=candidate:\S+ \d+ (\S+) \d+ (\S+) \d+ typ", re.IGNORECASE)


def _ip(address: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None  # an mDNS .local name or a DNS name


def candidate_policy(settings: Settings) -> CandidatePolicy:
    """The networks of the host addresses the server offers (`webrtc.hostAddresses`, else every
    interface's), read from the interfaces once."""
    chosen = {ip for a in settings.webrtc.host_addresses if (ip := _ip(a)) is not None}
    networks: list[IpNetwork] = []
    for adapter in ifaddr.get_adapters():
        for entry in adapter.ips:
            address = _ip(entry.ip if isinstance(entry.ip, str) else entry.ip[0])
            if address is None or (chosen and address not in chosen) or (not chosen and address.is_loopback):
                continue
            networks.append(ipaddress.ip_network(f"{address}/{entry.network_prefix}", strict=False))
    found = {n.network_address for n in networks} | {a for a in chosen if any(a in n for n in networks)}
    networks += [ipaddress.ip_network(a) for a in chosen - found]  # e.g. a 1:1 NAT address of this box
    trusted = frozenset(ip for ip in (_ip(settings.turn.external_ip),) if ip is not None)
    return CandidatePolicy(tuple(networks), trusted)


def filter_remote_candidates(sdp: str, policy: CandidatePolicy, client: str) -> str:
    """The offer with only the remote candidates `policy` allows for this HTTP client (UDP ones:
    the server gathers nothing else); raises SessionError when it lists too many."""
    listed = sum(1 for line in sdp.splitlines() if line.startswith("a=candidate:"))
    if listed > MAX_OFFER_CANDIDATES:
        raise SessionError("bad_request", f"the offer lists {listed} ICE candidates; at most "
                           f"{MAX_OFFER_CANDIDATES} are accepted")
    kept: list[str] = []
    in_media = 0
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_media = 0
        match = _CANDIDATE_FIELDS.match(line)
        if line.startswith("a=candidate:"):
            if (match is None or match.group(1).lower() != "udp" or in_media >= MAX_CANDIDATES_PER_MEDIA
                    or not policy.allows(match.group(2), client)):
                continue
            in_media += 1
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
