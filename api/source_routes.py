"""Per-source views: the list, one item, and the worker's live probe of its source."""

from __future__ import annotations

from quart import Blueprint, current_app

from api.control_client import ControlClient, WorkerTimeout, WorkerUnavailable
from api.documents import Documents
from api.responses import error_response, json_response
from protocol.config import Settings
from protocol.messages import ControlError, DescribeRequest

bp = Blueprint("sources", __name__)


def _docs() -> Documents:
    return current_app.config["ICEY_DOCUMENTS"]


def _settings() -> Settings:
    return current_app.config["ICEY_SETTINGS"]


def _unknown(source_id: str):
    return error_response(404, "not_found", f"no source with id '{source_id}'")


@bp.get("/api/sources")
async def list_sources():
    docs = _docs()
    now = docs.now()
    items = [docs.source_item(src, now) for src in _settings().sources]
    return json_response({"itemCount": len(items), "items": items})


@bp.get("/api/sources/<source_id>")
async def get_source(source_id: str):
    src = _settings().source(source_id)
    if src is None:
        return _unknown(source_id)
    docs = _docs()
    return json_response(docs.source_item(src, docs.now()))


@bp.get("/api/sources/<source_id>/probe")
async def probe_source(source_id: str):
    if _settings().source(source_id) is None:
        return _unknown(source_id)
    control: ControlClient = current_app.config["ICEY_CONTROL"]
    try:
        reply = await control.request(source_id, DescribeRequest())
    except WorkerUnavailable as exc:
        return error_response(503, "worker_unavailable", str(exc), {"Retry-After": "1"})
    except WorkerTimeout as exc:
        return error_response(504, "worker_timeout", str(exc))
    if isinstance(reply, ControlError):
        return error_response(502, reply.code, reply.detail)
    return json_response(reply)
