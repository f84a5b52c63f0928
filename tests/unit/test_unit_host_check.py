"""Host header parsing for the DNS-rebinding check (api.host_check)."""

from __future__ import annotations

import pytest

from api.host_check import host_allowed, host_name

NAMES = frozenset({"localhost", "cams.example"})


@pytest.mark.parametrize(("host", "name"), [
    ("Example.COM:4500", "example.com"), ("example.com", "example.com"), ("[::1]:4500", "::1"), ("::1", "::1"),
    ("fe80::1", "fe80::1"), ("10.0.0.1:80", "10.0.0.1"), ("localhost.", "localhost"),
])
def test_host_name(host, name):
    assert host_name(host) == name


@pytest.mark.parametrize(("host", "allowed"), [
    ("localhost:4500", True), ("cams.example", True), ("192.0.2.1:4500", True), ("[2001:db8::1]:4500", True),
    ("evil.example", False), ("localhost.evil.example", False), ("127.0.0.1.nip.io", False),
    ("", True),  # no Host: an HTTP/1.0 probe, never a browser
])
def test_host_allowed(host, allowed):
    assert host_allowed(host, NAMES) is allowed
