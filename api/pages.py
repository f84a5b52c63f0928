"""The operator's pages: `/` is the camera wall, `/sources/<id>` one source in full, `/watch/<id>`
plays one over WHEP, `/publish/<id>` sends the browser's camera and microphone over WHIP (record
and relay sources).

The pages hold no data and are served without a token; their scripts ask for it once (or take
`?token=` from the page address), keep it in sessionStorage and send it as `Authorization: Bearer`
on every API call. The HTML, CSS and JS live in `api/static/` (package data) and are served from
`/ui/<name>`.
"""

from __future__ import annotations

import re
from pathlib import Path

from quart import Blueprint, Response, current_app, request

from api.auth import authorized
from api.context import settings, source_or_404
from api.responses import error_response

bp = Blueprint("pages", __name__)
STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
# what /ui/<name> serves; nothing else
ASSETS = ("common.js", "wall.js", "wall_tile.js", "source.js", "watch.js", "publish.js", "style.css", "wall.css",
          "source.css")
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page address may carry ?token=
}
# Stills arrive as blob: URLs (fetched with the token in a header); no inline script anywhere.
_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'{boxes}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def box_origins() -> list[str]:
    """The wall's `?box=` origins (other icey servers it merges), which its scripts may call."""
    found = []
    for raw in request.args.getlist("box"):
        origin = raw.strip().rstrip("/")
        if _ORIGIN.match(origin) and origin not in found:
            found.append(origin)
    return found


def _file(name: str, connect: list[str] | None = None) -> Response:
    path = STATIC / name
    try:
        body = path.read_bytes()
    except OSError:
        current_app.logger.error("viewer page asset missing: %s", path)
        return error_response(500, "internal", f"page asset {name} is missing from the installation")
    headers = dict(_HEADERS)
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = _CSP.format(boxes="".join(" " + o for o in connect or []))
    return Response(body, status=200, content_type=_TYPES[path.suffix], headers=headers)


def _page_for_source(name: str, source_id: str) -> Response:
    """Without the token the page is served whatever the id, so it tells nobody which ids exist;
    the page then shows the 401 it gets from the API."""
    if authorized(request, settings().auth.token):
        source_or_404(source_id)
    return _file(name)


@bp.get("/")
async def wall():
    return _file("index.html", box_origins())


@bp.get("/sources/<source_id>")
async def source_page(source_id: str):
    return _page_for_source("source.html", source_id)


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
