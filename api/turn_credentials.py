"""TURN credentials for browsers: TURN REST style (time-limited HMAC) when `turn.secret` is
set, else icey's demo pair (which the readiness report flags as degrading)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from protocol.config import TurnConfig

DEMO_USERNAME = DEMO_CREDENTIAL = "icey"
DEFAULT_TTL_SEC = 3600


def mint(turn: TurnConfig, now: float | None = None) -> tuple[str, str]:
    if not turn.secret:
        return DEMO_USERNAME, DEMO_CREDENTIAL
    ttl = turn.credential_ttl_seconds if turn.credential_ttl_seconds > 0 else DEFAULT_TTL_SEC
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{turn.username or 'icey'}"
    digest = hmac.new(turn.secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
