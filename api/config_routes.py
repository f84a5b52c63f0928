"""Changing the cameras while the service runs: the configured source list (read, add, replace,
merge-patch, remove) and a reload of the config file. Every change goes to the supervisor, which
checks it with the startup loader's rules, writes it back and applies it; `If-Match: "<generation>"`
makes an edit conditional on the generation the client read (412 when another edit came first).
Who may write: app.require_token and app.local_writes_only_without_token."""

from __future__ import annotations

import msgspec
from quart import Blueprint, Response, request

from api import live_settings
from api.context import ApiError, ask_supervisor, parts
from api.responses import json_response
from api.schemas import ConfigApplied, ConfiguredSources
from protocol.messages import (
    ConfigOutcome,
    EditSource,
    GetSourceConfig,
    ReloadConfig,
    SupervisorReply,
    SupervisorRequest,
)

bp = Blueprint("config", __name__)
CONFIG_TIMEOUT_SEC = 10.0  # a check, an fsync and a rename: more than a restart request, still bounded


def _etag(generation: int | None) -> dict[str, str]:
    return {"ETag": f'"{generation}"'} if generation is not None else {}


def _if_match() -> int | None:
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ApiError(400, "bad_request", 'If-Match: expected a config generation, e.g. "3" (see ETag)')
    return int(tag)


async def _entry() -> dict:
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "expected a JSON object: a source entry as in the config's `sources`")
    return body


async def _apply(change: SupervisorRequest) -> Response:
    reply: SupervisorReply = await ask_supervisor(change, CONFIG_TIMEOUT_SEC)
    live_settings.refresh(parts())  # the caller's next request already sees the new source list
    outcome = reply.outcome or ConfigOutcome(generation=reply.generation or 0)
    body = ConfigApplied(**msgspec.structs.asdict(outcome), status="ok", detail=reply.detail)
    return json_response(body, 200, _etag(reply.generation))


@bp.get("/api/config/sources")
async def list_configured():
    """Entries as configured (URL credentials masked); `ETag` is the generation to send back."""
    reply = await ask_supervisor(GetSourceConfig(), CONFIG_TIMEOUT_SEC)
    items = reply.sources or []
    body = ConfiguredSources(reply.generation, len(items), items, reply.detail)
    return json_response(body, headers={**_etag(reply.generation), "Cache-Control": "no-store"})


@bp.post("/api/config/sources")
async def add_source():
    return await _apply(EditSource(op="add", entry=await _entry(), if_match=_if_match()))


@bp.put("/api/config/sources/<source_id>")
async def replace_source(source_id: str):
    return await _apply(EditSource(op="replace", source_id=source_id, entry=await _entry(), if_match=_if_match()))


@bp.patch("/api/config/sources/<source_id>")
async def patch_source(source_id: str):
    return await _apply(EditSource(op="patch", source_id=source_id, entry=await _entry(), if_match=_if_match()))


@bp.delete("/api/config/sources/<source_id>")
async def remove_source(source_id: str):
    return await _apply(EditSource(op="remove", source_id=source_id, if_match=_if_match()))


@bp.post("/api/config/reload")
async def reload_config():
    """Read the config file again (as SIGHUP does); a bad file is refused whole (400)."""
    return await _apply(ReloadConfig())
