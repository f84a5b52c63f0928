"""What every blueprint needs, typed: the app's parts (set once by the app factory) and the
shared request helpers, so a route is its job and nothing else.

`ApiError` is raised by a route or helper and becomes the one JSON error shape in the app's
error handler; `source_or_404` and `ask_worker` are the lookups every per-source route makes."""

from __future__ import annotations

from dataclasses import dataclass

from quart import current_app

from api.control_client import ControlClient, WorkerTimeout, WorkerUnavailable
from api.documents import Documents
from api.event_store import EventStore
from api.session_admission import SessionAdmission
from protocol.config import Settings, SourceSettings
from protocol.messages import ControlError, ControlReply, ControlRequest

# What a worker's ControlError code means over HTTP.
CONTROL_STATUS = {"bad_request": 400, "not_found": 404, "conflict": 409, "busy": 503, "unavailable": 503}


@dataclass(frozen=True)
class AppParts:
    settings: Settings
    documents: Documents
    control: ControlClient
    events: EventStore
    admission: SessionAdmission


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


async def ask_worker(source_id: str, request: ControlRequest, timeout: float) -> ControlReply:
    """The worker's reply; a worker that is gone, slow or refusing becomes the matching ApiError."""
    try:
        reply = await parts().control.request(source_id, request, timeout)
    except WorkerUnavailable as exc:
        raise ApiError(503, "worker_unavailable", str(exc), {"Retry-After": "1"}) from None
    except WorkerTimeout as exc:
        raise ApiError(504, "worker_timeout", str(exc)) from None
    if isinstance(reply, ControlError):
        raise ApiError(CONTROL_STATUS.get(reply.code, 502), reply.code, reply.detail)
    return reply
