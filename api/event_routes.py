"""GET /api/events (Server-Sent Events) and GET /api/sources/<id>/events (recent history)."""

from __future__ import annotations

import asyncio
import weakref

import msgspec
from quart import Blueprint, Response, request

from api.context import ApiError, parts, source_or_404
from api.event_store import Stored, Subscriber
from api.responses import json_response

bp = Blueprint("events", __name__)
KEEPALIVE_SEC = 15.0
_encoder = msgspec.json.Encoder()


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
    sources, types = _csv("source"), _csv("type")
    for source_id in sorted(sources):
        source_or_404(source_id)
    given = [v for v in (request.headers.get("Last-Event-ID"), request.args.get("lastEventId")) if v]
    try:  # both are checked, the header wins (EventSource sends it when it reconnects)
        last_id = [int(v) for v in given][0] if given else None
    except ValueError:
        raise ApiError(400, "bad_request", "Last-Event-ID must be an event id") from None
    store = parts().events
    limit = parts().settings.http.max_event_streams
    if limit and len(store.subscribers) >= limit:  # no await between this check and the add
        raise ApiError(503, "busy", f"too many event streams (the limit is {limit})", {"Retry-After": "5"})
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

    body = stream()
    # A client gone before its body started never runs the generator's `finally`: the slot is
    # given back when the generator is collected.
    weakref.finalize(body, store.subscribers.discard, subscriber)
    response = Response(body, content_type="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.timeout = None  # a stream lives as long as the client wants it
    return response


@bp.get("/api/sources/<source_id>/events")
async def source_events(source_id: str):
    source_or_404(source_id)
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be an integer") from None
    types = _csv("type")
    items = [{"id": s.id, **msgspec.to_builtins(s.event)} for s in parts().events.recent(source_id, 10_000)
             if _matches(s, set(), types)][-max(0, min(limit, 1000)):] if limit > 0 else []
    return json_response({"itemCount": len(items), "items": items})
