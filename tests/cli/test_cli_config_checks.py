"""The real `icey-server` CLI refusing sources and values that cannot work, before any child starts:
source ids in flags and ICEY_SOURCES (2), URL schemes and demo URLs (3), numeric ranges (3), a
stream source without a URL (3), an unusable record dir (4); and camera passwords kept off the
command line (ICEY_SOURCES, a warning for a flag)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_cli, stderr_lines
from support.processes import free_port

ALLOWED_PATTERNS = "allowed: testsrc, testsrc2, smptebars, smptehdbars, rgbtestsrc, yuvtestsrc, pal75bars"


def start_args(*args: str) -> list[str]:
    """A real start (not --doctor) that would bind a free port if nothing refused it first."""
    return ["--no-turn", "--host", "127.0.0.1", "--port", str(free_port()), *args]


def write_config(tmp_path: Path, config: dict) -> str:
    (tmp_path / "bad.json").write_text(json.dumps(config))
    return "bad.json"


# -- issue 9 item 13: source ids in flags ----------------------------------------------------


@pytest.mark.parametrize(("value", "bad_id"), [
    ("a/b=file.mp4", "a/b"), ("a b=file.mp4", "a b"), ("..=file.mp4", ".."), ("=file.mp4", ""),
])
def test_invalid_source_id_in_flag_exits_2(tmp_path, value, bad_id):
    result = run_cli(tmp_path, *start_args("--source", value))
    assert result.returncode == 2, result.stderr
    assert stderr_lines(result)[0].startswith(f"Error: invalid source id '{bad_id}' in --source. ")


def test_existing_path_with_equals_sign_is_a_path_not_an_id(tmp_path):
    (tmp_path / "a=b.mp4").write_bytes(b"\x00" * 16)
    (tmp_path / "x=y.mp4").write_bytes(b"\x00" * 16)
    result = run_cli(tmp_path, "--doctor", "--no-turn", "--source", "a=b.mp4", "--source", "cam=./x=y.mp4")
    report = json.loads(result.stdout)
    sources = {c["name"]: c["result"] for c in report["checks"] if c["name"].startswith("source:")}
    assert sources == {"source:source-1": "pass", "source:cam": "pass"}


# -- issue 9 item 13: unsupported schemes ----------------------------------------------------


@pytest.mark.parametrize("value", ["x=gopher://host/x", "bogus:thing", "x=rtsp:cam", "x=demo:testsrc2"])
def test_unsupported_scheme_in_flag_exits_3_listing_the_kinds(tmp_path, value):
    result = run_cli(tmp_path, *start_args("--source", value))
    assert result.returncode == 3, result.stderr
    line = stderr_lines(result)[0]
    assert line.startswith("Error: invalid source '") and "(--source): unsupported source URL scheme" in line
    assert "supported: rtsp://, rtsps://" in line and "v4l2:/dev/videoN" in line


def test_unsupported_scheme_in_config_file_exits_3_with_key_path(tmp_path):
    name = write_config(tmp_path, {"sources": [{"id": "ok", "source": "demo://"},
                                               {"id": "g", "source": "gopher://host/x"}]})
    result = run_cli(tmp_path, "-c", name, *start_args())
    assert result.returncode == 3, result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: invalid config file '{name}': invalid sources[1].source: unsupported "
                               "source URL scheme 'gopher:'; supported: rtsp://")


# -- issue 9 item 9: demo URLs ---------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "x=demo://movie=/etc/passwd",
    "x=demo://testsrc2,movie=/etc/passwd",
    "x=demo://metadata=mode=print:file=/tmp/icey-demo-leak",
    "x=demo://testsrc2?rate=25[out0];movie=/etc/passwd",
    "x=demo://testsrc2?size=640x360:filename=/tmp/icey-demo-leak",
])
def test_demo_url_outside_the_pattern_whitelist_exits_3(tmp_path, value):
    result = run_cli(tmp_path, *start_args("--source", value))
    assert result.returncode == 3, result.stderr
    line = stderr_lines(result)[0]
    assert line.startswith("Error: invalid source 'x' (--source): ")
    assert ("unknown demo pattern" in line and ALLOWED_PATTERNS in line) or "demo parameter" in line
    assert not Path("/tmp/icey-demo-leak").exists()


@pytest.mark.parametrize(("query", "message"), [
    ("size=99999x2", "demo parameter size=99999x2: expected WxH"),
    ("size=641x360", "demo parameter size=641x360: expected WxH, even numbers"),
    ("rate=0", "demo parameter rate=0: expected a whole number 1..60"),
    ("rate=1e3", "demo parameter rate=1e3: expected a whole number 1..60"),
    ("tone=5", "demo parameter tone=5: expected a whole number 20..20000"),
    ("gop=0", "demo parameter gop=0: expected a whole number 1..600"),
    ("move=0", "demo parameter move=0: expected seconds 0.1..600"),
    ("period=nan", "demo parameter period=nan: expected seconds"),
    ("burst=1", "demo parameter burst=1: expected ON,PERIOD"),
    ("file=/etc/passwd", "unknown demo parameter 'file'"),
])
def test_demo_url_with_bad_parameter_exits_3(tmp_path, query, message):
    result = run_cli(tmp_path, *start_args("--source", f"x=demo://square?{query}"))
    assert result.returncode == 3, result.stderr
    assert stderr_lines(result)[0].startswith(f"Error: invalid source 'x' (--source): {message}")


def test_bad_demo_url_in_config_file_exits_3_with_key_path(tmp_path):
    name = write_config(tmp_path, {"media": {"source": "demo://movie=/etc/passwd"}})
    result = run_cli(tmp_path, "-c", name, *start_args())
    assert result.returncode == 3, result.stderr
    line = stderr_lines(result)[0]
    assert line.startswith(f"Error: invalid config file '{name}': invalid media.source: unknown demo pattern 'movie='")
    assert ALLOWED_PATTERNS in line


def test_valid_demo_urls_start(icey):
    server = icey(["--no-turn",
                   "--source", "sq=demo://square?size=320x180&rate=10&gop=20&move=1&period=2.5",
                   "--source", "bars=demo://smptebars?size=160x90&rate=5&tone=300&burst=0.5,1",
                   "--source", "plain=demo://?size=160x90&rate=5"])
    server.wait_all_online(timeout=30)
    assert {s["id"] for s in server.status()["sources"]} == {"sq", "bars", "plain"}


# -- issue 9 item 13: ranges and values that make no sense -----------------------------------


@pytest.mark.parametrize(("config", "message"), [
    ({"supervisor": {"heartbeatMs": 0}}, "Expected `int` >= 50 at supervisor.heartbeatMs"),
    ({"supervisor": {"crashLoopLimit": -1}}, "Expected `int` >= 1 at supervisor.crashLoopLimit"),
    ({"supervisor": {"restartInitialMs": 0}}, "Expected `int` >= 10 at supervisor.restartInitialMs"),
    ({"supervisor": {"stopTimeoutSec": 0}}, "Expected `float` >= 0.1 at supervisor.stopTimeoutSec"),
    ({"media": {"maxViewers": -1}}, "Expected `int` >= 0 at media.maxViewers"),
    ({"media": {"video": {"fps": 0}}}, "Expected `int` >= 1 at media.video.fps"),
    ({"media": {"record": {"segmentSeconds": 0}}}, "Expected `float` >= 0.5 at media.record.segmentSeconds"),
    ({"media": {"intelligence": {"vision": {"motion": {"threshold": 1.5}}}}},
     "Expected `float` <= 1.0 at media.intelligence.vision.motion.threshold"),
    ({"webrtc": {"disconnectGraceSec": -1}}, "Expected `float` >= 0.0 at webrtc.disconnectGraceSec"),
    ({"turn": {"credentialTtlSeconds": 0}}, "Expected `int` >= 1 at turn.credentialTtlSeconds"),
    ({"sources": [{"id": "a", "source": "demo://", "video": {"bitrate": 1}}]},
     "Expected `int` >= 16000 at sources[0].video.bitrate"),
    ({"sources": [{"id": "a", "source": "demo://", "maxViewers": -3}]}, "Expected `int` >= 0 at sources[0].maxViewers"),
])
def test_out_of_range_value_exits_3_naming_the_key(tmp_path, config, message):
    name = write_config(tmp_path, config)
    result = run_cli(tmp_path, "-c", name, *start_args())
    assert result.returncode == 3, result.stderr
    assert stderr_lines(result) == [f"Error: invalid config file '{name}': {message}"]


def test_stream_source_without_url_exits_3(tmp_path):
    name = write_config(tmp_path, {"sources": [{"id": "cam", "source": "demo://"}, {"id": "empty"}]})
    result = run_cli(tmp_path, "-c", name, *start_args())
    assert result.returncode == 3, result.stderr
    assert stderr_lines(result) == [f"Error: invalid config file '{name}': missing sources[1].source: a stream "
                                    "source needs one (only record and relay sources may omit it)"]


@pytest.mark.parametrize(("config", "args"), [
    ({"sources": [{"id": "pub", "mode": "relay"}, {"id": "rec", "mode": "record"}]}, []),
    ({"sources": [{"id": "pub"}]}, ["--mode", "relay"]),
])
def test_record_and_relay_sources_may_omit_the_url(tmp_path, config, args):
    name = write_config(tmp_path, config)
    result = run_cli(tmp_path, "-c", name, "--doctor", "--no-turn", *args)
    report = json.loads(result.stdout)
    assert report["config"]["valid"] is True, report["config"]


# -- issue 9 item 13: an unusable record dir fails the preflight -----------------------------


def test_unusable_record_dir_exits_4(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    result = run_cli(tmp_path, *start_args("--mode", "record", "--record-dir", "afile/rec"))
    assert result.returncode == 4, result.stderr
    assert "preflight failed" in result.stderr
    assert f"record_dir: media.recordDir afile/rec: cannot be created: {tmp_path / 'afile'} is not a directory" \
        in result.stderr


def test_unusable_per_source_record_dir_exits_4_naming_the_source(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    name = write_config(tmp_path, {"sources": [{"id": "cam", "source": "demo://",
                                                "record": {"enabled": True, "dir": "afile"}}]})
    result = run_cli(tmp_path, "-c", name, *start_args())
    assert result.returncode == 4, result.stderr
    assert "record_dir: record.dir of source 'cam' afile: not a directory" in result.stderr


# -- issue 9 item 7: camera passwords off the command line -----------------------------------


def test_source_flag_with_password_warns_once_without_it(tmp_path):
    result = run_cli(tmp_path, "--doctor", "--no-turn", "--source", "a=rtsp://user:hunter2@127.0.0.1:1/x",
                     "--source", "b=rtsp://admin:swordfish@127.0.0.1:1/y", "--source", "c=rtsp://127.0.0.1:1/z")
    warnings = [line for line in stderr_lines(result) if "password" in line]
    assert warnings == ["Warning: a --source flag carries a password, which every local user can read in the "
                        "process list; pass such sources in the config file or ICEY_SOURCES instead."]
    assert "hunter2" not in result.stderr + result.stdout and "swordfish" not in result.stderr + result.stdout


def test_icey_sources_env_gives_ids_and_urls_without_a_warning(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 16)
    env = {"ICEY_SOURCES": "front=rtsp://user:hunter2@127.0.0.1:1/x \n lobby=clip.mp4\tdemo://testsrc2"}
    result = run_cli(tmp_path, "--doctor", "--no-turn", env=env)
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"] if c["name"].startswith("source:")}
    assert list(checks) == ["source:front", "source:lobby", "source:source-3"]
    assert checks["source:lobby"]["result"] == "pass" and "127.0.0.1:1/x" in checks["source:front"]["detail"]
    assert "Warning" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(("env", "message"), [
    ({"ICEY_SOURCES": "ok=demo:// a/b=clip.mp4"}, "Error: invalid source id 'a/b' in ICEY_SOURCES. "),
    ({"ICEY_SOURCES": "demo://", "ICEY_SOURCE": "demo://"}, "Error: set ICEY_SOURCE or ICEY_SOURCES, not both."),
])
def test_bad_icey_sources_exits_2(tmp_path, env, message):
    result = run_cli(tmp_path, "--doctor", "--no-turn", env=env)
    assert result.returncode == 2, result.stderr
    assert stderr_lines(result)[0].startswith(message)


def test_help_lists_icey_sources_as_the_way_to_pass_passwords(tmp_path):
    result = run_cli(tmp_path, "--help")
    assert "ICEY_SOURCES" in result.stdout and "[ID=]URL entries" in result.stdout
