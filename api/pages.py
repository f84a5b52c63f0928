"""The minimal viewer pages: `/` lists the sources, `/watch/<id>` plays one over WHEP,
`/publish/<id>` sends the browser's camera and microphone over WHIP (record and relay sources).

The pages hold no data and are served without a token; their scripts read `?token=` from the
page address and send it as `Authorization: Bearer` on every API call. The HTML, CSS and JS live
in `api/static/` (package data) and are served from `/ui/<name>`.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, current_app, request

from api.auth import authorized
from api.context import settings, source_or_404
from api.responses import error_response

bp = Blueprint("pages", __name__)
STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
ASSETS = ("common.js", "index.js", "watch.js", "publish.js", "style.css")  # what /ui/<name> serves; nothing else
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page address may carry ?token=
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
}


def _file(name: str) -> Response:
    path = STATIC / name
    try:
        body = path.read_bytes()
    except OSError:
        current_app.logger.error("viewer page asset missing: %s", path)
        return error_response(500, "internal", f"page asset {name} is missing from the installation")
    return Response(body, status=200, content_type=_TYPES[path.suffix], headers=_HEADERS)


def _page_for_source(name: str, source_id: str) -> Response:
    """Without the token the page is served whatever the id, so it tells nobody which ids exist;
    the page then shows the 401 it gets from the API."""
    if authorized(request, settings().auth.token):
        source_or_404(source_id)
    return _file(name)


@bp.get("/")
async def index():
    return _file("index.html")


@bp.get("/watch/<source_id>")
async def watch(source_id: str):
    return _page_for_source("watch.html", source_id)


@bp.get("/publish/<source_id>")
async def publish(source_id: str):
    return _page_for_source("publish.html", source_id)


@bp.get("/ui/<name>")
async def asset(name: str):
    if name not in ASSETS:
        return error_response(404, "not_found", f"no page asset '{name}'")
    return _file(name)
