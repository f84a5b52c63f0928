"""The readiness rule (protocol.readiness) that /api/ready and --doctor share."""

from __future__ import annotations

import pytest

from protocol.messages import Check
from protocol.readiness import is_ready, overall

SERVICE = [Check("config", "pass", ""), Check("ffmpeg", "pass", ""), Check("web_root", "warn", "headless"),
           Check("ipc", "pass", "")]


def sources(**results: str) -> list[Check]:
    return [Check(f"source:{source_id}", result, "") for source_id, result in results.items()]


@pytest.mark.parametrize(("require", "ready"), [
    ("any", True), ("all", False), (["a"], True), (["a", "c"], True), (["b"], False), (["a", "b"], False),
])
def test_required_sources_must_pass(require, ready):
    checks = SERVICE + sources(a="pass", b="fail", c="pass")
    assert is_ready(checks, require) is ready


def test_any_needs_one_source_online_not_merely_retrying():
    assert is_ready(SERVICE + sources(a="warn", b="fail"), "any") is False
    assert is_ready(SERVICE + sources(a="warn", b="pass"), "any") is True


def test_a_failing_service_check_is_never_ready():
    checks = [*SERVICE, Check("tls", "fail", "certificate not found"), *sources(a="pass")]
    for require in ("any", "all", ["a"]):
        assert is_ready(checks, require) is False


def test_without_source_checks_the_service_checks_decide():
    assert is_ready(SERVICE, "any") is True
    assert is_ready([*SERVICE, Check("source", "fail", "stream mode requires --source")], "any") is False


def test_a_failing_camera_on_a_ready_box_is_degraded_not_error():
    assert overall(SERVICE[:2] + sources(a="pass", b="fail"), [], "any") == (True, "degraded")
    assert overall(SERVICE[:2] + sources(a="pass", b="fail"), [], "all") == (False, "error")
    assert overall(SERVICE[:2] + sources(a="pass"), [], "any") == (True, "ok")
    assert overall(SERVICE[:2] + sources(a="pass"), ["TURN is disabled"], "any") == (True, "degraded")
