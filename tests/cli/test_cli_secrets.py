"""Secrets and values the server refuses to start with (issue 9, items 5 and 10): placeholders,
short secrets, and control characters in anything written to coturn's config or a header. Each
is exit 3 with a message naming the key, and never echoes the secret."""

from __future__ import annotations

import json

import pytest
from test_cli_exit_codes import free_port, run_cli

GOOD = "a-real-secret-0123456789"


def _start(tmp_path, *args: str, env: dict[str, str] | None = None, config: dict | None = None):
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
        args = ("-c", "config.json", *args)
    return run_cli(tmp_path, "--demo", "--host", "127.0.0.1", "--port", str(free_port()), "--turn-port",
                   str(free_port()), *args, env=env)


@pytest.mark.parametrize(("env", "config", "key", "reason"), [
    ({"ICEY_AUTH_TOKEN": "change-me"}, None, "auth.token (ICEY_AUTH_TOKEN)", "is a placeholder"),
    ({"ICEY_TURN_SECRET": "change-me"}, None, "turn.secret (ICEY_TURN_SECRET)", "is a placeholder"),
    ({"ICEY_AUTH_TOKEN": "CHANGE_ME-before-going-live"}, None, "auth.token", "is a placeholder"),
    (None, {"auth": {"token": "password"}}, "auth.token", "is a placeholder"),
    (None, {"turn": {"secret": "replace-me-with-openssl-rand"}}, "turn.secret", "is a placeholder"),
    ({"ICEY_AUTH_TOKEN": "short-token-15c"}, None, "auth.token", "is shorter than 16 characters"),
    (None, {"turn": {"secret": "k8s\n"}}, "turn.secret", "is shorter than 16 characters"),
], ids=["env-token", "env-turn", "long-placeholder", "file-token", "file-turn", "short-token", "short-after-trim"])
def test_weak_secret_exits_3(tmp_path, env, config, key, reason):
    """Item 5: a placeholder (k8s.yaml's `change-me`) or a secret under 16 characters never runs."""
    result = _start(tmp_path, env=env, config=config)
    assert result.returncode == 3, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert line.startswith(f"Error: {key}") and reason in line
    for secret in [*(env or {}).values(), "password", "replace-me-with-openssl-rand"]:
        assert secret.strip() not in result.stderr.replace(key, "")


def test_sixteen_characters_and_an_empty_secret_are_accepted(tmp_path):
    """Item 5: the limit is exact, and empty still means "no token" / "no TURN" (doctor: ready)."""
    result = _start(tmp_path, "--doctor", env={"ICEY_AUTH_TOKEN": "x" * 15 + "y", "ICEY_TURN_SECRET": ""})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("args", "env", "config", "key"), [
    ((), {"ICEY_TURN_SECRET": GOOD + "\nallow-loopback-peers"}, None, "turn.secret (ICEY_TURN_SECRET)"),
    ((), None, {"turn": {"secret": GOOD, "realm": "icey\nno-auth"}}, "turn.realm"),
    ((), None, {"turn": {"secret": GOOD, "username": "icey\r\nX-Evil: 1"}}, "turn.username"),
    (("--turn-external-ip", "203.0.113.7\tx"), {"ICEY_TURN_SECRET": GOOD}, None, "turn.externalIp"),
    ((), {"ICEY_AUTH_TOKEN": GOOD + "\x1b[2J"}, None, "auth.token (ICEY_AUTH_TOKEN)"),
    ((), None, {"auth": {"token": GOOD + "\x00"}}, "auth.token"),
    ((), None, {"stun": {"urls": ["stun:stun.example.net\n"]}}, "stun.urls[0]"),
], ids=["secret-newline", "realm", "username", "external-ip-flag", "token-escape", "file-token-nul", "stun-url"])
def test_control_character_in_written_value_exits_3(tmp_path, args, env, config, key):
    """Item 10: a value written to coturn's config (or a header) with a control character would add
    a directive (or a header) of the sender's choosing: refused at start, the key named."""
    result = _start(tmp_path, *args, env=env, config=config)
    assert result.returncode == 3, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert line.startswith(f"Error: {key}") and "contains a control character (U+00" in line
    assert GOOD not in result.stderr


def test_allow_private_peers_must_be_addresses(tmp_path):
    """Item 1 / 10: allowPrivatePeers entries become coturn directives: CIDRs only, and never the
    lone unspecified address (coturn would read it as every address)."""
    for entry in ("10.0.0.0/8\nallowed-peer-ip=0.0.0.0-255.255.255.255", "lan", "0.0.0.0"):
        result = _start(tmp_path, env={"ICEY_TURN_SECRET": GOOD}, config={"turn": {"allowPrivatePeers": [entry]}})
        assert result.returncode == 3, result.stderr
        assert "turn.allowPrivatePeers[0]" in result.stderr
