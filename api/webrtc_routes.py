"""WHEP (watch) and WHIP (publish) signalling per source, and the sessions of a source.

The API only forwards: the offer goes over the control channel to the source's worker, which
owns the peer connection. A slow or dead worker answers 503/504 in bounded time.
"""

from __future__ import annotations

from quart import Blueprint, Response, current_app, request

from api.auth import authorized
from api.control_client import ControlClient, WorkerTimeout, WorkerUnavailable
from api.documents import Documents
from api.ice_servers import link_headers
from api.responses import error_response, json_response
from protocol.config import Settings
from protocol.messages import CloseSession, ControlError, ControlRequest, Done, SdpAnswer, WhepOffer, WhipOffer

bp = Blueprint("webrtc", __name__)
OFFER_TIMEOUT_SEC = 10.0  # ICE gathering happens inside; STUN servers can take seconds
_STATUS = {"bad_request": 400, "not_found": 404, "conflict": 409, "busy": 503, "unavailable": 503}
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Icey-Token, If-Match",
        "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Patch"}


def _settings() -> Settings:
    return current_app.config["ICEY_SETTINGS"]


async def _forward(source_id: str, message: ControlRequest, timeout: float = OFFER_TIMEOUT_SEC):
    control: ControlClient = current_app.config["ICEY_CONTROL"]
    try:
        return await control.request(source_id, message, timeout)
    except WorkerUnavailable as exc:
        return error_response(503, "worker_unavailable", str(exc), {"Retry-After": "1", **CORS})
    except WorkerTimeout as exc:
        return error_response(504, "worker_timeout", str(exc), CORS)


def _ice_links() -> list[str]:
    return link_headers(_settings(), current_app.config["ICEY_DOCUMENTS"])


async def _offer(source_id: str, kind: str):
    s = _settings()
    src = s.source(source_id)
    if src is None:
        return error_response(404, "not_found", f"no source with id '{source_id}'", CORS)
    if request.mimetype != "application/sdp":
        return error_response(415, "unsupported_media_type", "the offer must be sent as application/sdp", CORS)
    if kind == "whip" and src.mode == "stream":
        return error_response(409, "conflict", f"source {source_id} is in stream mode; WHIP needs record or relay",
                              CORS)
    body = await request.get_data(as_text=False)
    try:
        sdp = body.decode("utf-8")
    except UnicodeDecodeError:
        return error_response(400, "bad_request", "the offer is not UTF-8 text", CORS)
    offer = (WhepOffer if kind == "whep" else WhipOffer)(sdp=sdp, remote=request.remote_addr or "")
    reply = await _forward(source_id, offer)
    if isinstance(reply, Response):
        return reply
    if isinstance(reply, ControlError):
        return error_response(_STATUS.get(reply.code, 502), reply.code, reply.detail, CORS)
    assert isinstance(reply, SdpAnswer)
    location = f"/api/sources/{source_id}/{kind}/{reply.session_id}"
    headers = {"Location": location, "ETag": f'"{reply.session_id}"', **CORS}
    if authorized(request, s.auth.token):
        headers["Link"] = ", ".join(_ice_links())
    return Response(reply.sdp, status=201, content_type="application/sdp", headers=headers)


async def _close(source_id: str, session_id: str):
    if _settings().source(source_id) is None:
        return error_response(404, "not_found", f"no source with id '{source_id}'", CORS)
    reply = await _forward(source_id, CloseSession(session_id=session_id), timeout=5.0)
    if isinstance(reply, Response):
        return reply
    if isinstance(reply, ControlError):
        return error_response(_STATUS.get(reply.code, 502), reply.code, reply.detail, CORS)
    assert isinstance(reply, Done)
    return json_response({"status": "ok", "id": session_id}, headers=CORS)


def _options(source_id: str) -> Response:
    if _settings().source(source_id) is None:
        return error_response(404, "not_found", f"no source with id '{source_id}'", CORS)
    headers = {"Accept-Post": "application/sdp", "Allow": "POST, OPTIONS", **CORS}
    if authorized(request, _settings().auth.token):  # a CORS preflight carries no token: no credentials
        links = _ice_links()
        if links:
            headers["Link"] = ", ".join(links)
    return Response("", status=204, headers=headers)


@bp.route("/api/sources/<source_id>/<any(whep, whip):kind>", methods=["POST", "OPTIONS"],
          provide_automatic_options=False)
async def offer(source_id: str, kind: str):
    if request.method == "OPTIONS":
        return _options(source_id)
    return await _offer(source_id, kind)


@bp.delete("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>")
async def end_session(source_id: str, kind: str, session_id: str):
    return await _close(source_id, session_id)


@bp.patch("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>")
async def patch_session(source_id: str, kind: str, session_id: str):
    # RFC 9725: a resource without trickle ICE / ICE restart support answers PATCH with 405.
    return error_response(405, "method_not_allowed", "trickle ICE and ICE restarts are not supported; "
                          "send a complete offer", {"Allow": "DELETE", **CORS})


@bp.route("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>", methods=["OPTIONS"],
          provide_automatic_options=False)
async def session_options(source_id: str, kind: str, session_id: str):
    return Response("", status=204, headers={"Allow": "DELETE, PATCH, OPTIONS", **CORS})


@bp.get("/api/sources/<source_id>/sessions")
async def list_sessions(source_id: str):
    src = _settings().source(source_id)
    if src is None:
        return error_response(404, "not_found", f"no source with id '{source_id}'")
    docs: Documents = current_app.config["ICEY_DOCUMENTS"]
    items = docs.sessions(src)
    return json_response({"itemCount": len(items), "items": items})


@bp.delete("/api/sources/<source_id>/sessions/<session_id>")
async def kick_session(source_id: str, session_id: str):
    return await _close(source_id, session_id)
