"""The four operator endpoints: health, ready, status, config."""

from __future__ import annotations

from quart import Blueprint, request

from api.auth import authorized
from api.context import documents, settings, source_or_404
from api.ice_servers import ice_servers, public_host, relay_credentials
from api.responses import json_response
from protocol.version import PRODUCT, SERVICE, VERSION

bp = Blueprint("operator", __name__)
_HEALTH = {"status": "ok", "product": PRODUCT, "service": SERVICE, "version": VERSION}


@bp.get("/api/health")
async def health():
    return json_response(_HEALTH)


@bp.get("/api/ready")
async def ready():
    """The box's readiness, or with `?source=<id>` that one source's (so a probe can watch the
    camera it cares about)."""
    docs = documents()
    source_id = request.args.get("source")
    only = source_or_404(source_id) if source_id is not None else None
    doc, _ = docs.readiness(docs.now(), only)
    code = 200 if doc.ready else 503
    if not authorized(request, settings().auth.token):
        # A readiness probe carries no token: it still gets the right code, but no details.
        return json_response({"status": doc.status, "ready": doc.ready}, code)
    return json_response(doc, code)


@bp.get("/api/status")
async def status():
    docs = documents()
    return json_response(docs.status(docs.now()))


@bp.get("/api/config")
async def config():
    """`turn.enabled` says whether a relay is there now; only then does the block carry credentials."""
    s = settings()
    credentials = relay_credentials(s, documents())
    turn: dict = {"enabled": credentials is not None, "host": public_host(s), "port": s.turn.port}
    if credentials is not None:
        turn["username"], turn["credential"] = credentials
    return json_response({
        "status": "ok", "mode": s.mode, "product": PRODUCT, "service": SERVICE, "version": VERSION,
        "http": {"host": s.http.host, "scheme": "https" if s.tls.cert else "http", "tls": bool(s.tls.cert)},
        "turn": turn,
        "stun": {"urls": list(s.stun.urls)},
        "iceServers": ice_servers(s, credentials),
        "sources": [{"id": src.id, "mode": src.mode} for src in s.sources],
    }, headers={"Cache-Control": "no-store"})
