"""JSON responses and the one error shape `{"status":"error","error":code,"detail":text}`."""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Response

_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(body), status=status, content_type="application/json", headers=headers)


def error_response(status: int, code: str, detail: str = "", headers: dict[str, str] | None = None) -> Response:
    body = {"status": "error", "error": code}
    if detail:
        body["detail"] = detail
    return json_response(body, status, headers)
