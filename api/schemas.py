"""The shapes of the responses that routes build as plain dicts, as msgspec Structs, so the
OpenAPI document (api/openapi.py) can describe every JSON body from Structs alone. The
documents built from Structs already (api/documents.py, protocol/) are used as they are.

Fields a response may leave out have defaults (not required in the schema); objects allow
more fields than listed, so a newer server still conforms to an older client's view."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from api.documents import SourceItem
from protocol.events import SourceEvent
from protocol.messages import ConfigOutcome, SessionInfo
from protocol.recordings import RecordingItem
from protocol.vocabulary import Mode


class ErrorBody(msgspec.Struct):
    """Every error: `{"status": "error", "error": "<code>", "detail": "<text>"}`."""

    status: Literal["error"]
    error: str
    detail: str = ""


class Health(msgspec.Struct):
    status: Literal["ok"]
    product: str
    service: str
    version: str


class ReadyMinimal(msgspec.Struct):
    """GET /api/ready without the token, when one is configured: what a probe needs."""

    status: str
    ready: bool


class HttpView(msgspec.Struct):
    host: str
    scheme: Literal["http", "https"]
    tls: bool


class TurnView(msgspec.Struct):
    enabled: bool
    host: str
    port: int
    username: str = ""  # only while a relay is there to use them
    credential: str = ""


class StunView(msgspec.Struct):
    urls: list[str]


class IceServer(msgspec.Struct):
    urls: list[str]
    username: str = ""
    credential: str = ""


class SourceMode(msgspec.Struct):
    id: str
    mode: Mode


class BrowserConfig(msgspec.Struct, rename="camel"):
    """GET /api/config."""

    status: Literal["ok"]
    mode: str
    product: str
    service: str
    version: str
    http: HttpView
    turn: TurnView
    stun: StunView
    ice_servers: list[IceServer]
    sources: list[SourceMode]


class SourceList(msgspec.Struct, rename="camel"):
    item_count: int
    items: list[SourceItem]


class SessionList(msgspec.Struct, rename="camel"):
    item_count: int
    items: list[SessionInfo]


class SessionClosed(msgspec.Struct):
    status: Literal["ok"]
    id: str


class RestartAccepted(msgspec.Struct):
    """POST /api/sources/<id>/restart: the supervisor took the request."""

    status: Literal["accepted"]
    id: str
    detail: str


class StoredEvent(SourceEvent, kw_only=True):
    """An event as the history lists it: with its id in the server's event sequence."""

    id: int


class EventList(msgspec.Struct, rename="camel"):
    item_count: int
    items: list[StoredEvent]


class RecordingList(msgspec.Struct, rename="camel"):
    item_count: int
    items: list[RecordingItem]


class ConfiguredSources(msgspec.Struct, rename="camel"):
    """GET /api/config/sources: the source entries as configured (URL credentials masked)."""

    generation: int | None
    item_count: int
    items: list[dict[str, Any]]
    stored_in: str  # the file API edits are written to (its name only)


class ConfigApplied(ConfigOutcome, rename="camel", kw_only=True):
    """A config change or reload applied: what it did, source by source."""

    status: Literal["ok"]
    detail: str
