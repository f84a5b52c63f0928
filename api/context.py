"""What every blueprint needs, typed: the app's parts (set once by the app factory) and the
shared request helpers, so a route is its job and nothing else.

`ApiError` is raised by a route or helper and becomes the one JSON error shape in the app's
error handler; `source_or_404` and `ask_worker` are the lookups every per-source route makes,
`ask_supervisor` the way to the process that owns the workers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from quart import current_app

from api.control_client import ControlClient, PeerTimeout, PeerUnavailable
from api.documents import Documents, WorkerView, given_up_detail
from api.event_store import EventStore
from api.session_admission import SessionAdmission
from protocol.config import Settings, SourceSettings
from protocol.messages import ControlError, ControlReply, ControlRequest, SupervisorReply, SupervisorRequest

# What a worker's ControlError code means over HTTP ("internal": the worker failed, the API did not).
CONTROL_STATUS = {"bad_request": 400, "not_found": 404, "conflict": 409, "busy": 503, "unavailable": 503,
                  "internal": 502, "precondition_failed": 412}


@dataclass
class AppParts:
    """`settings` is replaced when the supervisor applies a new config generation (see
    api/live_settings.py); routes read it per request through `settings()`."""

    settings: Settings
    documents: Documents
    control: ControlClient
    events: EventStore
    admission: SessionAdmission
    runtime_dir: Path


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def parts() -> AppParts:
    return current_app.extensions["icey"]


def settings() -> Settings:
    return parts().settings


def documents() -> Documents:
    return parts().documents


def source_or_404(source_id: str) -> SourceSettings:
    src = parts().settings.source(source_id)
    if src is None:
        raise ApiError(404, "not_found", f"no source with id '{source_id}'")
    return src


def _worker(src: SourceSettings) -> WorkerView:
    docs = documents()
    return docs.source_item(src, docs.now()).worker


def _given_up(src: SourceSettings) -> ApiError | None:
    """A given-up worker stays down until its slow retry or a restart request: 503 without
    `Retry-After`, since a client told to come back in a second would find it down again."""
    worker = _worker(src)
    if worker.state != "given-up":
        return None
    detail = given_up_detail(src.id, worker.last_exit_code, worker.next_restart_in_ms)
    return ApiError(503, "worker_unavailable", f"source {src.id}: {detail}")


def _retry_after(src: SourceSettings) -> str:
    """Seconds until a restarting worker starts again, at least 1."""
    worker = _worker(src)
    if worker.state != "restarting" or worker.next_restart_in_ms is None:
        return "1"
    return str(max(1, math.ceil(worker.next_restart_in_ms / 1000)))


async def ask_worker(source_id: str, request: ControlRequest, timeout: float) -> ControlReply:
    """The worker's reply; a worker that is gone, slow or refusing becomes the matching ApiError."""
    src = source_or_404(source_id)
    if (given_up := _given_up(src)) is not None:
        raise given_up  # at once: nobody is there to take the request
    try:
        reply = await parts().control.request(source_id, request, timeout)
    except PeerUnavailable as exc:
        raise _given_up(src) or ApiError(503, "worker_unavailable", str(exc),
                                         {"Retry-After": _retry_after(src)}) from None
    except PeerTimeout as exc:
        raise ApiError(504, "worker_timeout", str(exc)) from None
    if isinstance(reply, ControlError):
        raise ApiError(CONTROL_STATUS.get(reply.code, 502), reply.code, reply.detail)
    return reply


async def ask_supervisor(request: SupervisorRequest, timeout: float) -> SupervisorReply:
    """The supervisor's reply; an absent or slow supervisor, or a refusal, becomes an ApiError."""
    try:
        reply = await parts().control.ask_supervisor(request, timeout)
    except PeerUnavailable as exc:
        raise ApiError(503, "supervisor_unavailable", str(exc), {"Retry-After": "1"}) from None
    except PeerTimeout as exc:
        raise ApiError(504, "supervisor_timeout", str(exc)) from None
    if reply.error is not None:
        raise ApiError(CONTROL_STATUS.get(reply.error, 502), reply.error, reply.detail)
    return reply
