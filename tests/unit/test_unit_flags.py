"""icey's hand-rolled flag rules, via supervisor.flags.parse_flags."""

from __future__ import annotations

import pytest

from supervisor.errors import UsageError
from supervisor.flags import USAGE, parse_flags

VALUE_FLAGS = ["-c", "--config", "--host", "--port", "--tls-cert", "--tls-key", "--turn-port",
               "--turn-external-ip", "--mode", "--source", "--record-dir", "--web-root", "--log-level"]


def usage_error(argv: list[str]) -> UsageError:
    with pytest.raises(UsageError) as err:
        parse_flags(argv)
    assert err.value.exit_code == 2
    return err.value


@pytest.mark.parametrize("argv", [
    ["--help"], ["-h"], ["--bogus", "--help"], ["--port", "abc", "-h"], ["--mode", "Stream", "--help"],
    ["--host", "--help"], ["positional", "--help"],
])
def test_help_wins_over_everything(argv):
    flags = parse_flags(argv)
    assert flags.help is True
    assert flags.version is False


@pytest.mark.parametrize("argv", [["--version"], ["--bogus", "--version"], ["--port", "0", "--version"]])
def test_version_wins_over_invalid_flags(argv):
    flags = parse_flags(argv)
    assert flags.version is True
    assert flags.help is False


def test_first_of_help_and_version_wins():
    assert parse_flags(["--version", "--help"]).version is True
    assert parse_flags(["--version", "--help"]).help is False
    assert parse_flags(["-h", "--version"]).help is True
    assert parse_flags(["-h", "--version"]).version is False


def test_no_arguments_gives_all_defaults():
    flags = parse_flags([])
    assert (flags.help, flags.version, flags.doctor, flags.demo) == (False, False, False, False)
    assert flags.port is None and flags.host is None and flags.mode is None
    assert flags.sources == []


@pytest.mark.parametrize("flag", VALUE_FLAGS)
def test_value_flag_as_last_token_is_missing_value(flag):
    err = usage_error(["--doctor", flag])
    assert err.message == f"Error: flag '{flag}' requires a value"
    assert err.show_usage is True


@pytest.mark.parametrize("flag", VALUE_FLAGS)
def test_value_flag_followed_by_double_dash_token_is_missing_value(flag):
    err = usage_error([flag, "--doctor"])
    assert err.message == f"Error: flag '{flag}' requires a value"
    err = usage_error([flag, "--x"])
    assert err.message == f"Error: flag '{flag}' requires a value"


@pytest.mark.parametrize(("argv", "attr", "expected"), [
    (["--host", "-x"], "host", "-x"),
    (["-c", "-"], "config", "-"),
    (["--config", "-weird.json"], "config", "-weird.json"),
    (["--record-dir", "-rec"], "record_dir", "-rec"),
    (["--web-root", "-w"], "web_root", "-w"),
    (["--turn-external-ip", "-1"], "turn_external_ip", "-1"),
])
def test_single_dash_token_is_taken_as_value(argv, attr, expected):
    assert getattr(parse_flags(argv), attr) == expected


def test_single_dash_source_is_taken_as_value():
    assert parse_flags(["--source", "-"]).sources == [(None, "-")]


def test_single_dash_port_value_is_taken_then_rejected():
    err = usage_error(["--port", "-1"])
    assert err.message == "Error: invalid port '-1'. Expected 1..65535."


@pytest.mark.parametrize("token", ["--bogus", "positional", "--port=80", "-x", "--turn", "--auth-token", "-"])
def test_unknown_argument(token):
    err = usage_error(["--doctor", token])
    assert err.message == f"Error: unknown argument '{token}'"
    assert err.show_usage is True


@pytest.mark.parametrize("value", ["0", "65536", "+80", "80x", " 80", "80 ", "", "abc", "99999", "8.0", "0x50"])
def test_bad_ports_rejected_with_exact_message(value):
    assert usage_error(["--port", value]).message == f"Error: invalid port '{value}'. Expected 1..65535."
    assert usage_error(["--turn-port", value]).message == f"Error: invalid turn port '{value}'. Expected 1..65535."


def test_port_with_trailing_newline_rejected():
    usage_error(["--port", "80\n"])


@pytest.mark.parametrize("value", ["1", "80", "4500", "65535"])
def test_good_ports_accepted(value):
    flags = parse_flags(["--port", value, "--turn-port", value])
    assert flags.port == int(value)
    assert flags.turn_port == int(value)


@pytest.mark.parametrize("value", ["Stream", "STREAM", "streaming", "", "live"])
def test_mode_is_case_sensitive_and_closed(value):
    assert usage_error(["--mode", value]).message == (
        f"Error: invalid mode '{value}'. Expected stream, record, or relay.")


@pytest.mark.parametrize("value", ["stream", "record", "relay"])
def test_valid_modes(value):
    assert parse_flags(["--mode", value]).mode == value


@pytest.mark.parametrize("value", ["trace", "debug", "info", "warn", "error"])
def test_valid_log_levels(value):
    assert parse_flags(["--log-level", value]).log_level == value


@pytest.mark.parametrize("value", ["warning", "INFO", "verbose", ""])
def test_invalid_log_levels(value):
    assert usage_error(["--log-level", value]).message == (
        f"Error: invalid log level '{value}'. Expected trace, debug, info, warn, or error.")


def test_boolean_flags_and_last_loop_flag_wins():
    flags = parse_flags(["--doctor", "--demo", "--no-turn", "--loop", "--no-loop"])
    assert (flags.doctor, flags.demo, flags.turn, flags.loop) == (True, True, False, False)
    assert parse_flags(["--no-loop", "--loop"]).loop is True
    assert parse_flags([]).turn is None


def test_value_flags_are_stored():
    flags = parse_flags(["-c", "a.json", "--host", "127.0.0.1", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                         "--turn-external-ip", "203.0.113.5", "--record-dir", "rec", "--web-root", "ui"])
    assert (flags.config, flags.host, flags.tls_cert, flags.tls_key) == ("a.json", "127.0.0.1", "c.pem", "k.pem")
    assert (flags.turn_external_ip, flags.record_dir, flags.web_root) == ("203.0.113.5", "rec", "ui")


def test_later_value_flag_overrides_earlier():
    assert parse_flags(["--port", "5000", "--port", "5001"]).port == 5001


@pytest.mark.parametrize(("value", "expected"), [
    ("cam=rtsp://h/x", ("cam", "rtsp://h/x")),
    ("front_door-2=/m/a.mp4", ("front_door-2", "/m/a.mp4")),
    ("rtsp://h/x?a=1", (None, "rtsp://h/x?a=1")),
    ("rtsp://u:p=w@h/x", (None, "rtsp://u:p=w@h/x")),
    ("/m/a=b.mp4", (None, "/m/a=b.mp4")),
    ("demo://testsrc2?size=640x360", (None, "demo://testsrc2?size=640x360")),
])
def test_source_id_split(value, expected):
    assert parse_flags(["--source", value]).sources == [expected]


def test_sources_accumulate_in_order():
    flags = parse_flags(["--source", "a=rtsp://h/1", "--port", "5000", "--source", "rtsp://h/2"])
    assert flags.sources == [("a", "rtsp://h/1"), (None, "rtsp://h/2")]


def test_usage_text_lists_flags_env_precedence_and_exit_codes():
    for needle in ("--config", "--port", "--source", "--no-turn", "--doctor", "--version", "ICEY_AUTH_TOKEN",
                   "Precedence: defaults < config file < environment < flags", "Exit codes"):
        assert needle in USAGE
