"""TURN credentials for browsers, TURN REST style (coturn's `use-auth-secret`): username
`<expiry>:<name>`, credential base64(HMAC-SHA1(secret, username)). There is no demo pair: the
relay only runs with `turn.secret`, and credentials are only minted while it runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from protocol.config import TurnConfig

DEFAULT_TTL_SEC = 3600


def mint(turn: TurnConfig, now: float | None = None) -> tuple[str, str]:
    ttl = turn.credential_ttl_seconds if turn.credential_ttl_seconds > 0 else DEFAULT_TTL_SEC
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{turn.username or 'icey'}"
    digest = hmac.new(turn.secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
