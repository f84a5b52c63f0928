"""protocol.demo_url: the whitelist a demo URL must pass before it becomes a lavfi graph."""

from __future__ import annotations

import pytest

from protocol.demo_url import PATTERNS, DemoParams, DemoUrlError, parse_demo_url


def test_defaults_and_every_parameter():
    assert parse_demo_url("demo://") == DemoParams("testsrc2", 640, 360, 25, 440, 25, 3.0, 8.0, None)
    params = parse_demo_url("demo://square?size=320x180&rate=10&tone=300&gop=20&move=1.5&period=4&burst=0.5,2")
    assert params == DemoParams("square", 320, 180, 10, 300, 20, 1.5, 4.0, (0.5, 2.0))
    assert params.size == "320x180"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_whitelisted_pattern_parses(pattern):
    assert parse_demo_url(f"demo://{pattern}?size=160x90").pattern == pattern


@pytest.mark.parametrize("url", [
    "demo://movie=/etc/passwd", "demo://testsrc2/etc/passwd", "demo://testsrc2#x", "demo://testsrc2;movie=x",
    "demo://testsrc2?size=160x90&size=320x180", "demo://testsrc2?size", "demo://testsrc2?rate=-1",
    "demo://testsrc2?move=inf", "demo://testsrc2?burst=1,0", "demo://testsrc2?size=16x4322",
])
def test_anything_else_is_refused(url):
    with pytest.raises(DemoUrlError):
        parse_demo_url(url)


def test_a_refused_pattern_is_named_without_its_userinfo():
    with pytest.raises(DemoUrlError) as err:
        parse_demo_url("demo://admin:hunter2@movie")
    assert "hunter2" not in str(err.value) and "'movie'" in str(err.value)
