"""Every route the app serves, with what it answers: the one table the OpenAPI document is built
from (api/openapi.py). A test holds it equal to the app's url_map, so a route cannot be added
or removed without the document following.

Bodies name their content type and, for JSON, the Struct that encodes them; errors are always
`ErrorBody`. `auth` says which token opens the route: "token" (auth.token), "probe" (answers
without one, with less), "metrics" (auth.token or metrics.token), "open".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from api.documents import Readiness, SourceItem, Status
from api.schemas import (
    BrowserConfig,
    ConfigApplied,
    ConfiguredSources,
    ErrorBody,
    EventList,
    Health,
    ReadyMinimal,
    RecordingList,
    RestartAccepted,
    SessionClosed,
    SessionList,
    SourceList,
)
from protocol.events import SourceEvent
from protocol.messages import SNAPSHOT_MAX_AGE_SEC, SNAPSHOT_MAX_SIDE, SourceDescription
from protocol.vocabulary import EventType

JSON = "application/json"
SDP = "application/sdp"
Auth = Literal["token", "probe", "metrics", "open"]


@dataclass(frozen=True)
class Body:
    content_type: str
    schema: object = str  # a Struct (a tuple: any of them) for JSON; str: text; bytes: binary; an EventStream


@dataclass(frozen=True)
class EventStream:
    """A Server-Sent Events body: each event's `data` is the JSON of `data`, its name one of `names`."""

    data: type
    names: tuple[str, ...]


@dataclass(frozen=True)
class Reply:
    description: str
    bodies: tuple[Body, ...] = ()
    headers: tuple[str, ...] = ()  # names in HEADERS
    required_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "header"]
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # as in app.url_map
    endpoint: str
    summary: str
    replies: dict[int, Reply]
    auth: Auth = "token"
    params: tuple[Param, ...] = ()
    body: Body | None = None


HEADERS = {
    "Location": "The session's URL: DELETE it to end the session.",
    "ETag": "The session's entity tag.",
    "Link": "ICE servers (RFC 9725 section 4.6), only for an authorized request.",
    "Accept-Post": "The offer media type the resource takes.",
    "Allow": "The methods the resource supports.",
    "Retry-After": "Seconds to wait before trying again.",
    "Content-Range": "The byte range this partial body holds.",
    "Cache-Control": "Caching directives.",
    "Last-Modified": "When the picture was taken.",
    "X-Icey-Frame-Time": "The picture's time on the source (RFC 3339 UTC).",
}


def _error(description: str) -> Reply:
    return Reply(description, (Body(JSON, ErrorBody),))


ERRORS = {
    400: _error("Bad request: an unreadable parameter or body."),
    412: _error("If-Match names a config generation that is no longer the running one."),
    403: _error("Without auth.token, only clients on the server's host may change anything."),
    404: _error("No such source, session or file."),
    405: _error("Method not allowed."),
    409: _error("Conflict: WHIP on a stream source, or a second publisher."),
    413: _error("The request body is larger than the server takes (1 MiB)."),
    415: _error("The body is not of the media type the route takes."),
    416: _error("The requested range is outside the file."),
    503: Reply("The source's worker is restarting or busy (viewer limit reached), or given up (then without "
               "Retry-After).", (Body(JSON, ErrorBody),), ("Retry-After",)),
    504: _error("The source's worker did not answer in time."),
}


def errors(*codes: int) -> dict[int, Reply]:
    return {code: ERRORS[code] for code in codes}


def _ok(description: str, schema: object, *headers: str) -> dict[int, Reply]:
    return {200: Reply(description, (Body(JSON, schema),), headers)}


LIST_LIMIT = Param("limit", "query", "How many of the most recent events (at most 1000).", {"type": "integer"})
EVENT_TYPES = Param("type", "query", "Comma-separated event types or families (motion: motion.start and .end).")
EVENT_RESUME = (
    Param("source", "query", "Comma-separated source ids."),
    EVENT_TYPES,
    Param("lastEventId", "query", "Resume after this event id.", {"type": "integer"}),
    Param("Last-Event-ID", "header", "Resume after this event id (as EventSource sends it).", {"type": "integer"}),
)
OFFER = Body(SDP)
SESSION_RULE = "/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>"
PAGE = {200: Reply("The page.", (Body("text/html"),))}
ARTIFACT_TYPES = ("video/mp4", "audio/mp4", "image/jpeg", "image/png", "image/webp", JSON)

CONFIG_APPLIED = {200: Reply("Applied: what it did, source by source.", (Body(JSON, ConfigApplied),), ("ETag",),
                            ("ETag",))}
CONFIG_ENTRY = Body(JSON, dict)
IF_MATCH = Param("If-Match", "header", 'The config generation the edit is based on, e.g. "3" (412 when stale).')

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", "operator.health", "Liveness: 200 while the API runs.",
          _ok("Alive.", Health), auth="open"),
    Route("GET", "/api/ready", "operator.ready", "Readiness: 200 when ready, 503 when not.",
          {200: Reply("Ready (without the token: only status and ready).", (Body(JSON, (Readiness, ReadyMinimal)),)),
           503: Reply("Not ready.", (Body(JSON, (Readiness, ReadyMinimal)),)), **errors(404)}, auth="probe",
          params=(Param("source", "query", "Answer for this one source (its check and the service checks)."),)),
    Route("GET", "/api/status", "operator.status", "The merged runtime status.", _ok("The status.", Status)),
    Route("GET", "/api/config", "operator.config", "Browser config: ICE servers and TURN credentials.",
          _ok("The config.", BrowserConfig, "Cache-Control")),
    Route("GET", "/api/sources", "sources.list_sources", "Every source.", _ok("The sources.", SourceList)),
    Route("GET", "/api/sources/<source_id>", "sources.get_source", "One source.",
          {**_ok("The source.", SourceItem), **errors(404)}),
    Route("GET", "/api/sources/<source_id>/probe", "sources.probe_source",
          "The worker's live view of its source.",
          {**_ok("What the demuxer sees.", SourceDescription), **errors(404, 503, 504)}),
    Route("POST", "/api/sources/<source_id>/restart", "sources.restart_source",
          "Restart the source's worker now (a given-up one comes back).",
          {202: Reply("Accepted.", (Body(JSON, RestartAccepted),), ("Location",), ("Location",)),
           **errors(403, 404, 503, 504)}),
    Route("GET", "/api/sources/<source_id>/snapshot.jpg", "snapshots.snapshot",
          "The latest picture of the source as JPEG.",
          {200: Reply("The picture.", (Body("image/jpeg", bytes),),
                      ("ETag", "Cache-Control", "Last-Modified", "X-Icey-Frame-Time"), ("ETag",)),
           304: Reply("The same picture as If-None-Match names."), **errors(400, 404, 503, 504)},
          params=(Param("w", "query", "Fit into this width (never enlarged).",
                        {"type": "integer", "minimum": 1, "maximum": SNAPSHOT_MAX_SIDE}),
                  Param("h", "query", "Fit into this height (never enlarged).",
                        {"type": "integer", "minimum": 1, "maximum": SNAPSHOT_MAX_SIDE}),
                  Param("q", "query", "JPEG quality 1-100.", {"type": "integer", "minimum": 1, "maximum": 100}),
                  Param("maxAge", "query", "A cached picture this young (seconds) is served as is.",
                        {"type": "number", "minimum": 0, "maximum": SNAPSHOT_MAX_AGE_SEC}),
                  Param("If-None-Match", "header", "The ETag of the picture the client has."))),
    Route("GET", "/api/sources/<source_id>/sessions", "webrtc.list_sessions", "The WebRTC peers of a source.",
          {**_ok("The sessions.", SessionList), **errors(404)}),
    Route("DELETE", "/api/sources/<source_id>/sessions/<session_id>", "webrtc.kick_session", "End a session.",
          {**_ok("Ended.", SessionClosed), **errors(404, 503, 504)}),
    Route("POST", "/api/sources/<source_id>/<any(whep, whip):kind>", "webrtc.offer",
          "WHEP (watch) or WHIP (publish): an SDP offer in, the answer out.",
          {201: Reply("The SDP answer.", (Body(SDP),), ("Location", "ETag", "Link", "Cache-Control"),
                      ("Location",)),
           **errors(400, 404, 409, 413, 415, 503, 504)}, body=OFFER),
    Route("OPTIONS", "/api/sources/<source_id>/<any(whep, whip):kind>", "webrtc.offer",
          "What the WHEP/WHIP endpoint takes, and the ICE servers (with the token).",
          {204: Reply("No body.", (), ("Accept-Post", "Allow", "Link"), ("Accept-Post",)), **errors(404)},
          auth="open"),
    Route("DELETE", SESSION_RULE, "webrtc.end_session", "End a WHEP/WHIP session (its Location).",
          {**_ok("Ended.", SessionClosed), **errors(404, 503, 504)}),
    Route("PATCH", SESSION_RULE, "webrtc.patch_session",
          "Trickle ICE and ICE restarts are not supported: always 405 (RFC 9725).",
          {405: Reply("Not supported; send a complete offer.", (Body(JSON, ErrorBody),), ("Allow",)),
           **errors(404)}),
    Route("OPTIONS", SESSION_RULE, "webrtc.session_options", "The methods a session resource takes.",
          {204: Reply("No body.", (), ("Allow",), ("Allow",)), **errors(404)}, auth="open"),
    Route("GET", "/api/events", "events.events", "Server-Sent Events of every source; an endless stream.",
          {200: Reply("The event stream.", (Body("text/event-stream", EventStream(SourceEvent, get_args(EventType))),)),
           **errors(400, 404)},
          params=EVENT_RESUME),
    Route("GET", "/api/sources/<source_id>/events", "events.source_events", "The last events of a source.",
          {**_ok("The events, oldest first.", EventList), **errors(400, 404)}, params=(EVENT_TYPES, LIST_LIMIT)),
    Route("GET", "/api/sources/<source_id>/recordings", "artifacts.recordings",
          "The continuous-recording segments of a source.",
          {**_ok("The segments, oldest first.", RecordingList), **errors(404)}),
    Route("GET", "/artifacts/<path:rest>", "artifacts.artifact", "A recording, snapshot or clip; Range works.",
          {200: Reply("The file.", tuple(Body(t, bytes) for t in ARTIFACT_TYPES), ("Cache-Control",)),
           206: Reply("Part of the file.", tuple(Body(t, bytes) for t in ARTIFACT_TYPES), ("Content-Range",),
                      ("Content-Range",)),
           304: Reply("Not modified."), **errors(404, 416)},
          params=(Param("Range", "header", "bytes=<first>-<last>"),)),
    Route("GET", "/api/config/sources", "config.list_configured", "The configured sources (credentials masked).",
          {200: Reply("The entries.", (Body(JSON, ConfiguredSources),), ("ETag", "Cache-Control"), ("ETag",)),
           **errors(503, 504)}),
    Route("POST", "/api/config/sources", "config.add_source", "Add a source: checked, written back, applied.",
          {**CONFIG_APPLIED, **errors(400, 403, 409, 412, 503, 504)}, params=(IF_MATCH,), body=CONFIG_ENTRY),
    Route("PUT", "/api/config/sources/<source_id>", "config.replace_source", "Replace a source's entry.",
          {**CONFIG_APPLIED, **errors(400, 403, 404, 409, 412, 503, 504)}, params=(IF_MATCH,), body=CONFIG_ENTRY),
    Route("PATCH", "/api/config/sources/<source_id>", "config.patch_source", "Merge-patch a source's entry.",
          {**CONFIG_APPLIED, **errors(400, 403, 404, 409, 412, 503, 504)}, params=(IF_MATCH,), body=CONFIG_ENTRY),
    Route("DELETE", "/api/config/sources/<source_id>", "config.remove_source", "Remove a source.",
          {**CONFIG_APPLIED, **errors(400, 403, 404, 412, 503, 504)}, params=(IF_MATCH,)),
    Route("POST", "/api/config/reload", "config.reload_config", "Read the config file again (as SIGHUP).",
          {**CONFIG_APPLIED, **errors(400, 403, 503, 504)}),
    Route("GET", "/metrics", "metrics.metrics", "Prometheus metrics (OpenMetrics when asked for in Accept); also "
          "served alone on metrics.port when that is set.",
          {200: Reply("The metrics.", (Body("text/plain"), Body("application/openmetrics-text")))},
          auth="metrics"),
    Route("GET", "/api/openapi.json", "openapi.document", "This document.",
          {200: Reply("OpenAPI 3.1.", (Body(JSON, dict),))}, auth="open"),
    Route("GET", "/", "pages.wall", "The camera wall.", PAGE, auth="open"),
    Route("GET", "/sources/<source_id>", "pages.source_page", "The page of one source.",
          {**PAGE, **errors(404)}, auth="open"),
    Route("GET", "/watch/<source_id>", "pages.watch", "The page that plays one source.",
          {**PAGE, **errors(404)}, auth="open"),
    Route("GET", "/publish/<source_id>", "pages.publish", "The page that publishes to one source.",
          {**PAGE, **errors(404)}, auth="open"),
    Route("GET", "/ui/<name>", "pages.asset", "The pages' scripts and style sheet.",
          {200: Reply("The asset.", (Body("text/javascript"), Body("text/css"))), **errors(404)}, auth="open"),
)
