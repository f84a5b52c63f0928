"""Per-source views: the list, one item, and the worker's live probe of its source."""

from __future__ import annotations

from quart import Blueprint

from api.context import ask_worker, documents, settings, source_or_404
from api.responses import json_response
from protocol.messages import DescribeRequest

bp = Blueprint("sources", __name__)
PROBE_TIMEOUT_SEC = 3.0


@bp.get("/api/sources")
async def list_sources():
    docs = documents()
    now = docs.now()
    items = [docs.source_item(src, now) for src in settings().sources]
    return json_response({"itemCount": len(items), "items": items})


@bp.get("/api/sources/<source_id>")
async def get_source(source_id: str):
    docs = documents()
    return json_response(docs.source_item(source_or_404(source_id), docs.now()))


@bp.get("/api/sources/<source_id>/probe")
async def probe_source(source_id: str):
    source_or_404(source_id)
    return json_response(await ask_worker(source_id, DescribeRequest(), PROBE_TIMEOUT_SEC))
