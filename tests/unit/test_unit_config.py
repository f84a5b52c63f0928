"""Settings from defaults < config file < env < flags, via the real loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.config import MotionConfig, VideoConfig
from supervisor.config_loader import MAX_TURN_TTL, load_settings
from supervisor.errors import ConfigError, UsageError
from supervisor.flags import parse_flags
from workers.source.watchdog import stall_timeout


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    # The implicit ./config.json is looked up in the CWD; never pick up a stray one.
    monkeypatch.chdir(tmp_path)


def write_config(directory: Path, data: object, name: str = "config.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def load(argv: list[str], env: dict[str, str] | None = None):
    return load_settings(parse_flags(argv), env or {})


# -- precedence -------------------------------------------------------------------------------

FILE_SOURCE = ["--source", "/media/clip.mp4"]

PRECEDENCE = [
    # id, file data, env, flags, getter, (default, file, env, flag)
    ("http.port", {"http": {"port": 5001}}, {"ICEY_PORT": "5002"}, ["--port", "5003"],
     lambda s: s.http.port, (4500, 5001, 5002, 5003)),
    ("http.host", {"http": {"host": "10.0.0.1"}}, {"ICEY_HOST": "10.0.0.2"}, ["--host", "10.0.0.3"],
     lambda s: s.http.host, ("0.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3")),
    ("media.mode", {"media": {"mode": "record"}}, {"ICEY_MODE": "relay"}, ["--mode", "stream"],
     lambda s: s.mode, ("stream", "record", "relay", "stream")),
    ("turn.port", {"turn": {"port": 4001}}, {"ICEY_TURN_PORT": "4002"}, ["--turn-port", "4003"],
     lambda s: s.turn.port, (3478, 4001, 4002, 4003)),
    ("record dir", {"media": {"recordDir": "/abs/file-rec"}}, {"ICEY_RECORD_DIR": "/abs/env-rec"},
     ["--record-dir", "/abs/flag-rec"], lambda s: s.record_dir,
     ("./recordings", "/abs/file-rec", "/abs/env-rec", "/abs/flag-rec")),
    ("loop", {"media": {"loop": False}}, {"ICEY_LOOP": "true"}, ["--no-loop"],
     lambda s: s.sources[0].loop, (True, False, True, False)),
    ("turn enabled", {"turn": {"enabled": False}}, {"ICEY_TURN": "true"}, ["--no-turn"],
     lambda s: s.turn.enabled, (True, False, True, False)),
    ("turn externalIp", {"turn": {"externalIp": "198.51.100.1"}}, {"ICEY_TURN_EXTERNAL_IP": "198.51.100.2"},
     ["--turn-external-ip", "198.51.100.3"], lambda s: s.turn.external_ip,
     ("", "198.51.100.1", "198.51.100.2", "198.51.100.3")),
]


@pytest.mark.parametrize(("file_data", "env", "flag_args", "get", "expected"),
                         [p[1:] for p in PRECEDENCE], ids=[p[0] for p in PRECEDENCE])
def test_precedence_defaults_file_env_flags(tmp_path, file_data, env, flag_args, get, expected):
    path = write_config(tmp_path / "conf", file_data)
    default, from_file, from_env, from_flag = expected
    assert get(load(FILE_SOURCE)) == default
    assert get(load(["-c", str(path), *FILE_SOURCE])) == from_file
    assert get(load(["-c", str(path), *FILE_SOURCE], env)) == from_env
    assert get(load(["-c", str(path), *FILE_SOURCE, *flag_args], env)) == from_flag


def test_env_config_path_is_used_and_flag_config_beats_it(tmp_path):
    env_cfg = write_config(tmp_path / "a", {"http": {"port": 6001}})
    flag_cfg = write_config(tmp_path / "b", {"http": {"port": 6002}})
    assert load([], {"ICEY_CONFIG": str(env_cfg)}).http.port == 6001
    assert load(["-c", str(flag_cfg)], {"ICEY_CONFIG": str(env_cfg)}).http.port == 6002


def test_implicit_config_json_in_cwd_is_loaded(tmp_path):
    write_config(tmp_path, {"http": {"port": 6100}})
    settings = load([])
    assert settings.config_exists is True
    assert settings.http.port == 6100


def test_no_config_file_means_defaults_without_error():
    settings = load([])
    assert settings.config_exists is False
    assert settings.config_error is None
    assert settings.warnings == []


def test_empty_env_values_count_as_unset(tmp_path):
    path = write_config(tmp_path, {"http": {"port": 5001, "host": "10.1.1.1"}, "media": {"mode": "record"}})
    env = {"ICEY_PORT": "", "ICEY_HOST": "", "ICEY_MODE": "", "ICEY_LOOP": "", "ICEY_CONFIG": ""}
    settings = load(["-c", str(path)], env)
    assert (settings.http.port, settings.http.host, settings.mode) == (5001, "10.1.1.1", "record")


def test_explicit_missing_config_is_a_config_error():
    with pytest.raises(ConfigError) as flag_err:
        load(["-c", "missing.json"])
    assert flag_err.value.message == "Error: config file not found: missing.json"
    assert flag_err.value.exit_code == 3
    with pytest.raises(ConfigError) as env_err:
        load([], {"ICEY_CONFIG": "other-missing.json"})
    assert "other-missing.json" in env_err.value.message


# -- paths ------------------------------------------------------------------------------------


def test_relative_file_paths_resolve_against_the_config_dir(tmp_path):
    conf_dir = tmp_path / "conf"
    path = write_config(conf_dir, {
        "tls": {"cert": "certs/c.pem", "key": "certs/k.pem"},
        "media": {"source": "clips/a.mp4", "recordDir": "rec"},
        "webRoot": "ui",
    })
    settings = load(["-c", str(path)])
    base = conf_dir.resolve()
    assert settings.tls.cert == str(base / "certs" / "c.pem")
    assert settings.tls.key == str(base / "certs" / "k.pem")
    assert settings.record_dir == str(base / "rec")
    assert settings.web_root == str(base / "ui")
    assert settings.sources[0].url == str(base / "clips" / "a.mp4")


def test_relative_config_path_resolves_against_its_own_dir_not_cwd(tmp_path):
    write_config(tmp_path / "sub", {"media": {"recordDir": "rec"}})
    settings = load(["-c", "sub/config.json"])
    assert settings.record_dir == str((tmp_path / "sub" / "rec").resolve())


def test_absolute_and_remote_file_values_are_not_resolved(tmp_path):
    path = write_config(tmp_path / "conf", {
        "media": {"recordDir": "/var/rec"},
        "sources": [{"id": "cam", "source": "rtsp://cam.local/stream1"},
                    {"id": "dev", "source": "v4l2:/dev/video0"},
                    {"id": "abs", "source": "/srv/media/x.mp4"}],
    })
    settings = load(["-c", str(path)])
    assert settings.record_dir == "/var/rec"
    assert [s.url for s in settings.sources] == ["rtsp://cam.local/stream1", "v4l2:/dev/video0", "/srv/media/x.mp4"]


def test_web_root_default_is_not_resolved_when_absent_from_file(tmp_path):
    path = write_config(tmp_path / "conf", {"http": {"port": 4501}})
    assert load(["-c", str(path)]).web_root == "./web/dist"


def test_env_and_flag_paths_are_used_as_given(tmp_path):
    path = write_config(tmp_path / "conf", {"webRoot": "ui", "media": {"recordDir": "rec"}})
    env = {"ICEY_RECORD_DIR": "env/rec", "ICEY_WEB_ROOT": "env/ui", "ICEY_TLS_CERT": "env/c.pem",
           "ICEY_TLS_KEY": "env/k.pem", "ICEY_SOURCE": "env/a.mp4"}
    settings = load(["-c", str(path)], env)
    assert (settings.record_dir, settings.web_root) == ("env/rec", "env/ui")
    assert (settings.tls.cert, settings.tls.key) == ("env/c.pem", "env/k.pem")
    assert settings.sources[0].url == "env/a.mp4"
    flagged = load(["-c", str(path), "--record-dir", "f/rec", "--web-root", "f/ui", "--tls-cert", "f/c.pem",
                    "--tls-key", "f/k.pem", "--source", "f/a.mp4"], env)
    assert (flagged.record_dir, flagged.web_root) == ("f/rec", "f/ui")
    assert (flagged.tls.cert, flagged.tls.key) == ("f/c.pem", "f/k.pem")
    assert flagged.sources[0].url == "f/a.mp4"


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_come_from_file_then_env(tmp_path):
    path = write_config(tmp_path, {"auth": {"token": "file-token-0123456789"},
                                   "turn": {"secret": "file-secret-0123456789"}})
    from_file = load(["-c", str(path)])
    assert (from_file.auth.token, from_file.turn.secret) == ("file-token-0123456789", "file-secret-0123456789")
    from_env = load(["-c", str(path)], {"ICEY_AUTH_TOKEN": "env-token-0123456789",
                                        "ICEY_TURN_SECRET": "env-secret-0123456789"})
    assert (from_env.auth.token, from_env.turn.secret) == ("env-token-0123456789", "env-secret-0123456789")


def test_set_but_empty_secret_env_clears_the_file_value(tmp_path):
    path = write_config(tmp_path, {"auth": {"token": "file-token"}, "turn": {"secret": "file-secret"}})
    settings = load(["-c", str(path)], {"ICEY_AUTH_TOKEN": "", "ICEY_TURN_SECRET": ""})
    assert settings.auth.token == ""
    assert settings.turn.secret == ""


@pytest.mark.parametrize("flag", ["--auth-token", "--token", "--turn-secret"])
def test_secrets_have_no_flags(flag):
    with pytest.raises(UsageError) as err:
        load([flag, "s3cret"])
    assert err.value.message == f"Error: unknown argument '{flag}'"
    assert err.value.exit_code == 2


# -- validation -------------------------------------------------------------------------------


def test_type_error_names_the_key_and_reverts_the_whole_file(tmp_path):
    path = write_config(tmp_path, {"http": {"host": "10.9.9.9", "port": "4500"}, "turn": {"port": 4000}})
    settings = load(["-c", str(path)])
    assert settings.config_error is not None
    assert "http.port" in settings.config_error
    assert "$" not in settings.config_error
    # No half-populated config: the valid keys of the broken file are dropped too.
    assert settings.http.host == "0.0.0.0"
    assert settings.turn.port == 3478
    assert settings.config_exists is True


@pytest.mark.parametrize(("data", "message"), [
    ({"http": {"port": 70000}}, "invalid http.port 70000: expected 1..65535"),
    ({"http": {"port": 0}}, "invalid http.port 0: expected 1..65535"),
    ({"turn": {"port": 65536}}, "invalid turn.port 65536: expected 1..65535"),
    ({"media": {"mode": "bogus"}}, "invalid media.mode 'bogus': expected stream, record, or relay"),
    ({"media": {"mode": "Stream"}}, "invalid media.mode 'Stream': expected stream, record, or relay"),
    ({"media": {"stallTimeoutSec": 0}}, "Expected `float` > 0.0 at media.stallTimeoutSec"),
])
def test_range_and_enum_errors_have_icey_messages(tmp_path, data, message):
    settings = load(["-c", str(write_config(tmp_path, data))])
    assert settings.config_error == message


@pytest.mark.parametrize(("sources", "fragment"), [
    ([{"id": "bad id!", "source": "rtsp://h/x"}], "sources[0].id 'bad id!'"),
    ([{"id": "-lead", "source": "rtsp://h/x"}], "sources[0].id '-lead'"),
    ([{"id": "a" * 65, "source": "rtsp://h/x"}], "sources[0].id"),
    ([{"id": "a", "source": "rtsp://h/x"}, {"id": "a", "source": "rtsp://h/y"}], "duplicate sources[1].id 'a'"),
    ([{"id": "a", "source": "rtsp://h/x", "mode": "bogus"}], "invalid sources[0].mode 'bogus'"),
    ([{"id": "a", "source": "rtsp://h/x", "loop": "yes"}], "sources[0].loop"),
    ([{"id": "a", "source": 5}], "sources[0].source"),
    ([{"id": "a", "source": "rtsp://h/x", "stallTimeoutSec": -1}],
     "Expected `float` > 0.0 at sources[0].stallTimeoutSec"),
])
def test_source_errors_name_the_source_path(tmp_path, sources, fragment):
    settings = load(["-c", str(write_config(tmp_path, {"sources": sources}))])
    assert settings.config_error is not None
    assert fragment in settings.config_error
    assert settings.sources == []


def _override_type_error(tmp_path):
    data = {"http": {"port": 4999},
            "sources": [{"id": "a", "source": "rtsp://h/x", "intelligence": {"vision": {"enabled": "yes"}}}]}
    return load(["-c", str(write_config(tmp_path, data))])


def test_wrong_type_inside_per_source_override_names_the_source_path(tmp_path):
    # However the error is delivered, the reason names the full path inside sources[0].
    try:
        reason = _override_type_error(tmp_path).config_error
    except ConfigError as exc:
        reason = exc.message
    assert reason is not None
    assert "sources[0].intelligence.vision.enabled" in reason


def test_wrong_type_inside_per_source_override_is_a_config_error_like_any_other(tmp_path):
    settings = _override_type_error(tmp_path)
    assert settings.config_error is not None
    assert "sources[0].intelligence.vision.enabled" in settings.config_error
    assert settings.http.port == 4500


def test_json_syntax_error_reports_line_and_column(tmp_path):
    path = write_config(tmp_path, '{\n  "http": {\n    "port": 4501,\n  }\n}\n')
    settings = load(["-c", str(path)])
    assert settings.config_error is not None
    assert "line 4 column" in settings.config_error
    assert settings.http.port == 4500


def test_top_level_must_be_an_object(tmp_path):
    settings = load(["-c", str(write_config(tmp_path, [1, 2]))])
    assert settings.config_error is not None
    assert "object" in settings.config_error


def test_on_config_error_env_and_flags_still_apply(tmp_path):
    path = write_config(tmp_path, {"http": {"port": 70000, "host": "10.0.0.9"}})
    settings = load(["-c", str(path), "--port", "5050", "--demo"], {"ICEY_HOST": "127.0.0.2"})
    assert settings.config_error is not None
    assert settings.http.port == 5050
    assert settings.http.host == "127.0.0.2"
    assert [s.id for s in settings.sources] == ["demo-1", "demo-2", "demo-3"]


def test_on_config_error_without_flags_port_is_default(tmp_path):
    settings = load(["-c", str(write_config(tmp_path, {"http": {"port": 70000}}))])
    assert settings.http.port == 4500


# -- unknown keys -----------------------------------------------------------------------------


def test_unknown_keys_warn_with_dotted_paths(tmp_path):
    data = {
        "http": {"port": 4501, "bogus": 1},
        "topLevelThing": True,
        "media": {"intelligence": {"speech": {"loudness": 1}}},
        "sources": [
            {"id": "a", "source": "rtsp://h/x", "nope": 1,
             "intelligence": {"vision": {"motion": {"thresh": 0.1}}}, "video": {"widht": 10}},
        ],
    }
    settings = load(["-c", str(write_config(tmp_path, data))])
    assert settings.config_error is None
    assert settings.http.port == 4501
    for key in ("http.bogus", "topLevelThing", "media.intelligence.speech.loudness", "sources[0].nope",
                "sources[0].intelligence.vision.motion.thresh", "sources[0].video.widht"):
        assert f"unknown config key '{key}' (ignored)" in settings.warnings
    assert len(settings.warnings) == 6


def test_known_keys_do_not_warn(tmp_path):
    data = {
        "http": {"host": "0.0.0.0", "port": 4500, "allowedHosts": ["cams.example"]}, "tls": {"cert": "", "key": ""},
        "auth": {"token": "", "allowedOrigins": ["https://x.example"]},
        "media": {"mode": "stream", "loop": True, "passthroughVideo": False, "recordDir": "rec",
                  "stallTimeoutSec": 5, "video": {"codec": "h264", "width": 640}, "audio": {"sampleRate": 48000},
                  "intelligence": {"vision": {"enabled": True, "motion": {"threshold": 0.1},
                                              "snapshots": {"enabled": True}}, "speech": {"enabled": False}}},
        "turn": {"enabled": True, "port": 3478, "realm": "r", "externalIp": "", "credentialTtlSeconds": 60,
                 "allowLocalRelay": False, "allowPrivatePeers": ["127.0.0.1/32"], "allowTcpRelay": False,
                 "userQuota": 8, "totalQuota": 64, "maxBps": 500000},
        "stun": {"urls": []}, "webRoot": "ui",
        "sources": [{"id": "a", "source": "rtsp://h/x", "mode": "stream", "loop": False, "stallTimeoutSec": 3,
                     "passthroughVideo": True, "video": {"fps": 15}, "intelligence": {"speech": {"enabled": True}}}],
    }
    settings = load(["-c", str(write_config(tmp_path, data))])
    assert settings.config_error is None
    assert settings.warnings == []


# -- sources ----------------------------------------------------------------------------------


def test_per_source_overrides_deep_merge_onto_media(tmp_path):
    data = {
        "media": {"intelligence": {"vision": {"enabled": True}}, "video": {"fps": 25}},
        "sources": [
            {"id": "front", "source": "rtsp://cam1/s",
             "intelligence": {"vision": {"motion": {"threshold": 0.2}}}, "video": {"width": 640}},
            {"id": "back", "source": "rtsp://cam2/s"},
        ],
    }
    settings = load(["-c", str(write_config(tmp_path, data))])
    front, back = settings.sources
    assert (front.id, back.id) == ("front", "back")
    assert front.intelligence.vision.enabled is True
    assert front.intelligence.vision.motion.threshold == 0.2
    assert front.intelligence.vision.motion.grid_width == MotionConfig().grid_width
    assert back.intelligence.vision.enabled is True
    assert back.intelligence.vision.motion.threshold == MotionConfig().threshold
    assert front.video.width == 640
    assert front.video.height == VideoConfig().height
    assert front.video.fps == 25
    assert back.video.width == VideoConfig().width
    assert back.video.fps == 25


def test_per_source_mode_and_loop_override(tmp_path):
    data = {"media": {"loop": True},
            "sources": [{"id": "a", "source": "/m/a.mp4", "loop": False, "mode": "record"},
                        {"id": "b", "source": "/m/b.mp4"}]}
    a, b = load(["-c", str(write_config(tmp_path, data))]).sources
    assert (a.mode, a.loop) == ("record", False)
    assert (b.mode, b.loop) == ("stream", True)


def test_stall_timeout_from_media_or_per_source_else_derived(tmp_path):
    data = {"media": {"stallTimeoutSec": 8},
            "sources": [{"id": "a", "source": "rtsp://h/x", "stallTimeoutSec": 2.5}, {"id": "b", "source": "/m/b.mp4"}]}
    a, b = load(["-c", str(write_config(tmp_path / "etc", data))]).sources
    assert (a.stall_timeout_sec, b.stall_timeout_sec) == (2.5, 8)
    cam, clip = load(["--source", "rtsp://h/x", "--source", "/m/c.mp4"]).sources
    assert cam.stall_timeout_sec is None and clip.stall_timeout_sec is None
    assert (stall_timeout(cam, None), stall_timeout(cam, 0.2)) == (5.0, 5.0)  # live: 5 s whatever the rate
    assert (stall_timeout(clip, 25), stall_timeout(clip, 0.2), stall_timeout(clip, None)) == (5.0, 15.0, 5.0)


def test_sources_without_ids_get_generated_unique_ids(tmp_path):
    data = {"sources": [{"source": "rtsp://a/x"}, {"source": "rtsp://b/y"}]}
    settings = load(["-c", str(write_config(tmp_path, data))])
    assert settings.config_error is None
    ids = [s.id for s in settings.sources]
    assert len(ids) == 2
    assert len(set(ids)) == 2


def test_icey_single_media_source_becomes_one_source(tmp_path):
    data = {"media": {"source": "rtsp://camera.local/stream1", "loop": False}}
    settings = load(["-c", str(write_config(tmp_path, data))])
    assert len(settings.sources) == 1
    src = settings.sources[0]
    assert (src.id, src.url, src.kind, src.remote, src.index) == (
        "source-1", "rtsp://camera.local/stream1", "rtsp", True, 0)


def test_no_source_in_stream_mode_means_no_sources():
    assert load([]).sources == []


def test_source_flag_with_id():
    (src,) = load(["--source", "cam=rtsp://user@h:554/x"]).sources
    assert (src.id, src.url, src.kind) == ("cam", "rtsp://user@h:554/x", "rtsp")


@pytest.mark.parametrize("url", ["rtsp://h/x?a=1", "rtsp://h/x?a=1&b=2", "http://h/live?token=abc=="])
def test_source_flag_without_id_keeps_the_url_intact(url):
    (src,) = load(["--source", url]).sources
    assert src.url == url
    assert src.id == "source-1"


def test_several_source_flags_keep_order_and_unique_ids():
    settings = load(["--source", "a=rtsp://h/1", "--source", "rtsp://h/2", "--source", "c=/m/x.mp4"])
    assert [s.url for s in settings.sources] == ["rtsp://h/1", "rtsp://h/2", "/m/x.mp4"]
    ids = [s.id for s in settings.sources]
    assert ids[0] == "a" and ids[2] == "c"
    assert len(set(ids)) == 3
    assert [s.index for s in settings.sources] == [0, 1, 2]
    assert [s.kind for s in settings.sources] == ["rtsp", "rtsp", "file"]


def test_duplicate_flag_source_ids_are_a_usage_error():
    with pytest.raises(UsageError):
        load(["--source", "a=rtsp://h/1", "--source", "a=rtsp://h/2"])


def test_demo_adds_three_demo_sources():
    settings = load(["--demo"])
    assert [s.id for s in settings.sources] == ["demo-1", "demo-2", "demo-3"]
    assert {s.kind for s in settings.sources} == {"demo"}
    assert all(s.url.startswith("demo://") for s in settings.sources)
    with_flag = load(["--source", "cam=rtsp://h/x", "--demo"])
    assert [s.id for s in with_flag.sources] == ["cam", "demo-1", "demo-2", "demo-3"]


def test_flag_sources_replace_file_sources(tmp_path):
    path = write_config(tmp_path, {"sources": [{"id": "filecam", "source": "rtsp://f/1"}],
                                   "media": {"source": "rtsp://f/legacy"}})
    settings = load(["-c", str(path), "--source", "flagcam=rtsp://x/1"])
    assert [(s.id, s.url) for s in settings.sources] == [("flagcam", "rtsp://x/1")]


def test_env_source_replaces_file_sources_and_flags_beat_env(tmp_path):
    path = write_config(tmp_path, {"sources": [{"id": "f1", "source": "rtsp://f/1"},
                                               {"id": "f2", "source": "rtsp://f/2"}]})
    settings = load(["-c", str(path)], {"ICEY_SOURCE": "rtsp://env/1"})
    assert [s.url for s in settings.sources] == ["rtsp://env/1"]
    flagged = load(["-c", str(path), "--source", "rtsp://flag/1"], {"ICEY_SOURCE": "rtsp://env/1"})
    assert [s.url for s in flagged.sources] == ["rtsp://flag/1"]


@pytest.mark.parametrize("url", ["rtsp://cam/s", "rtsps://cam/s", "v4l2:/dev/video0", "srt://h:9000"])
def test_live_sources_never_loop(tmp_path, url):
    path = write_config(tmp_path, {"media": {"loop": True}})
    settings = load(["-c", str(path), "--loop", "--source", url, "--source", "/m/file.mp4"],
                    {"ICEY_LOOP": "true"})
    live, file_src = settings.sources
    assert live.live is True
    assert live.loop is False
    assert file_src.loop is True


# -- env grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("yes", True), ("on", True),
    ("0", False), ("false", False), ("no", False), ("off", False),
])
def test_env_bool_grammar(tmp_path, value, expected):
    settings = load(["--source", "/m/a.mp4"], {"ICEY_LOOP": value, "ICEY_TURN": value})
    assert settings.sources[0].loop is expected
    assert settings.turn.enabled is expected


def test_env_bool_auto_keeps_the_file_value(tmp_path):
    path = write_config(tmp_path, {"media": {"loop": False}, "turn": {"enabled": False}})
    settings = load(["-c", str(path), "--source", "/m/a.mp4"], {"ICEY_LOOP": "auto", "ICEY_TURN": "auto"})
    assert settings.sources[0].loop is False
    assert settings.turn.enabled is False


@pytest.mark.parametrize("name", ["ICEY_LOOP", "ICEY_TURN"])
@pytest.mark.parametrize("value", ["bogus", "TRUE", "Yes", "2"])
def test_env_bool_rejects_everything_else(name, value):
    with pytest.raises(UsageError) as err:
        load([], {name: value})
    assert err.value.message == f"Error: invalid {name} '{value}'. Expected true, false, or auto."
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("name", "value"), [
    ("ICEY_PORT", "abc"), ("ICEY_PORT", "0"), ("ICEY_PORT", "65536"), ("ICEY_PORT", "+80"),
    ("ICEY_TURN_PORT", "3478x"), ("ICEY_TURN_PORT", "-1"),
])
def test_env_port_validation(name, value):
    with pytest.raises(UsageError) as err:
        load([], {name: value})
    assert err.value.message == f"Error: invalid {name} '{value}'. Expected 1..65535."
    assert err.value.exit_code == 2


@pytest.mark.parametrize("value", ["bad", "Stream", "RECORD"])
def test_env_mode_validation(value):
    with pytest.raises(UsageError) as err:
        load([], {"ICEY_MODE": value})
    assert err.value.message == f"Error: invalid ICEY_MODE '{value}'. Expected stream, record, or relay."


def test_env_log_level_validation_and_flag_precedence():
    with pytest.raises(UsageError) as err:
        load([], {"ICEY_LOG_LEVEL": "loud"})
    assert err.value.message == "Error: invalid ICEY_LOG_LEVEL 'loud'. Expected trace, debug, info, warn, or error."
    assert load([], {"ICEY_LOG_LEVEL": "debug"}).log_level == "debug"
    assert load(["--log-level", "error"], {"ICEY_LOG_LEVEL": "debug"}).log_level == "error"
    assert load([]).log_level == "info"


# -- turn ttl ---------------------------------------------------------------------------------


def test_turn_ttl_above_a_day_is_clamped_with_a_warning(tmp_path):
    path = write_config(tmp_path, {"turn": {"credentialTtlSeconds": 90000}})
    settings = load(["-c", str(path)])
    assert settings.config_error is None
    assert settings.turn.credential_ttl_seconds == MAX_TURN_TTL
    assert f"turn.credentialTtlSeconds 90000 clamped to {MAX_TURN_TTL}" in settings.warnings


def test_turn_ttl_within_a_day_is_kept(tmp_path):
    settings = load(["-c", str(write_config(tmp_path, {"turn": {"credentialTtlSeconds": 86400}}))])
    assert settings.turn.credential_ttl_seconds == 86400
    assert settings.warnings == []


@pytest.mark.parametrize("reserved", ["snapshots", "clips", "recordings"])
def test_artifact_folder_names_are_not_source_ids(tmp_path, reserved):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"sources": [{"id": reserved, "source": "rtsp://h/x"}]}))
    settings = load_settings(parse_flags(["-c", str(cfg)]), {})
    assert settings.config_error is not None and reserved in settings.config_error
    with pytest.raises(UsageError):
        load_settings(parse_flags(["--source", f"{reserved}=rtsp://h/x"]), {})


# -- ready.requireSources and supervisor.givenUpRetrySec ----------------------------------------


def test_readiness_and_given_up_retry_defaults():
    settings = load(["--demo"])
    assert settings.ready.require_sources == "any"
    assert settings.supervisor.given_up_retry_sec == 300.0


@pytest.mark.parametrize("require", ["all", "any", ["b"], ["a", "b"]])
def test_require_sources_accepts_any_all_or_known_ids(tmp_path, require):
    data = {"sources": [{"id": "a", "source": "rtsp://h/x"}, {"id": "b", "source": "rtsp://h/y"}],
            "ready": {"requireSources": require}}
    settings = load(["-c", str(write_config(tmp_path, data))])
    assert settings.config_error is None
    assert settings.ready.require_sources == require


def test_require_sources_ids_are_checked_against_the_sources_that_run(tmp_path):
    """Flag sources replace the file's: ids that only the file knew no longer exist."""
    data = {"sources": [{"id": "a", "source": "rtsp://h/x"}], "ready": {"requireSources": ["a"]}}
    path = write_config(tmp_path, data)
    assert load(["-c", str(path)]).config_error is None
    settings = load(["-c", str(path), "--source", "front=rtsp://h/z"])
    assert settings.config_error == "unknown source id 'a' at ready.requireSources[0] (sources: front)"
    assert settings.ready.require_sources == "any"


@pytest.mark.parametrize(("data", "fragment"), [
    ({"ready": {"requireSources": "most"}}, "at ready.requireSources"),
    ({"ready": {"requireSources": []}}, "invalid ready.requireSources []"),
    ({"ready": {"requireSources": [3]}}, "at ready.requireSources[0]"),
    ({"supervisor": {"givenUpRetrySec": -1}}, "Expected `float` >= 0.0 at supervisor.givenUpRetrySec"),
])
def test_readiness_and_retry_errors_name_the_key(tmp_path, data, fragment):
    settings = load(["-c", str(write_config(tmp_path, data)), "--demo"])
    assert settings.config_error is not None and fragment in settings.config_error
