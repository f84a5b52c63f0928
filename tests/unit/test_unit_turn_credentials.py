"""TURN REST credentials (api.turn_credentials.mint), checked against an independent HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from api.turn_credentials import mint
from protocol.config import TurnConfig


def expected_credential(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_with_secret_username_is_expiry_and_name_and_credential_is_hmac_sha1():
    turn = TurnConfig(secret="s3cr3t-turn", username="browser", credential_ttl_seconds=600)
    before = time.time()
    username, credential = mint(turn)
    after = time.time()
    expiry, name = username.split(":", 1)
    assert name == "browser"
    assert int(before + 600) <= int(expiry) <= int(after + 600)
    assert credential == expected_credential("s3cr3t-turn", username)


def test_explicit_now_gives_a_deterministic_expiry():
    turn = TurnConfig(secret="k", username="u", credential_ttl_seconds=3600)
    username, credential = mint(turn, now=1_700_000_000.7)
    assert username == f"{int(1_700_000_000.7 + 3600)}:u"
    assert credential == expected_credential("k", username)


def test_default_name_is_used_when_no_username_is_configured():
    username, _ = mint(TurnConfig(secret="k"), now=1000.0)
    expiry, name = username.split(":", 1)
    assert int(expiry) == 1000 + TurnConfig().credential_ttl_seconds
    assert name  # some non-empty name after the colon


@pytest.mark.parametrize("ttl", [0, -5])
def test_non_positive_ttl_means_an_hour(ttl):
    username, _ = mint(TurnConfig(secret="k", credential_ttl_seconds=ttl), now=1000.0)
    assert username.split(":", 1)[0] == str(1000 + 3600)


def test_different_secrets_give_different_credentials():
    a = mint(TurnConfig(secret="one"), now=1000.0)
    b = mint(TurnConfig(secret="two"), now=1000.0)
    assert a[0] == b[0]
    assert a[1] != b[1]
