"""Which peers the TURN relay may reach. A relay is a proxy: anyone holding credentials from
/api/config could otherwise reach this host's loopback services, the LAN behind it, or a cloud
metadata endpoint through it. coturn is told to deny these ranges; `turn.allowPrivatePeers`
lists the exceptions (coturn reads allowed-peer-ip before denied-peer-ip)."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",  # "this network": Linux routes it to the host itself
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, with the 169.254.169.254 metadata service
    "::1/128",  # loopback (not "::": coturn reads a lone "::" as every address, and refuses it as a peer anyway)
    "::ffff:0:0/96",  # IPv4-mapped: every range above, spelt in IPv6
    "fc00::/7",  # unique local, with fd00:ec2::254 (the EC2 metadata service over IPv6)
    "fe80::/10",  # link-local
))
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _range(net: Network) -> str:
    """coturn 4.6 takes `first-last`, not CIDR (it logs "Wrong address format" and ignores it)."""
    return f"{net[0]}-{net[-1]}" if net.num_addresses > 1 else str(net[0])


def _overlaps(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


def directives(allowed: list[str]) -> list[str]:
    """coturn config lines; `allowed` entries are IP addresses or CIDRs (checked at load)."""
    nets = [ipaddress.ip_network(entry, strict=False) for entry in allowed]
    lines = [f"denied-peer-ip={_range(net)}" for net in DENIED]
    lines += [f"allowed-peer-ip={_range(net)}" for net in nets]
    if any(_overlaps(net, loop) for net in nets for loop in LOOPBACK):
        lines.append("allow-loopback-peers")  # coturn refuses loopback peers before reading either list
    return lines
