"""Per-source views: the list, one item, the worker's live probe of its source; and restarting
a source's worker."""

from __future__ import annotations

from quart import Blueprint

from api.context import ask_supervisor, ask_worker, documents, settings, source_or_404
from api.responses import json_response
from api.schemas import RestartAccepted
from protocol.messages import DescribeRequest, RestartSource

bp = Blueprint("sources", __name__)
PROBE_TIMEOUT_SEC = 3.0
RESTART_TIMEOUT_SEC = 3.0  # the supervisor only records the request: it answers at once


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


@bp.post("/api/sources/<source_id>/restart")
async def restart_source(source_id: str):
    """202: the supervisor starts the worker afresh (a given-up one comes back); follow
    `Location` to watch it."""
    src = source_or_404(source_id)  # who may: app.local_writes_only_without_token
    reply = await ask_supervisor(RestartSource(source_id=src.id), RESTART_TIMEOUT_SEC)
    location = f"/api/sources/{src.id}"
    return json_response(RestartAccepted("accepted", src.id, reply.detail), 202, {"Location": location})
