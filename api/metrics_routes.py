"""GET /metrics: Prometheus text, or OpenMetrics when the scraper asks for it in `Accept`.

Open when no token is configured; otherwise `auth.token` or `metrics.token` (a scraper's own
token, which opens nothing else), in any of the forms /api/ accepts."""

from __future__ import annotations

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.registry import CollectorRegistry
from quart import Blueprint, Response, current_app, request

from api.auth import authorized
from api.context import documents, settings
from api.metrics import metrics_registry
from api.responses import error_response

bp = Blueprint("metrics", __name__)
_REGISTRY = "icey.metrics"


def _registry() -> CollectorRegistry:
    registry = current_app.extensions.get(_REGISTRY)
    if registry is None:
        registry = current_app.extensions[_REGISTRY] = metrics_registry(documents())
    return registry


def _allowed() -> bool:
    tokens = [t for t in (settings().auth.token, settings().metrics.token) if t]
    return not tokens or any(authorized(request, t) for t in tokens)


@bp.get("/metrics")
async def metrics():
    if not _allowed():
        return error_response(401, "unauthorized")
    try:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    except (ValueError, TypeError):  # a malformed version (TypeError in the library): the format all scrapers read
        encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
    return Response(encode(_registry()), status=200, content_type=content_type,
                    headers={"Cache-Control": "no-store"})
