"""Events: what happened at a source, pushed by its worker on the state plane and served by
the API as Server-Sent Events and per-source history.

Payloads are versioned msgspec Structs (`schema`), so a consumer can tell a newer shape apart;
`EventType` lists every type, so a typo fails at decode and a grep for a type's literal finds
its producer.
"""

from __future__ import annotations

import msgspec

from protocol.vocabulary import ConfigOrigin, EventType, RecordTarget, SessionKind, SourceState

EVENT_SCHEMA = 1


class Region(msgspec.Struct, frozen=True):
    """A box in normalized frame coordinates (0..1), so it survives any rescaling."""

    x: float
    y: float
    w: float
    h: float


class MotionData(msgspec.Struct, tag="motion", rename="camel", kw_only=True):
    score: float  # fraction of grid cells that changed
    regions: list[Region] = []
    cells: int = 0


class SpeechData(msgspec.Struct, tag="speech", rename="camel", kw_only=True):
    level: float  # RMS level, 0..1 of full scale
    peak: float = 0.0


class ArtifactData(msgspec.Struct, tag="artifact", rename="camel", kw_only=True):
    url: str | None  # under /artifacts/, never a filesystem path; None when stored outside the record dir
    bytes: int = 0
    duration_sec: float | None = None


class SourceData(msgspec.Struct, tag="source", rename="camel", kw_only=True):
    state: SourceState
    detail: str | None = None  # scrubbed


class SessionData(msgspec.Struct, tag="session", rename="camel", kw_only=True):
    session_id: str
    kind: SessionKind
    remote: str


class RecordData(msgspec.Struct, tag="record", rename="camel", kw_only=True):
    """record.failed / record.resumed: writing `target` to disk stopped or works again."""

    target: RecordTarget
    detail: str | None = None  # the error, scrubbed
    bytes_free: int | None = None  # on the disk written to, when known


class ConfigData(msgspec.Struct, tag="config", rename="camel", kw_only=True):
    """A config generation applied (or a candidate rejected: `detail` says why, with its key path)."""

    generation: int
    origin: ConfigOrigin
    added: list[str] = []
    removed: list[str] = []
    restarted: list[str] = []
    updated: list[str] = []
    changed: dict[str, list[str]] = {}  # updated/restarted source id -> the key paths that changed
    restarted_for: dict[str, list[str]] = {}  # restarted source id -> the key paths that needed a new worker
    requires_restart: list[str] = []
    detail: str | None = None


EventData = MotionData | SpeechData | ArtifactData | SourceData | SessionData | RecordData | ConfigData
# The source_id of service-wide events (config.*), sent by the supervisor itself.
SERVICE_EVENT_SOURCE = ""


class SourceEvent(msgspec.Struct, rename="camel", kw_only=True):
    schema: int = EVENT_SCHEMA
    source_id: str
    type: EventType
    time: str  # RFC 3339 UTC, wall clock at the worker
    media_time: float | None = None  # seconds on the source's timeline, when it comes from media
    data: EventData | None = None
