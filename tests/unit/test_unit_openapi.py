"""The OpenAPI document against the code and the README, offline: the route table is the app's
url_map, every route the README lists is documented, every error is the one JSON shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.processes import REPO

from api.app import create_app
from api.openapi import build_document, openapi_path
from api.route_table import ROUTES
from api.state_view import StateView
from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags


def _settings(env: dict[str, str] | None = None):
    return load_settings(parse_flags(["--demo"]), env or {})


def _served_routes() -> set[tuple[str, str, str]]:
    """(method, rule, endpoint) of every route the app serves; HEAD and automatic OPTIONS come
    with every GET route and are not routes of their own."""
    app = create_app(_settings(), StateView(), None, Path("unused-runtime-dir"))  # type: ignore[arg-type]
    served = set()
    for rule in app.url_map.iter_rules():
        methods = set(rule.methods or ()) - {"HEAD"}
        if rule.provide_automatic_options:
            methods.discard("OPTIONS")
        served |= {(method, rule.rule, rule.endpoint) for method in methods}
    return served


def test_the_route_table_is_the_url_map():
    assert {(r.method, r.rule, r.endpoint) for r in ROUTES} == _served_routes()


def test_every_route_the_readme_lists_is_documented():
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Endpoints", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"`(GET|POST|DELETE|PATCH|OPTIONS) (/[^`]*)`", table)
    assert len(listed) >= 12
    documented = build_document(_settings())["paths"]
    patterns = {path: re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: "(whep|whip)" if m.group(1) == "kind"
                                              else "[^/]+", path) + "$") for path in documented}
    for method, path in listed:
        for one in path.split(", "):  # "GET /api/sources, /api/sources/<id>"
            one = one if one.startswith("/") else path.split("/")[0] + one
            concrete = re.sub(r"<[^>]+>", "x", one.replace("...", "/api/sources/<id>")).split("?")[0]
            matches = [p for p, rx in patterns.items() if rx.match(concrete) and method.lower() in documented[p]]
            assert matches, f"{method} {one} is in the README but not in the OpenAPI document"


def _opens_without_token(path: str, method: str) -> bool:
    """Health, this document, the pages and preflights; /api/ready answers too, with less."""
    return method == "options" or path in ("/api/health", "/api/openapi.json", "/api/ready") \
        or not path.startswith(("/api/", "/artifacts/", "/metrics"))


def test_errors_are_the_json_error_shape_and_401_comes_with_a_token():
    for env, secured in (({}, False), ({"ICEY_AUTH_TOKEN": "t0ken-abcdef-0123456"}, True)):
        doc = build_document(_settings(env))
        statuses = set()
        for path, operations in doc["paths"].items():
            for method, op in operations.items():
                for status, response in op["responses"].items():
                    statuses.add(int(status))
                    if int(status) >= 400 and (path, status) != ("/api/ready", "503"):  # 503: a readiness report
                        assert response["content"] == {"application/json": {"schema": {
                            "$ref": "#/components/schemas/ErrorBody"}}}, (method, path, status)
                opens = _opens_without_token(path, method)
                assert ("401" in op["responses"]) == (secured and not opens), (method, path)
                optional = {} in op.get("security", [{}])
                assert ("security" in op) == (secured and (not opens or path == "/api/ready")), (method, path)
                assert optional == (not secured or opens), (method, path)
        assert {400, 404, 405, 409, 413, 415, 503, 504} <= statuses
        assert (401 in statuses) == secured
        error = doc["components"]["schemas"]["ErrorBody"]
        assert error["required"] == ["status", "error"] and error["properties"]["status"] == {"enum": ["error"]}


def test_sources_are_the_configured_ones_and_bodies_are_bounded():
    doc = build_document(_settings())
    param = next(p for p in doc["paths"]["/api/sources/{source_id}"]["get"]["parameters"] if p["name"] == "source_id")
    assert param["schema"]["enum"] == ["demo-1", "demo-2", "demo-3"]
    offer = doc["paths"]["/api/sources/{source_id}/{kind}"]["post"]
    assert offer["requestBody"]["content"]["application/sdp"]["schema"]["maxLength"] == 65536
    assert set(offer["responses"]["201"]["headers"]) >= {"Location", "Link"}
    assert offer["responses"]["201"]["headers"]["Location"]["required"] is True
    assert doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"].keys() == {
        "text/plain", "application/openmetrics-text"}


@pytest.mark.parametrize(("rule", "path"), [
    ("/api/sources/<source_id>/<any(whep, whip):kind>/<session_id>", "/api/sources/{source_id}/{kind}/{session_id}"),
    ("/artifacts/<path:rest>", "/artifacts/{rest}"),
    ("/", "/"),
])
def test_rules_become_openapi_paths(rule, path):
    assert openapi_path(rule) == path
