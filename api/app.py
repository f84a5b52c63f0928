"""The Quart app factories: the API (one blueprint per domain, auth and JSON errors around them)
and the metrics listener's (`metrics.port`: /metrics alone, with the same Host check and errors)."""

from __future__ import annotations

from pathlib import Path

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from api import (
    artifact_routes,
    config_routes,
    cors,
    event_routes,
    live_settings,
    local_writes,
    metrics_routes,
    openapi_routes,
    operator_routes,
    pages,
    snapshot_routes,
    source_routes,
    webrtc_routes,
)
from api.auth import OPEN_PATHS, authorized
from api.body_limit import BodyLimit
from api.context import ApiError, AppParts
from api.control_client import ControlClient
from api.documents import Documents
from api.host_check import allowed_names, host_allowed
from api.responses import error_response
from api.session_admission import SessionAdmission
from api.state_view import StateView
from protocol.config import Settings
from protocol.messages import MAX_SDP_BYTES

BODY_TIMEOUT_SEC = 10  # a request body (an SDP offer: 64 KB at most) that takes longer is cut off
METRICS_MAX_BODY = 1024  # /metrics takes no body: anything longer is refused before it is read
_ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                415: "unsupported_media_type"}


def create_app(settings: Settings, view: StateView, control: ControlClient, runtime_dir: Path) -> Quart:
    # No static folder: Quart's default serves <cwd>/static at /static/<path>, without a token.
    app = Quart("icey-api", static_folder=None)
    parts = AppParts(settings, Documents(settings, view), control, view.events,
                     SessionAdmission(settings.webrtc, view), runtime_dir)
    app.extensions["icey"] = parts
    view.on_config_generation = lambda: live_settings.refresh(parts)
    app.config.update(MAX_CONTENT_LENGTH=MAX_SDP_BYTES, BODY_TIMEOUT=BODY_TIMEOUT_SEC)  # the largest body: an offer
    app.asgi_app = BodyLimit(app.asgi_app, MAX_SDP_BYTES)  # type: ignore[method-assign]
    app.register_blueprint(operator_routes.bp)
    app.register_blueprint(source_routes.bp)
    app.register_blueprint(event_routes.bp)
    app.register_blueprint(webrtc_routes.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(artifact_routes.bp)
    app.register_blueprint(metrics_routes.bp)
    app.register_blueprint(openapi_routes.bp)
    app.register_blueprint(snapshot_routes.bp)
    app.register_blueprint(config_routes.bp)

    _host_check_and_errors(app, settings)
    origins = cors.normalized(settings.auth.allowed_origins)

    @app.before_request
    async def require_token():
        path = request.path
        if not path.startswith(("/api/", "/artifacts/")) or path in OPEN_PATHS or path == "/api/ready":
            return None  # /api/ready answers probes without a token (with a minimal body)
        if request.method == "OPTIONS":
            return None  # CORS preflights carry no token; they get no credentials either
        if not authorized(request, settings.auth.token):
            return error_response(401, "unauthorized")
        return None

    @app.before_request
    async def local_writes_only_without_token():
        if local_writes.refused(request, settings.auth.token):
            return error_response(403, "forbidden", local_writes.DETAIL)
        return None

    @app.after_request
    async def cors_headers(response: Response) -> Response:
        cors.add_headers(response, request.headers.get("Origin"), origins)
        return response

    return app


def create_metrics_app(parts: AppParts) -> Quart:
    """Served on `metrics.port`: /metrics (its own token rule, metrics_routes.py) and nothing else,
    so a scraper on that port reaches no API route, page or file. `parts` are the API app's: the
    same merged state, and the same settings as config generations replace them."""
    app = Quart("icey-metrics", static_folder=None)
    app.extensions["icey"] = parts
    app.config.update(MAX_CONTENT_LENGTH=METRICS_MAX_BODY, BODY_TIMEOUT=BODY_TIMEOUT_SEC)
    app.asgi_app = BodyLimit(app.asgi_app, METRICS_MAX_BODY)  # type: ignore[method-assign]
    app.register_blueprint(metrics_routes.bp)
    _host_check_and_errors(app, parts.settings)
    return app


def _host_check_and_errors(app: Quart, settings: Settings) -> None:
    """The Host check (421) and the one JSON error shape, on every app that listens."""
    names = allowed_names(settings)

    @app.before_request
    async def check_host():
        if not host_allowed(request.host, names):
            return error_response(421, "misdirected_request", f"Host {request.host!r} is not a name of this "
                                  "server; add it to http.allowedHosts")
        return None

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException):
        code = exc.code or 500
        allowed = getattr(exc, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return error_response(code, _ERROR_CODES.get(code, "error"), exc.description or "", headers)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the server log")
