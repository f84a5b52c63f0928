"""Preflight: the checks of the operator contract (config, ffmpeg,
web_root, ports, tls, turn, intelligence, in that order; then record_dir when something records),
the degrading warnings, the doctor report, and the bind probes and the runtime-dir choice that
run before any child starts."""

from __future__ import annotations

import os
import socket
import ssl
import urllib.parse
from pathlib import Path

import av

from protocol import ipc, readiness
from protocol.config import WILDCARD_HOSTS, Settings, SourceSettings
from protocol.messages import Check
from protocol.scrub import public_value, scrub_credentials
from protocol.source_kind import local_path
from protocol.version import PRODUCT, SERVICE, VERSION
from supervisor import turn_relay
from supervisor.errors import PreflightError

WARN_TURN_NO_SECRET = ("TURN is enabled but turn.secret is not set, so no relay runs; set turn.secret (or "
                       "ICEY_TURN_SECRET), or pass --no-turn.")
WARN_NO_EXTERNAL_IP = ("TURN externalIp is unset; remote NAT traversal may fail outside local or "
                       "host-network testing.")
WARN_TURN_OFF = "TURN is disabled; direct local/LAN calls may work, but remote NAT traversal will be limited."
WARN_INTELLIGENCE_MODE = ("Intelligence stages are only active in stream mode; current config leaves them "
                          "configured but inactive.")


def _check_config(s: Settings) -> Check:
    if s.config_error is not None:
        return Check("config", "fail", f"Invalid config file {s.config_path}: {s.config_error}")
    if s.config_exists:
        return Check("config", "pass", f"Loaded config from {s.config_path}")
    return Check("config", "pass", f"No config file at {s.config_path}; using built-in defaults and CLI flags")


def _check_ffmpeg() -> Check:
    version = ".".join(map(str, av.library_versions["libavformat"]))
    return Check("ffmpeg", "pass", f"libavformat {version} (PyAV {av.__version__})")


def _check_web_root(s: Settings) -> Check:
    index = os.path.join(s.web_root, "index.html")
    if os.path.isfile(index):
        return Check("web_root", "pass", f"Found bundled web UI at {index}")
    # A warn, not icey's fail: the API and the built-in pages work headless.
    return Check("web_root", "warn", f"Missing bundled web UI at {index}; serving the API only")


def _check_ports(s: Settings) -> Check:
    if not s.turn.active:
        return Check("ports", "pass", f"HTTP on {s.http.port}, TURN off")
    if s.turn.port == s.http.port:
        return Check("ports", "fail", "HTTP/WS port and TURN port must not be the same")
    return Check("ports", "pass", f"HTTP/WS on {s.http.port}, TURN on {s.turn.port}")


def tls_context(s: Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(s.tls.cert, s.tls.key)
    return ctx


def _check_tls(s: Settings) -> Check:
    cert, key = s.tls.cert, s.tls.key
    if not cert and not key:
        return Check("tls", "pass", "Direct TLS disabled; serving HTTP on the primary port")
    if not cert or not key:
        return Check("tls", "fail", "Direct TLS requires both tls.cert and tls.key")
    if not os.path.isfile(cert):
        return Check("tls", "fail", f"TLS certificate not found: {cert}")
    if not os.path.isfile(key):
        return Check("tls", "fail", f"TLS private key not found: {key}")
    try:
        tls_context(s)
    except (ssl.SSLError, OSError) as exc:
        return Check("tls", "fail", f"Cannot load TLS certificate or key: {exc}")
    return Check("tls", "pass", f"HTTPS enabled with certificate {cert}")


def _wildcard_without_external_ip(s: Settings) -> bool:
    return s.turn.active and s.http.host in WILDCARD_HOSTS and not s.turn.external_ip


def _check_turn(s: Settings) -> Check:
    if not s.turn.enabled:
        return Check("turn", "warn", "TURN relay disabled")
    if not s.turn.secret:
        return Check("turn", "warn", "TURN is enabled but turn.secret is not set; no relay runs (no demo login: "
                                     "a relay anyone can use reaches into the LAN)")
    if turn_relay.turnserver_path() is None:
        return Check("turn", "warn", "TURN is enabled but coturn's turnserver is not installed; no relay runs "
                                     "(install coturn, or pass --no-turn)")
    if _wildcard_without_external_ip(s):
        return Check("turn", "warn", "TURN is enabled without externalIp while binding to a wildcard host")
    return Check("turn", "pass", "TURN relay is enabled")


def _intelligence_outside_stream(s: Settings) -> bool:
    return any(src.mode != "stream" and (src.intelligence.vision.enabled or src.intelligence.speech.enabled)
               for src in s.sources)


def _check_intelligence(s: Settings) -> Check:
    vision = any(src.intelligence.vision.enabled for src in s.sources)
    speech = any(src.intelligence.speech.enabled for src in s.sources)
    if _intelligence_outside_stream(s):
        return Check("intelligence", "warn", "Vision/speech are configured but stream mode is not active")
    return Check("intelligence", "pass", f"vision={'on' if vision else 'off'}, speech={'on' if speech else 'off'}")


def _recording_dirs(s: Settings) -> dict[str, str]:
    """Directory -> its key, for every directory a source will write recordings or artifacts to."""
    dirs: dict[str, str] = {}
    for src in s.sources:
        vision = src.intelligence.vision
        if src.mode == "record" or (vision.snapshots.enabled and not vision.snapshots.dir) or (
                vision.clips.enabled and not vision.clips.dir):
            dirs.setdefault(s.record_dir, "media.recordDir")
        if src.record.enabled:
            dirs.setdefault(src.record.dir, "media.recordDir" if src.record.dir == s.record_dir
                            else f"record.dir of source '{src.id}'")
    return dirs


def _dir_problem(path: str) -> str | None:
    """Why the workers could not create or write `path`, or None."""
    target = Path(path).absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return "not a directory" if existing == target else f"cannot be created: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "not writable" if existing == target else f"cannot be created: {existing} is not writable"
    return None


def _check_record_dir(s: Settings) -> Check | None:
    """Only when something records: a stream-only server never touches its record dir."""
    dirs = _recording_dirs(s)
    if not dirs:
        return None
    problems = [f"{key} {path}: {problem}" for path, key in dirs.items() if (problem := _dir_problem(path))]
    if problems:
        return Check("record_dir", "fail", "; ".join(problems))
    return Check("record_dir", "pass", f"Recording to {', '.join(dirs)}")


def static_checks(s: Settings) -> list[Check]:
    """The service-wide checks in contract order; computed once at startup, never per request."""
    checks = [_check_config(s), _check_ffmpeg(), _check_web_root(s), _check_ports(s), _check_tls(s),
              _check_turn(s), _check_intelligence(s)]
    if (record_dir := _check_record_dir(s)) is not None:
        checks.append(record_dir)
    if not s.sources:
        checks.append(Check("source", "fail", "stream mode requires --source or media.source"))
    return checks


def degrading_warnings(s: Settings) -> list[str]:
    found = []
    if s.turn.enabled and not s.turn.secret:
        found.append(WARN_TURN_NO_SECRET)
    if _wildcard_without_external_ip(s):
        found.append(WARN_NO_EXTERNAL_IP)
    if not s.turn.enabled:
        found.append(WARN_TURN_OFF)
    if _intelligence_outside_stream(s):
        found.append(WARN_INTELLIGENCE_MODE)
    return found


def _probe_remote(url: str, timeout: float = 2.0) -> str | None:
    """TCP reachability of a camera (icey's doctor never probes RTSP); None when reachable."""
    parsed = urllib.parse.urlsplit(url)
    default = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}.get(parsed.scheme, 0)
    try:
        port = parsed.port or default
    except ValueError:
        return "invalid port in URL"
    if not parsed.hostname or not port:
        return None
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def source_check(src: SourceSettings, probe_network: bool = False) -> Check:
    """The doctor's static view of one source; at runtime the API derives it from the worker."""
    name = readiness.source_check_name(src.id)
    if src.kind == "none":
        if src.mode == "stream":
            return Check(name, "fail", "stream mode requires --source or media.source")
        return Check(name, "pass", f"No configured media source required for {src.mode} mode")
    if src.kind == "file":
        path = local_path(src.url) or ""
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return Check(name, "pass", f"Found local media source at {path}")
        return Check(name, "fail", f"Local media source not found: {path}")
    if src.kind == "device":
        path = src.url.split(":", 1)[1] if src.url.startswith("v4l2:") else src.url
        if os.path.exists(path):
            return Check(name, "pass", f"Using local device {path}")
        return Check(name, "fail", f"Local device not found: {path}")
    if src.kind == "demo":
        return Check(name, "pass", f"Using built-in test pattern {src.url}")
    shown = public_value(src.url)
    if probe_network and (error := _probe_remote(src.url)) is not None:
        return Check(name, "warn", f"Remote media source {shown} is not reachable: {error}")
    return Check(name, "pass", f"Using remote media source {shown}")


def doctor_report(s: Settings) -> tuple[dict, bool]:
    checks = static_checks(s) + [source_check(src, probe_network=True) for src in s.sources]
    degrading = degrading_warnings(s)
    ready, status = readiness.overall(checks, degrading, s.ready.require_sources)
    report = {
        "status": status, "ready": ready, "product": PRODUCT, "service": SERVICE, "version": VERSION,
        "mode": s.mode,
        "config": {"path": s.config_path, "exists": s.config_exists, "valid": s.config_error is None,
                   **({"error": s.config_error} if s.config_error else {})},
        "checks": [{"name": c.name, "result": c.result, "detail": scrub_credentials(c.detail)} for c in checks],
        "warnings": s.warnings + degrading,
    }
    return report, ready


def bind_http(s: Settings) -> socket.socket:
    """Bind and listen on the HTTP port now; the API process inherits this socket, so a
    restarting API never drops the port and connections queue in the backlog meanwhile."""
    return _listen(s.http.host, s.http.port, "HTTP/WS", "--port")


def bind_metrics(s: Settings) -> socket.socket | None:
    """The /metrics-only listener (`metrics.port`), held like the HTTP one; None when it is off."""
    if not s.metrics.port:
        return None
    return _listen(s.metrics.bind_host(s.http), s.metrics.port, "metrics", "metrics.port (--metrics-port)")


def _listen(host: str, port: int, label: str, option: str) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PreflightError(f"Error: invalid {label} listen address {host}:{port} ({exc.strerror})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise PreflightError(
            f"Error: cannot bind {label} port on {host}:{port} ({exc.strerror}) — is another "
            f"process using the port?\nTry a different {option} or stop the conflicting process.") from None
    sock.set_inheritable(True)
    return sock


def probe_turn_ports(s: Settings) -> None:
    if not s.turn.active:
        return
    for kind, label in ((socket.SOCK_STREAM, "TURN"), (socket.SOCK_DGRAM, "TURN UDP")):
        try:
            infos = socket.getaddrinfo(s.http.host or None, s.turn.port, type=kind, flags=socket.AI_PASSIVE)
            with socket.socket(infos[0][0], kind) as probe:
                probe.bind(infos[0][4])
        except OSError as exc:
            raise PreflightError(
                f"Error: cannot bind {label} port on {s.http.host}:{s.turn.port} ({exc.strerror}) — is another "
                "process using the port?\nTry a different --turn-port, --no-turn, or stop the conflicting "
                "process.") from None


def check_runtime_dir() -> None:
    """The IPC sockets need a short writable directory; without one every child would crash-loop."""
    try:
        ipc.choose_runtime_base(ipc.runtime_base_candidates())
    except ipc.RuntimeDirError as exc:
        raise PreflightError(f"Error: icey-server preflight failed\n  - runtime_dir: {exc}") from None


def gate(s: Settings) -> list[Check]:
    """The start gate: raise PreflightError listing every failed service-wide check."""
    checks = static_checks(s)
    failed = [c for c in checks if c.result == "fail"]
    if failed:
        lines = "\n".join(f"  - {c.name}: {scrub_credentials(c.detail)}" for c in failed)
        raise PreflightError(f"Error: icey-server preflight failed\n{lines}\n"
                             "Run 'icey-server --doctor' for the full report.")
    return checks
