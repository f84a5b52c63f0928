"""The API follows the supervisor's config generations: it re-reads the settings file the
supervisor rewrote, so source lookups, lists and WHEP routes see added and removed sources, and
opens control channels to new workers. Restart-only keys (http, tls, auth, ...) are kept as they
were by the supervisor, so the values the API serves with never change under it."""

from __future__ import annotations

import logging

import msgspec

from api.context import AppParts
from protocol import ipc
from protocol.child import load_settings

log = logging.getLogger("icey.api")


def refresh(parts: AppParts) -> None:
    try:
        settings = load_settings(parts.runtime_dir / ipc.API_SETTINGS_FILE)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error("cannot read the new settings (%s); still serving the previous ones", exc)
        return
    parts.settings = settings
    parts.documents.settings = settings
    parts.control.sync(settings)
