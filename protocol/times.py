"""The one wall-clock formatter: RFC 3339 UTC with milliseconds (`2026-11-26T13:05:12.345Z`),
used in every document, event, index and file name the server writes."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def rfc3339(when: float | datetime | None = None) -> str:
    """`when` is a Unix time, an aware datetime, or None for now."""
    if when is None:
        when = time.time()
    moment = when.astimezone(UTC) if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
