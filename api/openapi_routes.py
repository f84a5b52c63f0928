"""GET /api/openapi.json: the document of this server, built once per process from the route
table and the Structs (api/openapi.py). Open without a token, like /api/health: it holds the
shapes of the API, not its data."""

from __future__ import annotations

from quart import Blueprint, Response, current_app

from api.context import settings
from api.openapi import build_document
from api.responses import json_response

bp = Blueprint("openapi", __name__)
_DOCUMENT = "icey.openapi"


@bp.get("/api/openapi.json")
async def document() -> Response:
    doc = current_app.extensions.get(_DOCUMENT)
    if doc is None:
        doc = current_app.extensions[_DOCUMENT] = build_document(settings())
    return json_response(doc)
