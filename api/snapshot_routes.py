"""GET /api/sources/<id>/snapshot.jpg: the source's latest picture as JPEG, made by its worker.

`w`/`h` bound the size (aspect kept, never enlarged), `q` is the JPEG quality 1-100, `maxAge`
(seconds) lets the worker answer with a cached picture no older than that. An offline source is a
503 with `Retry-After` (never a 200 with an empty body); a repeat of the same picture is a 304 to
`If-None-Match`, so a wall refreshing its tiles costs no bytes while nothing changed. A reply
young enough for `maxAge` is served from the API's own cache without asking the worker.
"""

from __future__ import annotations

import math
from datetime import datetime

from quart import Blueprint, Response, current_app, request
from quart.blueprints import BlueprintSetupState
from werkzeug.http import http_date, parse_etags

from api.context import ApiError, ask_worker, documents, source_or_404
from api.documents import SourceItem
from api.snapshot_cache import SnapshotCache
from protocol.messages import (
    SNAPSHOT_DEFAULT_QUALITY,
    SNAPSHOT_MAX_AGE_SEC,
    SNAPSHOT_MAX_SIDE,
    SnapshotReply,
    SnapshotRequest,
)

bp = Blueprint("snapshots", __name__)
SNAPSHOT_TIMEOUT_SEC = 5.0
MAX_AGE_LIMIT_SEC = SNAPSHOT_MAX_AGE_SEC
CACHE_CONTROL = "private, max-age=1"
CACHE = "icey.snapshots"  # the app's SnapshotCache, in app.extensions


@bp.record_once
def _cache(state: BlueprintSetupState) -> None:
    state.app.extensions[CACHE] = SnapshotCache()


def _integer(name: str, low: int, high: int, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be an integer from {low} to {high}")
    return value


def _max_age() -> float:
    raw = request.args.get("maxAge")
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_AGE_LIMIT_SEC:  # NaN fails this too
        raise ApiError(400, "bad_request", f"maxAge must be a number of seconds from 0 to {MAX_AGE_LIMIT_SEC:g}")
    return value


def snapshot_request() -> SnapshotRequest:
    return SnapshotRequest(max_age_sec=_max_age(), width=_integer("w", 1, SNAPSHOT_MAX_SIDE, 0),
                           height=_integer("h", 1, SNAPSHOT_MAX_SIDE, 0),
                           quality=_integer("q", 1, 100, SNAPSHOT_DEFAULT_QUALITY))


def retry_after(item: SourceItem) -> dict[str, str]:
    """`Retry-After`: the seconds until the worker retries its source (or restarts), at least 1;
    none for a worker given up without a retry planned (asking again cannot succeed)."""
    if item.worker.state == "given-up" and item.worker.next_restart_in_ms is None:
        return {}
    seconds = 2.0
    if item.worker.next_restart_in_ms is not None:
        seconds = item.worker.next_restart_in_ms / 1000
    elif item.next_retry_at:
        seconds = datetime.fromisoformat(item.next_retry_at.replace("Z", "+00:00")).timestamp() - \
            datetime.now().timestamp()
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


@bp.get("/api/sources/<source_id>/snapshot.jpg")
async def snapshot(source_id: str):
    src = source_or_404(source_id)
    ask = snapshot_request()
    docs = documents()
    item = docs.source_item(src, docs.now())
    if item.state != "online":
        raise ApiError(503, "unavailable", f"source {source_id} is {item.state}; no picture to show",
                       retry_after(item))
    cache: SnapshotCache = current_app.extensions[CACHE]
    key = (source_id, ask.width, ask.height, ask.quality)
    snap = cache.get(key, ask.max_age_sec)
    if snap is None:
        reply = await ask_worker(source_id, ask, SNAPSHOT_TIMEOUT_SEC)
        assert isinstance(reply, SnapshotReply)
        snap = cache.put(key, reply)
    headers = {"ETag": snap.etag, "Cache-Control": CACHE_CONTROL, "Last-Modified": http_date(snap.taken),
               "X-Icey-Frame-Time": snap.reply.frame_time, "X-Content-Type-Options": "nosniff"}
    if parse_etags(request.headers.get("If-None-Match")).contains_weak(snap.etag.strip('"')):
        return Response(b"", status=304, headers=headers)
    return Response(snap.reply.jpeg, status=200, content_type="image/jpeg", headers=headers)
