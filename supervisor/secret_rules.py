"""The secrets, `auth.token`, `turn.secret` and `metrics.token`: trimmed wherever they come from, then
refused at start (exit 3) when they protect nothing: a placeholder nobody replaced
(`change-me` in a manifest) or fewer than 16 characters.

Trimmed rather than rejected: Kubernetes secrets and `echo ... > file` add a trailing newline,
and a secret that kept it would match nothing a client sends (nor coturn, which reads lines)."""

from __future__ import annotations

import re

from protocol.config import FileConfig
from supervisor.errors import ConfigError

MIN_LENGTH = 16
# Compared letters and digits only, lower case: "Change-Me" and "CHANGE_ME" are the same placeholder.
PLACEHOLDER_PARTS = ("changeme", "changeit", "replaceme", "placeholder")
PLACEHOLDERS = frozenset({"secret", "password", "token", "example", "default", "test"})


def trim(cfg: FileConfig) -> None:
    cfg.auth.token, cfg.turn.secret = cfg.auth.token.strip(), cfg.turn.secret.strip()
    cfg.metrics.token = cfg.metrics.token.strip()


def problem(value: str) -> str | None:
    """Why a (trimmed) secret is refused, or None; never quotes the value."""
    normal = re.sub(r"[^a-z0-9]", "", value.lower())
    if normal in PLACEHOLDERS or any(part in normal for part in PLACEHOLDER_PARTS):
        return "is a placeholder"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None


def check(cfg: FileConfig) -> None:
    for key, value in (("auth.token (ICEY_AUTH_TOKEN)", cfg.auth.token),
                       ("turn.secret (ICEY_TURN_SECRET)", cfg.turn.secret),
                       ("metrics.token (ICEY_METRICS_TOKEN)", cfg.metrics.token)):
        if value and (reason := problem(value)) is not None:
            raise ConfigError(f"Error: {key} {reason}; set a random value of at least {MIN_LENGTH} characters "
                              "(e.g. `openssl rand -hex 24`), or leave it empty to turn it off.")
