"""The pages as HTTP resources (no browser): what is served where, and the Content-Security-Policy that
lets the wall reach the ?box= servers it is asked to merge and nothing else."""

from __future__ import annotations

import pytest
from support.processes import wait_for

TOKEN = "pages-token-0123456789"


@pytest.fixture
def server(icey):
    srv = icey(["--demo", "--no-turn"], env={"ICEY_AUTH_TOKEN": TOKEN})
    wait_for(lambda: srv.get("/api/health").status == 200, 10, what="health")
    return srv


def csp(response) -> dict[str, str]:
    return {d.split()[0]: d.strip() for d in response.headers["content-security-policy"].split(";") if d.strip()}


def test_pages_and_assets(server):
    for path in ("/", "/sources/demo-1", "/sources/anything", "/watch/demo-1", "/publish/demo-1"):
        r = server.get(path)  # no token needed for a page, and no answer about which ids exist
        assert r.status == 200 and r.headers["content-type"] == "text/html; charset=utf-8", path
        assert "script-src" not in r.headers["content-security-policy"]  # default-src 'self': no inline script
    assert server.get(f"/sources/nope?token={TOKEN}").status == 404
    assert server.get(f"/sources/demo-1?token={TOKEN}").status == 200
    for name in ("wall.js", "wall_tile.js", "source.js", "common.js", "wall.css", "source.css", "style.css"):
        r = server.get(f"/ui/{name}")
        assert r.status == 200 and r.headers["cache-control"] == "no-cache", name
    assert server.get("/ui/index.js").status == 404  # the old list page is gone


def test_the_wall_may_reach_its_boxes_only(server):
    policy = csp(server.get("/"))
    assert policy["connect-src"] == "connect-src 'self'"
    assert "blob:" in policy["img-src"]  # stills are fetched with the token in a header, shown as blob: URLs
    policy = csp(server.get("/?box=https://other.example:4500&box=http://10.0.0.7:4500/&box=javascript:alert(1)"
                            "&box=https://x.example/path&box=https://[fd00::1]:4500"))
    assert policy["connect-src"] == ("connect-src 'self' https://other.example:4500 http://10.0.0.7:4500 "
                                     "https://[fd00::1]:4500")
