"""WHEP (watch) and WHIP (publish) signalling per source, and the sessions of a source.

The API only forwards: the offer goes over the control channel to the source's worker, which
owns the peer connection. A slow or dead worker answers 503/504 in bounded time.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from api.auth import authorized
from api.context import ApiError, ask_worker, documents, parts, settings, source_or_404
from api.ice_servers import link_headers
from api.responses import error_response, json_response
from api.session_admission import AdmissionRefused
from protocol.messages import CloseSession, SdpAnswer, WhepOffer, WhipOffer

bp = Blueprint("webrtc", __name__)
OFFER_TIMEOUT_SEC = 10.0  # ICE gathering happens inside; STUN servers can take seconds
CLOSE_TIMEOUT_SEC = 5.0
NO_STORE = {"Cache-Control": "no-store"}  # the Link headers may carry TURN credentials


def _ice_links() -> list[str]:
    return link_headers(settings(), documents())


async def _offer(source_id: str, kind: str):
    src = source_or_404(source_id)
    if request.mimetype != "application/sdp":
        raise ApiError(415, "unsupported_media_type", "the offer must be sent as application/sdp")
    if kind == "whip" and src.mode == "stream":
        raise ApiError(409, "conflict", f"source {source_id} is in stream mode; WHIP needs record or relay")
    body: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
    try:
        sdp = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "the offer is not UTF-8 text") from None
    remote = request.remote_addr or ""
    try:
        admission = parts().admission.admit(remote)
    except AdmissionRefused as exc:
        code = "busy" if exc.status == 503 else "too_many_sessions"
        raise ApiError(exc.status, code, exc.detail, {"Retry-After": "5"}) from None
    offer = (WhepOffer if kind == "whep" else WhipOffer)(sdp=sdp, remote=remote)
    try:
        reply = await ask_worker(source_id, offer, OFFER_TIMEOUT_SEC)
    except BaseException:
        admission.cancel()
        raise
    assert isinstance(reply, SdpAnswer)
    admission.answered(reply.session_id)
    location = f"/api/sources/{source_id}/{kind}/{reply.session_id}"
    headers = {"Location": location, "ETag": f'"{reply.session_id}"', **NO_STORE}
    if authorized(request, settings().auth.token):
        headers["Link"] = ", ".join(_ice_links())
    return Response(reply.sdp, status=201, content_type="application/sdp", headers=headers)


async def _close(source_id: str, session_id: str):
    source_or_404(source_id)
    await ask_worker(source_id, CloseSession(session_id=session_id), CLOSE_TIMEOUT_SEC)
    return json_response({"status": "ok", "id": session_id})


def _options() -> Response:
    """The same answer whatever the id: an unauthenticated OPTIONS must not tell which exist."""
    headers = {"Accept-Post": "application/sdp", "Allow": "POST, OPTIONS", **NO_STORE}
    if authorized(request, settings().auth.token):  # a CORS preflight carries no token: no credentials
        links = _ice_links()
        if links:
            headers["Link"] = ", ".join(links)
    return Response("", status=204, headers=headers)


@bp.route("/api/sources/<source_id>/<any(whep, whip):kind>", methods=["POST", "OPTIONS"],
          provide_automatic_options=False)
async def offer(source_id: str, kind: str):
    if request.method == "OPTIONS":
        return _options()
    return await _offer(source_id, kind)


# No automatic OPTIONS on the session routes: it would answer before session_options does.
@bp.delete("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>", provide_automatic_options=False)
async def end_session(source_id: str, kind: str, session_id: str):
    return await _close(source_id, session_id)


@bp.patch("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>", provide_automatic_options=False)
async def patch_session(source_id: str, kind: str, session_id: str):
    # RFC 9725: a resource without trickle ICE / ICE restart support answers PATCH with 405.
    return error_response(405, "method_not_allowed", "trickle ICE and ICE restarts are not supported; "
                          "send a complete offer", {"Allow": "DELETE"})


@bp.route("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>", methods=["OPTIONS"],
          provide_automatic_options=False)
async def session_options(source_id: str, kind: str, session_id: str):
    return Response("", status=204, headers={"Allow": "DELETE, PATCH, OPTIONS"})


@bp.get("/api/sources/<source_id>/sessions")
async def list_sessions(source_id: str):
    items = documents().sessions(source_or_404(source_id))
    return json_response({"itemCount": len(items), "items": items})


@bp.delete("/api/sources/<source_id>/sessions/<session_id>")
async def kick_session(source_id: str, session_id: str):
    return await _close(source_id, session_id)
