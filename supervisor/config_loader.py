"""Settings from defaults < config file < ICEY_* env < flags; file paths are relative to
the config file's directory.

A config written for the C++ icey-server (one `media.source`) becomes one source; a `sources`
list gives several. Every error names the offending key path; unknown keys only warn.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import typing
from pathlib import Path
from typing import cast

import msgspec

from protocol.config import (
    MODES,
    SOURCE_OVERRIDE_TYPES,
    FileConfig,
    MediaConfig,
    ReadyConfig,
    Settings,
    SourceEntry,
    SourceSettings,
)
from protocol.demo_url import DemoUrlError, parse_demo_url
from protocol.source_kind import DEMO_SCHEME, SUPPORTED_KINDS, classify, unsupported_scheme
from protocol.vocabulary import Mode
from supervisor import one_line_values, secret_rules
from supervisor.errors import ConfigError, UsageError
from supervisor.flags import SOURCE_ID, Flags, check_log_level, check_mode, parse_port, split_source

DEFAULT_CONFIG = "./config.json"
# Where API edits of the source list persist when the sources come from flags/env (no file to
# write): `<recordDir>/.icey-sources.json`, `{"sources": [...]}`, read at start in their place.
STATE_FILE = ".icey-sources.json"
# Folders under the record dir that hold snapshots, clips and recordings: a source id must not
# shadow them (its segments would land where the artifact retention sweeps).
RESERVED_IDS = frozenset({"snapshots", "clips", "recordings"})
MAX_TURN_TTL = 86_400
DEMO_SOURCES = (
    ("demo-1", f"{DEMO_SCHEME}testsrc2?size=640x360&rate=25&tone=440"),
    ("demo-2", f"{DEMO_SCHEME}smptehdbars?size=640x360&rate=25&tone=660"),
    ("demo-3", f"{DEMO_SCHEME}life?size=640x360&rate=25&tone=880"),
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
# (id or None, URL, where it came from: a flag or a variable) of a source given outside the file.
SourceOverride = tuple[str | None, str, str]


def _env(environ: typing.Mapping[str, str], name: str) -> str | None:
    """Empty means unset, as in icey (secrets excepted, see `_env_secret`)."""
    value = environ.get(name)
    return value if value else None


def _env_bool(environ: typing.Mapping[str, str], name: str) -> bool | None:
    value = _env(environ, name)
    if value is None or value == "auto":
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"Error: invalid {name} '{value}'. Expected true, false, or auto.")


def unknown_keys(raw: object, schema: type, prefix: str = "") -> list[str]:
    """Dotted paths of keys the schema does not know (recursing where both sides are objects)."""
    if not isinstance(raw, dict):
        return []
    fields = {f.encode_name: f for f in msgspec.structs.fields(schema)}
    found: list[str] = []
    for key, value in raw.items():
        path = f"{prefix}{key}"
        info = fields.get(key)
        if info is None:
            found.append(path)
            continue
        sub = _struct_of(info.type)
        if schema is SourceEntry and key in SOURCE_OVERRIDE_TYPES:
            sub = SOURCE_OVERRIDE_TYPES[key]
        if sub is not None:
            found += unknown_keys(value, sub, path + ".")
        elif typing.get_origin(info.type) is list and isinstance(value, list):
            item = _struct_of(typing.get_args(info.type)[0])
            for i, element in enumerate(value):
                if item is not None:
                    found += unknown_keys(element, item, f"{path}[{i}].")
    return found


def _struct_of(tp: object) -> type | None:
    return tp if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else None


def _validation_reason(exc: msgspec.ValidationError, prefix: str = "") -> str:
    """msgspec says "... - at `$.http.port`"; we say "... at http.port"."""
    text = str(exc)
    match = re.search(r" - at `\$\.?(.*)`$", text)
    if not match:
        return text
    path = prefix + match.group(1)
    return f"{text[: match.start()]} at {path.rstrip('.')}"


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def _check_port(value: int, key: str) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(f"invalid {key} {value}: expected 1..65535")


def _check_metrics_port(cfg: FileConfig) -> None:
    """After env and flags: either may have moved one of the two ports onto the other."""
    if cfg.metrics.port and cfg.metrics.port == cfg.http.port:
        raise ConfigError(f"Error: invalid metrics.port {cfg.metrics.port}: it is http.port; /metrics needs a "
                          "port of its own (or 0: only on the HTTP port)")


def source_url_problem(url: str) -> str | None:
    """Why no worker may open `url`: an unsupported scheme, or a demo URL outside the whitelist
    (its pattern would be spliced into a lavfi graph, which can read and write files)."""
    if (scheme := unsupported_scheme(url)) is not None:
        return f"unsupported source URL scheme '{scheme}:'; supported: {SUPPORTED_KINDS}"
    if classify(url).kind == "demo":
        try:
            parse_demo_url(url)
        except DemoUrlError as exc:
            return str(exc)
    return None


def _check_source_url(url: str, key: str) -> None:
    if (problem := source_url_problem(url)) is not None:
        raise ConfigError(f"invalid {key}: {problem}")


def _read_file(path: Path) -> dict:
    """The raw file; raises ConfigError with the reason icey would give."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError("Cannot open config file") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"JSON syntax error: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a JSON object at the top level")
    return raw


def _validate(cfg: FileConfig, raw: dict, warnings: list[str]) -> None:
    _check_port(cfg.http.port, "http.port")
    _check_port(cfg.turn.port, "turn.port")
    if cfg.media.mode not in MODES:
        raise ConfigError(f"invalid media.mode '{cfg.media.mode}': expected stream, record, or relay")
    _validate_sources(cfg, raw.get("sources") or [], "sources")
    if cfg.ready.require_sources == []:
        raise ConfigError('invalid ready.requireSources []: expected "any", "all", or a non-empty list of source ids')
    _check_source_url(cfg.media.source, "media.source")
    if cfg.turn.credential_ttl_seconds > MAX_TURN_TTL:
        warnings.append(f"turn.credentialTtlSeconds {cfg.turn.credential_ttl_seconds} clamped to {MAX_TURN_TTL}")
        cfg.turn.credential_ttl_seconds = MAX_TURN_TTL
    _validate_turn_relay(cfg, warnings)


def _validate_sources(cfg: FileConfig, raw_sources: list, key: str) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(cfg.sources):
        if entry.id and not SOURCE_ID.fullmatch(entry.id):
            raise ConfigError(f"invalid {key}[{i}].id '{entry.id}': expected 1-64 of A-Z a-z 0-9 _ -,"
                              " starting with a letter or digit")
        if entry.id in RESERVED_IDS:
            raise ConfigError(f"invalid {key}[{i}].id '{entry.id}': reserved for the artifact folders "
                              f"({', '.join(sorted(RESERVED_IDS))})")
        if entry.id and entry.id in seen:
            raise ConfigError(f"duplicate {key}[{i}].id '{entry.id}'")
        seen.add(entry.id)
        if entry.mode is not None and entry.mode not in MODES:
            raise ConfigError(f"invalid {key}[{i}].mode '{entry.mode}': expected stream, record, or relay")
        _check_source_url(entry.source, f"{key}[{i}].source")
        _effective_media(cfg, raw_sources[i], f"{key}[{i}].")


def _state_sources(path: Path, given: list | None) -> list | None:
    """The source list of the state file (`given` stands in for the file when an edit is checked)."""
    if given is not None:
        return given
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Error: invalid state file '{path}': {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        raise ConfigError(f"Error: invalid state file '{path}': expected {{\"sources\": [...]}}")
    return raw["sources"]


def _use_state_sources(cfg: FileConfig, raw: dict, state: list, path: Path) -> dict:
    """The state file's list replaces the flag/env sources; checked with the file's rules."""
    try:
        cfg.sources = msgspec.convert(state, list[SourceEntry])
        _validate_sources(cfg, state, "sources")
    except msgspec.ValidationError as exc:
        raise ConfigError(f"Error: invalid state file '{path}': {_validation_reason(exc, 'sources')}") from None
    except ConfigError as exc:
        raise ConfigError(f"Error: invalid state file '{path}': {exc.message}") from None
    return {**raw, "sources": state}


def _validate_turn_relay(cfg: FileConfig, warnings: list[str]) -> None:
    turn = cfg.turn
    for i, entry in enumerate(turn.allow_private_peers):
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"invalid turn.allowPrivatePeers[{i}] {entry!r}: expected an IP address or CIDR"
                              ) from None
        if net.num_addresses == 1 and net.network_address.is_unspecified:
            # coturn reads a lone 0.0.0.0 or :: as every address: this would allow all peers.
            raise ConfigError(f"invalid turn.allowPrivatePeers[{i}] {entry!r}: not a peer address")
    for key, value in (("userQuota", turn.user_quota), ("totalQuota", turn.total_quota), ("maxBps", turn.max_bps)):
        if value < 0:
            raise ConfigError(f"invalid turn.{key} {value}: expected 0 (no limit) or more")
    if turn.allow_local_relay:
        warnings.append("turn.allowLocalRelay is not honoured (it opened the relay to every private address); "
                        "list the peers the relay may reach in turn.allowPrivatePeers")


def _resolve_file_paths(cfg: FileConfig, base: Path, raw: dict) -> None:
    """Only values from the file are relative to the file's directory (as the C++ icey-server does)."""

    def resolve(value: str) -> str:
        return str((base / value).resolve()) if value and not os.path.isabs(value) else value

    def resolve_source(value: str) -> str:
        return resolve(value) if classify(value).kind == "file" and "://" not in value else value

    cfg.tls.cert, cfg.tls.key = resolve(cfg.tls.cert), resolve(cfg.tls.key)
    cfg.media.source = resolve_source(cfg.media.source)
    cfg.media.record_dir = resolve(cfg.media.record_dir)
    vision = cfg.media.intelligence.vision
    vision.snapshots.dir, vision.clips.dir = resolve(vision.snapshots.dir), resolve(vision.clips.dir)
    if "webRoot" in raw:
        cfg.web_root = resolve(cfg.web_root)
    for entry in cfg.sources:
        entry.source = resolve_source(entry.source)


def _apply_env(cfg: FileConfig, env: typing.Mapping[str, str]) -> list[SourceOverride] | None:
    """Env overrides; returns the env's source list (None when ICEY_SOURCE(S) is unset)."""
    if (v := _env(env, "ICEY_HOST")) is not None:
        cfg.http.host = v
    if (v := _env(env, "ICEY_PORT")) is not None:
        cfg.http.port = parse_port(v, "ICEY_PORT")
    if (v := _env(env, "ICEY_TURN_PORT")) is not None:
        cfg.turn.port = parse_port(v, "ICEY_TURN_PORT")
    if (v := _env(env, "ICEY_METRICS_PORT")) is not None:
        cfg.metrics.port = parse_port(v, "ICEY_METRICS_PORT")
    if (v := _env(env, "ICEY_METRICS_HOST")) is not None:
        cfg.metrics.host = v
    if (v := _env(env, "ICEY_TURN_EXTERNAL_IP")) is not None:
        cfg.turn.external_ip = v
    if (v := _env(env, "ICEY_MODE")) is not None:
        cfg.media.mode = check_mode(v, "ICEY_MODE")
    if (v := _env(env, "ICEY_RECORD_DIR")) is not None:
        cfg.media.record_dir = v
    if (v := _env(env, "ICEY_WEB_ROOT")) is not None:
        cfg.web_root = v
    if (v := _env(env, "ICEY_TLS_CERT")) is not None:
        cfg.tls.cert = v
    if (v := _env(env, "ICEY_TLS_KEY")) is not None:
        cfg.tls.key = v
    if (b := _env_bool(env, "ICEY_LOOP")) is not None:
        cfg.media.loop = b
    if (b := _env_bool(env, "ICEY_TURN")) is not None:
        cfg.turn.enabled = b
    # Secrets: set-but-empty overrides the file (icey), so an operator can clear a file secret.
    if "ICEY_AUTH_TOKEN" in env:
        cfg.auth.token = env["ICEY_AUTH_TOKEN"]
    if "ICEY_TURN_SECRET" in env:
        cfg.turn.secret = env["ICEY_TURN_SECRET"]
    if "ICEY_METRICS_TOKEN" in env:
        cfg.metrics.token = env["ICEY_METRICS_TOKEN"]
    return _env_sources(env)


def _env_sources(env: typing.Mapping[str, str]) -> list[SourceOverride] | None:
    """`ICEY_SOURCES`: whitespace-separated `[ID=]URL` entries; `ICEY_SOURCE`: one URL."""
    source, sources = _env(env, "ICEY_SOURCE"), _env(env, "ICEY_SOURCES")
    if source is not None and sources is not None:
        raise UsageError("Error: set ICEY_SOURCE or ICEY_SOURCES, not both.")
    if sources is not None:
        return [(*split_source(item, "ICEY_SOURCES"), "ICEY_SOURCES") for item in sources.split()]
    return [(None, source, "ICEY_SOURCE")] if source is not None else None


def _apply_flags(cfg: FileConfig, flags: Flags) -> None:
    for attr, target, name in (
        ("host", cfg.http, "host"), ("port", cfg.http, "port"), ("tls_cert", cfg.tls, "cert"),
        ("tls_key", cfg.tls, "key"), ("turn_port", cfg.turn, "port"),
        ("turn_external_ip", cfg.turn, "external_ip"), ("mode", cfg.media, "mode"),
        ("record_dir", cfg.media, "record_dir"), ("loop", cfg.media, "loop"), ("turn", cfg.turn, "enabled"),
        ("metrics_port", cfg.metrics, "port"), ("metrics_host", cfg.metrics, "host"),
    ):
        value = getattr(flags, attr)
        if value is not None:
            setattr(target, name, value)
    if flags.web_root is not None:
        cfg.web_root = flags.web_root


def _source_entries(cfg: FileConfig, override: list[SourceOverride] | None,
                    raw_sources: list | None) -> list[tuple[SourceEntry, dict, str | None]]:
    """(entry, its raw per-source overrides, the flag or variable it came from) in order;
    env/flag sources replace the file's. A `sources` key, even an empty list, is the whole list
    (so removing the last source sticks)."""
    if override is not None:
        return [(SourceEntry(id=i or "", source=url), {}, origin) for i, url, origin in override]
    if raw_sources is not None:
        return [(e, raw_sources[n] if n < len(raw_sources) and isinstance(raw_sources[n], dict) else {}, None)
                for n, e in enumerate(cfg.sources)]
    if cfg.media.source or cfg.media.mode != "stream":
        return [(SourceEntry(source=cfg.media.source), {}, None)]
    return []


def _sourceless_stream_entry(cfg: FileConfig) -> str | None:
    """Only record and relay sources get their media from a WHIP publisher; a stream source
    without `source` has nothing to show. Checked once env and flags have set the mode."""
    for i, entry in enumerate(cfg.sources):
        if not entry.source and (entry.mode or cfg.media.mode) == "stream":
            return f"missing sources[{i}].source: a stream source needs one (only record and relay sources may omit it)"
    return None


def _effective_media(cfg: FileConfig, raw_entry: object, path: str) -> MediaConfig:
    """`media.*` with one source's override blocks deep-merged on top."""
    raw = raw_entry if isinstance(raw_entry, dict) else {}
    overrides = {key: raw[key] for key in SOURCE_OVERRIDE_TYPES if isinstance(raw.get(key), dict)}
    try:
        return msgspec.convert(_deep_merge(msgspec.to_builtins(cfg.media), overrides), MediaConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(_validation_reason(exc, path)) from None


def _resolve_sources(cfg: FileConfig, entries: list[tuple[SourceEntry, dict, str | None]]) -> list[SourceSettings]:
    resolved: list[SourceSettings] = []
    used = {e.id for e, _, _ in entries if e.id}
    for n, (entry, raw, origin) in enumerate(entries):
        source_id = entry.id
        if not source_id:
            k = n + 1
            while f"source-{k}" in used:
                k += 1
            source_id = f"source-{k}"
            used.add(source_id)
        if not SOURCE_ID.fullmatch(source_id) or source_id in RESERVED_IDS:
            raise UsageError(f"Error: invalid source id '{source_id}'. Expected 1-64 of A-Z a-z 0-9 _ -, "
                             f"other than {', '.join(sorted(RESERVED_IDS))}.")
        if origin is not None and (problem := source_url_problem(entry.source)) is not None:
            raise ConfigError(f"Error: invalid source '{source_id}' ({origin}): {problem}")
        media = _effective_media(cfg, raw, f"sources[{n}].")  # validated with the file already
        kind = classify(entry.source)
        loop = media.loop if entry.loop is None else entry.loop
        resolved.append(SourceSettings(
            id=source_id, index=n, url=entry.source, kind=kind.kind, remote=kind.remote, live=kind.live,
            mode=cast(Mode, entry.mode or cfg.media.mode), loop=loop and not kind.live,  # checked in _validate
            max_viewers=media.max_viewers if entry.max_viewers is None else entry.max_viewers,
            stall_timeout_sec=media.stall_timeout_sec if entry.stall_timeout_sec is None else entry.stall_timeout_sec,
            record=msgspec.structs.replace(media.record, dir=media.record.dir or cfg.media.record_dir),
            video=media.video, audio=media.audio, intelligence=media.intelligence, labels=entry.labels or {},
        ))
    if len({s.id for s in resolved}) != len(resolved):
        raise UsageError("Error: duplicate source id among --source flags.")
    return resolved


def _unknown_required_source(ready: ReadyConfig, sources: list[SourceSettings]) -> str | None:
    """Checked once the sources are resolved: they may come from flags or env, not the file."""
    if not isinstance(ready.require_sources, list):
        return None
    known = {s.id for s in sources}
    for i, source_id in enumerate(ready.require_sources):
        if source_id not in known:
            return (f"unknown source id '{source_id}' at ready.requireSources[{i}] "
                    f"(sources: {', '.join(sorted(known)) or 'none'})")
    return None


def load_settings(flags: Flags, env: typing.Mapping[str, str], *, file_raw: dict | None = None,
                  state_sources: list | None = None) -> Settings:
    """Raises UsageError (2) for bad env/flag values and ConfigError (3) for a missing explicit
    config file, a weak secret, a value with a control character, an env/flag source no worker may
    open or a bad state file. An invalid config file does not raise: it is reported in
    `config_error` (so `--doctor` can show it) and the caller exits 3. `file_raw` / `state_sources`
    stand in for the files' contents, so an edit is checked by exactly these rules before anything
    is written."""
    env_level = _env(env, "ICEY_LOG_LEVEL")
    log_level = flags.log_level or (check_log_level(env_level, "ICEY_LOG_LEVEL") if env_level else "info")
    explicit = flags.config or _env(env, "ICEY_CONFIG")
    path = Path(explicit or DEFAULT_CONFIG)
    exists = path.is_file() or file_raw is not None
    if explicit and file_raw is None and not path.exists():
        raise ConfigError(f"Error: config file not found: {explicit}")
    cfg, error = FileConfig(), None
    warnings: list[str] = []
    raw: dict = {}
    if exists:
        try:
            raw = _read_file(path) if file_raw is None else file_raw
            warnings = [f"unknown config key '{k}' (ignored)" for k in unknown_keys(raw, FileConfig)]
            cfg = msgspec.convert(raw, FileConfig)
            _validate(cfg, raw, warnings)
            # The directory the file is named in, not where its symlink points: a ConfigMap's
            # `config.json -> ..data/config.json` points into a new directory at every update.
            _resolve_file_paths(cfg, Path(os.path.abspath(path)).parent, raw)
        except msgspec.ValidationError as exc:
            error = _validation_reason(exc)
        except ConfigError as exc:
            error = exc.message
        if error is not None:  # icey: on any failure the whole config reverts to defaults
            cfg, raw = FileConfig(), {}
    env_sources = _apply_env(cfg, env)
    _apply_flags(cfg, flags)
    _check_metrics_port(cfg)
    secret_rules.trim(cfg)
    one_line_values.check(cfg)
    secret_rules.check(cfg)
    source_override = [(i, url, "--source") for i, url in flags.sources] if flags.sources else env_sources
    if flags.demo:
        source_override = [*(source_override or []), *((i, url, "--demo") for i, url in DEMO_SOURCES)]
    edits_kind = "config" if exists and source_override is None else "state"
    edits_path = path if edits_kind == "config" else Path(cfg.media.record_dir) / STATE_FILE
    if edits_kind == "state" and (state := _state_sources(edits_path, state_sources)) is not None:
        raw, source_override = _use_state_sources(cfg, raw, state, edits_path), None
    if error is None and source_override is None:
        error = _sourceless_stream_entry(cfg)
    sources = _resolve_sources(cfg, _source_entries(cfg, source_override, raw.get("sources")))
    if error is None and (error := _unknown_required_source(cfg.ready, sources)) is not None:
        cfg.ready = ReadyConfig()
    return Settings(
        config_path=str(path), config_exists=exists, config_error=error, http=cfg.http, tls=cfg.tls,
        auth=cfg.auth, turn=cfg.turn, stun=cfg.stun, webrtc=cfg.webrtc, web_root=cfg.web_root,
        record_dir=cfg.media.record_dir,
        mode=cfg.media.mode, log_level=log_level, sources=sources, supervisor=cfg.supervisor, ready=cfg.ready,
        warnings=warnings, source_ids=[s.id for s in sources], metrics=cfg.metrics, edits_path=str(edits_path),
        edits_kind=edits_kind,
    )
