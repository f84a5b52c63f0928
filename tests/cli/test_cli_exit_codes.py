"""The real `icey-server` CLI as a subprocess: exit codes and messages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import run_cli, stderr_lines
from support.processes import free_port

from protocol.version import VERSION

STATIC_CHECKS = ["config", "ffmpeg", "web_root", "ports", "tls", "turn", "intelligence"]
TURN_SECRET = {"ICEY_TURN_SECRET": "turn-secret-0123456789"}  # TURN only runs (and binds) with a secret


def doctor_json(result: subprocess.CompletedProcess[str]) -> dict:
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def check(report: dict, name: str) -> dict:
    matches = [c for c in report["checks"] if c["name"] == name]
    assert len(matches) == 1, report["checks"]
    return matches[0]


# -- 0: help / version ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--bogus", "--help"]])
def test_help_exits_0_with_usage_on_stdout(tmp_path, args):
    result = run_cli(tmp_path, *args)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: icey-server")
    assert "--source" in result.stdout and "Exit codes" in result.stdout
    assert "Error" not in result.stderr


def test_version_exits_0(tmp_path):
    result = run_cli(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"icey-server {VERSION}"


def test_console_script_matches_module(tmp_path):
    script = Path(sys.executable).parent / "icey-server"
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    result = subprocess.run([str(script), "--version"], cwd=tmp_path, env=clean, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == f"icey-server {VERSION}"


# -- 2: usage errors --------------------------------------------------------------------------


def test_unknown_argument_exits_2(tmp_path):
    result = run_cli(tmp_path, "--bogus")
    assert result.returncode == 2
    assert stderr_lines(result)[0] == "Error: unknown argument '--bogus'"
    assert "Usage: icey-server" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "abc"], "Error: invalid port 'abc'. Expected 1..65535."),
    (["--turn-port", "70000"], "Error: invalid turn port '70000'. Expected 1..65535."),
    (["--port"], "Error: flag '--port' requires a value"),
    (["--port", "--demo"], "Error: flag '--port' requires a value"),
    (["--mode", "Stream"], "Error: invalid mode 'Stream'. Expected stream, record, or relay."),
    (["--log-level", "loud"], "Error: invalid log level 'loud'. Expected trace, debug, info, warn, or error."),
])
def test_bad_flags_exit_2(tmp_path, args, message):
    result = run_cli(tmp_path, *args, "--doctor")
    assert result.returncode == 2
    assert stderr_lines(result)[0] == message
    assert result.stdout == ""


@pytest.mark.parametrize(("env", "message"), [
    ({"ICEY_MODE": "bad"}, "Error: invalid ICEY_MODE 'bad'. Expected stream, record, or relay."),
    ({"ICEY_PORT": "abc"}, "Error: invalid ICEY_PORT 'abc'. Expected 1..65535."),
    ({"ICEY_LOOP": "maybe"}, "Error: invalid ICEY_LOOP 'maybe'. Expected true, false, or auto."),
    ({"ICEY_LOG_LEVEL": "loud"},
     "Error: invalid ICEY_LOG_LEVEL 'loud'. Expected trace, debug, info, warn, or error."),
])
def test_bad_env_exits_2(tmp_path, env, message):
    result = run_cli(tmp_path, "--demo", "--doctor", env=env)
    assert result.returncode == 2
    assert stderr_lines(result)[0] == message


# -- 3: config errors -------------------------------------------------------------------------


def test_missing_explicit_config_exits_3(tmp_path):
    result = run_cli(tmp_path, "-c", "missing.json", "--demo")
    assert result.returncode == 3
    assert "config file not found" in result.stderr
    assert "missing.json" in result.stderr


def test_missing_config_from_env_exits_3_even_with_doctor(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--demo", env={"ICEY_CONFIG": "nope.json"})
    assert result.returncode == 3
    assert "config file not found: nope.json" in result.stderr


@pytest.mark.parametrize(("content", "key"), [
    ('{"http": {"port": "4500"}}', "http.port"),
    ('{"http": {"port": 70000}}', "http.port"),
    ('{"media": {"mode": "bogus"}}', "media.mode"),
    ('{"sources": [{"id": "bad id!", "source": "rtsp://h/x"}]}', "sources[0].id"),
    ('{"ready": {"requireSources": ["demo-1", "nope"]}}', "ready.requireSources[1]"),
    ('{"ready": {"requireSources": "most"}}', "ready.requireSources"),
    ('{\n  "http": {\n    "port": 4500,\n  }\n}\n', "line 4"),
])
def test_invalid_config_exits_3_with_one_line(tmp_path, content, key):
    (tmp_path / "bad.json").write_text(content)
    result = run_cli(tmp_path, "-c", "bad.json", "--demo", "--no-turn", "--port", str(free_port()))
    assert result.returncode == 3
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: invalid config file 'bad.json': ")
    assert key in lines[0]


def test_invalid_implicit_config_json_exits_3(tmp_path):
    (tmp_path / "config.json").write_text('{"turn": {"port": 0}}')
    result = run_cli(tmp_path, "--demo", "--no-turn", "--port", str(free_port()))
    assert result.returncode == 3
    assert "invalid turn.port 0: expected 1..65535" in result.stderr


PER_SOURCE_TYPE_ERROR = json.dumps(
    {"sources": [{"id": "a", "source": "rtsp://h/x", "intelligence": {"vision": {"enabled": "yes"}}}]})


def test_per_source_override_type_error_uses_the_invalid_config_message(tmp_path):
    (tmp_path / "bad.json").write_text(PER_SOURCE_TYPE_ERROR)
    result = run_cli(tmp_path, "-c", "bad.json", "--no-turn", "--port", str(free_port()))
    assert result.returncode == 3
    assert stderr_lines(result) == [stderr_lines(result)[0]]
    assert stderr_lines(result)[0].startswith("Error: invalid config file 'bad.json': ")


def test_doctor_with_per_source_override_type_error_reports_it(tmp_path):
    (tmp_path / "bad.json").write_text(PER_SOURCE_TYPE_ERROR)
    result = run_cli(tmp_path, "-c", "bad.json", "--doctor")
    assert result.returncode == 1
    assert check(doctor_json(result), "config")["result"] == "fail"


# -- doctor -----------------------------------------------------------------------------------


def test_doctor_with_invalid_config_exits_1_with_failed_config_check(tmp_path):
    (tmp_path / "bad.json").write_text('{"http": {"port": 70000}}')
    result = run_cli(tmp_path, "-c", "bad.json", "--doctor", "--demo", "--no-turn")
    assert result.returncode == 1
    report = doctor_json(result)
    assert report["ready"] is False
    assert report["status"] == "error"
    config = check(report, "config")
    assert config["result"] == "fail"
    assert "http.port" in config["detail"]
    assert report["config"]["valid"] is False
    assert "http.port" in report["config"]["error"]


def test_doctor_demo_is_ready_with_checks_in_order(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--demo", "--no-turn")
    assert result.returncode == 0, result.stderr
    report = doctor_json(result)
    names = [c["name"] for c in report["checks"]]
    assert names == [*STATIC_CHECKS, "source:demo-1", "source:demo-2", "source:demo-3"]
    assert report["ready"] is True
    assert report["status"] in ("ok", "degraded")
    assert all(c["result"] in ("pass", "warn") for c in report["checks"])
    assert report["service"] == "icey-server"
    assert report["version"] == VERSION
    assert report["config"]["exists"] is False
    assert result.stdout.startswith("{\n  ")  # 2-space indent


def test_doctor_with_turn_on_and_no_secret_is_degraded(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--demo", "--port", "4500", "--turn-port", "3478")
    assert result.returncode == 0, result.stderr
    report = doctor_json(result)
    assert report["status"] == "degraded"
    assert any("turn.secret is not set" in w for w in report["warnings"])
    assert check(report, "turn")["result"] == "warn"


def test_doctor_same_http_and_turn_port_fails(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--demo", "--port", "5000", "--turn-port", "5000", env=TURN_SECRET)
    assert result.returncode == 1
    assert check(doctor_json(result), "ports")["result"] == "fail"


def test_doctor_missing_local_source_exits_1(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--no-turn", "--source", "/nonexistent.mp4")
    assert result.returncode == 1
    report = doctor_json(result)
    sources = [c for c in report["checks"] if c["name"].startswith("source:")]
    assert len(sources) == 1
    assert sources[0]["result"] == "fail"
    assert "nonexistent.mp4" in sources[0]["detail"]
    assert report["ready"] is False


def test_doctor_follows_require_sources(tmp_path):
    args = ("--doctor", "--no-turn", "--source", "gone=/nonexistent.mp4", "--source", "pattern=demo://testsrc2")
    result = run_cli(tmp_path, *args)
    assert result.returncode == 0, result.stdout  # "any": the test pattern can serve
    assert doctor_json(result)["status"] == "degraded"
    (tmp_path / "all.json").write_text('{"ready": {"requireSources": "all"}}')
    result = run_cli(tmp_path, "-c", "all.json", *args)
    assert result.returncode == 1
    assert doctor_json(result)["status"] == "error"


def test_doctor_existing_local_source_passes(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 16)
    result = run_cli(tmp_path, "--doctor", "--no-turn", "--source", "cam=clip.mp4")
    assert result.returncode == 0, result.stdout
    assert check(doctor_json(result), "source:cam")["result"] == "pass"


def test_doctor_never_shows_the_camera_password(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--no-turn", "--source", "rtsp://user:hunter2@127.0.0.1:1/x")
    assert result.returncode in (0, 1)
    doctor_json(result)
    assert "hunter2" not in result.stdout
    assert "hunter2" not in result.stderr
    assert "127.0.0.1:1/x" in result.stdout


def test_doctor_never_shows_secrets_from_env(tmp_path):
    env = {"ICEY_AUTH_TOKEN": "tok-very-secret-1", "ICEY_TURN_SECRET": "turn-very-secret-2"}
    result = run_cli(tmp_path, "--doctor", "--demo", env=env)
    doctor_json(result)
    for secret in env.values():
        assert secret not in result.stdout
        assert secret not in result.stderr


# -- 4: preflight / bind ----------------------------------------------------------------------


def test_http_port_in_use_exits_4(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli(tmp_path, "--host", "127.0.0.1", "--port", str(port), "--no-turn", "--demo")
    assert result.returncode == 4
    assert "cannot bind HTTP/WS port" in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr


def test_metrics_port_in_use_exits_4(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli(tmp_path, "--host", "127.0.0.1", "--port", str(free_port()), "--metrics-port", str(port),
                         "--no-turn", "--demo")
    assert result.returncode == 4
    assert f"cannot bind metrics port on 127.0.0.1:{port}" in result.stderr
    assert "--metrics-port" in result.stderr


def test_metrics_port_on_the_http_port_exits_3(tmp_path):
    port = str(free_port())
    result = run_cli(tmp_path, "--host", "127.0.0.1", "--port", port, "--no-turn", "--demo",
                     env={"ICEY_METRICS_PORT": port})
    assert result.returncode == 3
    assert f"invalid metrics.port {port}" in result.stderr


def test_turn_udp_port_in_use_exits_4(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        turn_port = busy.getsockname()[1]
        http_port = free_port()
        result = run_cli(tmp_path, "--host", "127.0.0.1", "--port", str(http_port), "--turn-port", str(turn_port),
                         "--demo", env=TURN_SECRET)
    assert result.returncode == 4
    assert "cannot bind TURN" in result.stderr
    assert str(turn_port) in result.stderr


def test_turn_tcp_port_in_use_exits_4(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        turn_port = busy.getsockname()[1]
        result = run_cli(tmp_path, "--host", "127.0.0.1", "--port", str(free_port()), "--turn-port",
                         str(turn_port), "--demo", env=TURN_SECRET)
    assert result.returncode == 4
    assert "cannot bind TURN port" in result.stderr


def test_missing_tls_files_exit_4(tmp_path):
    result = run_cli(tmp_path, "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem",
                     "--demo", "--no-turn", "--host", "127.0.0.1", "--port", str(free_port()))
    assert result.returncode == 4
    assert "preflight failed" in result.stderr
    assert "tls:" in result.stderr
    assert "Run 'icey-server --doctor'" in result.stderr


def test_only_one_tls_file_exits_4(tmp_path):
    result = run_cli(tmp_path, "--tls-cert", "/nonexistent/cert.pem", "--demo", "--no-turn", "--host",
                     "127.0.0.1", "--port", str(free_port()))
    assert result.returncode == 4
    assert "Direct TLS requires both tls.cert and tls.key" in result.stderr


def test_no_source_at_all_exits_4(tmp_path):
    result = run_cli(tmp_path, "--no-turn", "--host", "127.0.0.1", "--port", str(free_port()))
    assert result.returncode == 4
    assert "preflight failed" in result.stderr
    assert "stream mode requires --source" in result.stderr


def test_invalid_listen_address_exits_4(tmp_path):
    result = run_cli(tmp_path, "--host", "999.1.1.1", "--no-turn", "--demo", "--port", str(free_port()))
    assert result.returncode == 4
    assert "invalid HTTP/WS listen address" in result.stderr
    assert "999.1.1.1" in result.stderr


def test_check_config_validates_without_starting(tmp_path: Path):
    port = free_port()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"http": {"port": port}, "sources": [{"id": "cam", "source": "demo://testsrc2"}]}))
    ok = run_cli(tmp_path, "--check-config", "-c", str(good))
    assert ok.returncode == 0 and "Config OK" in ok.stdout and "1 source(s)" in ok.stdout, ok.stderr
    with socket.socket() as s:  # nothing was started: the port is still free
        s.bind(("127.0.0.1", port))
    for text, reason in (('{"sources": [{"id": "a"}, {"id": "a"}]}', "duplicate sources[1].id 'a'"),
                         ('{"http": {"port": "x"}}', "at http.port"), ("{oops", "JSON syntax error"),
                         ('{"sources": [{"id": "a", "mode": "nope"}]}', "invalid sources[0].mode 'nope'")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        refused = run_cli(tmp_path, "--check-config", "-c", str(bad))
        assert refused.returncode == 3 and reason in refused.stderr, (text, refused.stderr)
