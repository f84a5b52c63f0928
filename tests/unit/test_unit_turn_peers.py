"""coturn's peer rules (supervisor.turn_peers): ranges in the `first-last` form coturn 4.6 parses,
exceptions as allowed-peer-ip, loopback peers only when one is listed."""

from __future__ import annotations

from supervisor.turn_peers import directives


def test_default_denies_private_ranges_and_allows_nothing():
    lines = directives([])
    assert "denied-peer-ip=10.0.0.0-10.255.255.255" in lines
    assert "denied-peer-ip=::1" in lines
    assert "denied-peer-ip=::" not in lines  # coturn reads a lone "::" as every address
    assert not [line for line in lines if not line.startswith("denied-peer-ip=")]
    assert all("/" not in line for line in lines)


def test_listed_peers_are_allowed_and_loopback_only_when_listed():
    lines = directives(["192.168.1.0/24", "10.1.2.3"])
    assert lines[-2:] == ["allowed-peer-ip=192.168.1.0-192.168.1.255", "allowed-peer-ip=10.1.2.3"]
    assert "allow-loopback-peers" not in lines
    assert directives(["127.0.0.1"])[-1] == "allow-loopback-peers"
    assert directives(["::1/128"])[-1] == "allow-loopback-peers"
    assert directives(["0.0.0.0/0"])[-1] == "allow-loopback-peers"  # every address includes loopback
