"""GET /api/events (Server-Sent Events) and GET /api/sources/<id>/events (recent history)."""

from __future__ import annotations

import asyncio

import msgspec
from quart import Blueprint, Response, current_app, request

from api.event_store import EventStore, Stored, Subscriber
from api.responses import error_response, json_response
from protocol.config import Settings

bp = Blueprint("events", __name__)
KEEPALIVE_SEC = 15.0
_encoder = msgspec.json.Encoder()


def _store() -> EventStore:
    return current_app.config["ICEY_EVENTS"]


def _csv(name: str) -> set[str]:
    return {v for v in request.args.get(name, "").split(",") if v}


def _matches(stored: Stored, sources: set[str], types: set[str]) -> bool:
    """`type=motion` matches motion.start and motion.end."""
    event = stored.event
    if sources and event.source_id not in sources:
        return False
    return not types or any(event.type == t or event.type.startswith(t + ".") for t in types)


def _frame(stored: Stored) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (stored.id, stored.event.type.encode(), _encoder.encode(stored.event))


@bp.get("/api/events")
async def events():
    settings: Settings = current_app.config["ICEY_SETTINGS"]
    sources, types = _csv("source"), _csv("type")
    unknown = sources - {s.id for s in settings.sources}
    if unknown:
        return error_response(404, "not_found", f"no source with id '{sorted(unknown)[0]}'")
    raw_last = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    try:
        last_id = int(raw_last) if raw_last else None
    except ValueError:
        return error_response(400, "bad_request", "Last-Event-ID must be an event id")
    store = _store()
    subscriber = Subscriber()
    store.subscribers.add(subscriber)  # before the replay: nothing falls between the two
    replay = store.since(last_id) if last_id is not None else []

    async def stream():
        try:
            yield b"retry: 2000\n\n"
            seen = 0
            for stored in replay:
                seen = stored.id
                if _matches(stored, sources, types):
                    yield _frame(stored)
            while not (subscriber.overflowed.is_set() and subscriber.queue.empty()):
                try:
                    stored = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE_SEC)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if stored.id > seen and _matches(stored, sources, types):
                    yield _frame(stored)
        finally:
            store.subscribers.discard(subscriber)

    response = Response(stream(), content_type="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.timeout = None  # a stream lives as long as the client wants it
    return response


@bp.get("/api/sources/<source_id>/events")
async def source_events(source_id: str):
    settings: Settings = current_app.config["ICEY_SETTINGS"]
    if settings.source(source_id) is None:
        return error_response(404, "not_found", f"no source with id '{source_id}'")
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        return error_response(400, "bad_request", "limit must be an integer")
    types = _csv("type")
    items = [{"id": s.id, **msgspec.to_builtins(s.event)} for s in _store().recent(source_id, 10_000)
             if _matches(s, set(), types)][-max(0, min(limit, 1000)):] if limit > 0 else []
    return json_response({"itemCount": len(items), "items": items})
