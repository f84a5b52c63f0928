"""The OpenAPI 3.1 document, built from the route table (api/route_table.py) and the msgspec
Structs the routes encode (`msgspec.json.schema_components`, JSON Schema 2020-12), so it says
what the code does. It is built for the running config: the source ids are the `source_id`
values, and the token routes are marked secured only when a token is configured."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from api.route_table import HEADERS, JSON, ROUTES, Body, EventStream, Param, Reply, Route
from api.schemas import ErrorBody
from protocol.config import Settings
from protocol.version import VERSION

REF = "#/components/schemas/{name}"
_CONVERTER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")
TOKEN_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"},
    "header": {"type": "apiKey", "in": "header", "name": "X-Icey-Token"},
    "query": {"type": "apiKey", "in": "query", "name": "token"},
}


def openapi_path(rule: str) -> str:
    """`/api/sources/<source_id>/<any(whep, whip):kind>` -> `/api/sources/{source_id}/{kind}`."""
    return _CONVERTER.sub(lambda m: "{" + m.group(3) + "}", rule)


def _path_params(rule: str, source_ids: list[str]) -> list[dict]:
    params = []
    for converter, args, name in _CONVERTER.findall(rule):
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if converter == "any":
            schema = {"type": "string", "enum": [a.strip() for a in args.split(",")]}
        elif name == "source_id" and source_ids:
            schema = {"type": "string", "enum": source_ids}
        elif converter != "path":
            schema["pattern"] = "^[^/]+$"
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _param(p: Param) -> dict:
    return {"name": p.name, "in": p.where, "required": False, "description": p.description, "schema": p.schema}


class _Schemas:
    """Every Struct the table names, turned into components in one call."""

    def __init__(self) -> None:
        types = [t.data if isinstance(t, EventStream) else t
                 for r in ROUTES for b in _bodies(r) for t in _types(b.schema)]
        structs = {t for t in types if isinstance(t, type) and issubclass(t, msgspec.Struct)}
        self.ordered = sorted(structs, key=lambda t: t.__name__)
        refs, self.components = msgspec.json.schema_components(self.ordered, ref_template=REF)
        self.refs = dict(zip(self.ordered, refs, strict=True))

    def of(self, schema: object) -> dict:
        if isinstance(schema, tuple):
            return {"anyOf": [self.of(s) for s in schema]}
        if schema is str:
            return {"type": "string"}
        if schema is bytes:
            return {}  # any bytes
        if schema is dict:
            return {"type": "object"}
        if isinstance(schema, EventStream):  # before OpenAPI 3.2, the schema of an event stream is one event's
            return {"type": "object", "required": ["event", "data"], "properties": {
                "id": {"type": "string"}, "event": {"enum": list(schema.names)},
                "data": {"type": "string", "contentMediaType": JSON, "contentSchema": self.of(schema.data)}}}
        assert isinstance(schema, type) and issubclass(schema, msgspec.Struct), schema
        return self.refs[schema]


def _types(schema: object) -> tuple[object, ...]:
    return schema if isinstance(schema, tuple) else (schema,)


def _bodies(route: Route) -> list[Body]:
    return [*(b for reply in route.replies.values() for b in reply.bodies), *([route.body] if route.body else [])]


def _response(reply: Reply, schemas: _Schemas) -> dict:
    out: dict[str, Any] = {"description": reply.description}
    if reply.bodies:
        out["content"] = {b.content_type: {"schema": schemas.of(b.schema)} for b in reply.bodies}
    if reply.headers:
        out["headers"] = {h: {"description": HEADERS[h], "required": h in reply.required_headers,
                              "schema": {"type": "string"}} for h in reply.headers}
    return out


def _security(route: Route, settings: Settings) -> list[dict] | None:
    tokens = {"token": settings.auth.token, "probe": settings.auth.token,
              "metrics": settings.auth.token or settings.metrics.token}.get(route.auth, "")
    if not tokens:
        return None
    required: list[dict] = [{name: []} for name in TOKEN_SCHEMES]
    return [{}, *required] if route.auth == "probe" else required


def _operation(route: Route, settings: Settings, schemas: _Schemas) -> dict:
    replies = dict(route.replies)
    security = _security(route, settings)
    if security and route.auth != "probe":
        replies[401] = Reply("No token, or a wrong one.", (Body(JSON, ErrorBody),))
    op: dict[str, Any] = {
        "operationId": f"{route.endpoint.split('.')[-1]}_{route.method.lower()}",
        "summary": route.summary,
        # A preflight (OPTIONS) answers whatever the id: it must not tell which sources exist.
        "parameters": _path_params(route.rule, [s.id for s in settings.sources] if route.method != "OPTIONS" else [])
        + [_param(p) for p in route.params],
        "responses": {str(code): _response(reply, schemas) for code, reply in sorted(replies.items())},
    }
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {route.body.content_type: {
            "schema": {"type": "string", "maxLength": 65536}}}}
    if security is not None:
        op["security"] = security
    return op


def build_document(settings: Settings) -> dict:
    schemas = _Schemas()
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(openapi_path(route.rule), {})[route.method.lower()] = _operation(route, settings, schemas)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "icey-server", "version": VERSION,
                 "description": "Multi-camera WebRTC media server. Every error is "
                                "{\"status\": \"error\", \"error\": \"<code>\", \"detail\": \"<text>\"}."},
        "paths": paths,
        "components": {"schemas": schemas.components},
    }
    if settings.auth.token or settings.metrics.token:
        doc["components"]["securitySchemes"] = TOKEN_SCHEMES
    return doc
