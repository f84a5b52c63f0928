"""Values that end up in a file another program reads line by line (coturn's config) or in an
HTTP header must be one line: a newline in `turn.secret` would add a coturn directive of the
sender's choosing. A control character anywhere in them is refused at start (exit 3)."""

from __future__ import annotations

import unicodedata

from protocol.config import FileConfig
from supervisor.errors import ConfigError


def _written(cfg: FileConfig) -> list[tuple[str, str]]:
    """(key, value) of everything written to coturn's config or to a header, or compared with one."""
    return [("auth.token (ICEY_AUTH_TOKEN)", cfg.auth.token), ("turn.secret (ICEY_TURN_SECRET)", cfg.turn.secret),
            ("turn.realm", cfg.turn.realm), ("turn.username", cfg.turn.username),
            ("turn.externalIp (ICEY_TURN_EXTERNAL_IP, --turn-external-ip)", cfg.turn.external_ip),
            ("http.host (ICEY_HOST, --host)", cfg.http.host),
            ("metrics.host (ICEY_METRICS_HOST, --metrics-host)", cfg.metrics.host),
            *((f"stun.urls[{i}]", url) for i, url in enumerate(cfg.stun.urls))]


def control_character(value: str) -> str | None:
    """The first control character as `U+000A`, or None."""
    found = next((ch for ch in value if unicodedata.category(ch) == "Cc"), None)
    return None if found is None else f"U+{ord(found):04X}"


def check(cfg: FileConfig) -> None:
    for key, value in _written(cfg):
        if (found := control_character(value)) is not None:
            raise ConfigError(f"Error: {key} contains a control character ({found}); it is written to a config "
                              "file or a header, so it must be one line of text.")
