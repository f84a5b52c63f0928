"""Command-line flags, parsed by the C++ icey-server's rules: no `--flag=value`, a value
that starts with `--` counts as missing, `--help`/`--version` win in a first pass."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from protocol.config import LOG_LEVELS, MODES
from supervisor.errors import UsageError

USAGE = """\
Usage: icey-server [options]

Multi-camera WebRTC media server.

Options:
  -c, --config <path>        Config file (default ./config.json)
      --host <addr>          Bind host for HTTP and TURN (default 0.0.0.0)
      --port <n>             HTTP port (default 4500)
      --tls-cert <path>      Direct HTTPS certificate
      --tls-key <path>       Direct HTTPS private key
      --turn-port <n>        TURN port (default 3478)
      --metrics-port <n>     Also serve /metrics alone on this port (default off)
      --metrics-host <addr>  Bind host for --metrics-port (default: the HTTP bind host)
      --turn-external-ip <ip>  Public IP advertised for TURN
      --mode <m>             stream, record, or relay (default stream)
      --source [ID=]URL      A media source (file, rtsp://, v4l2:/dev/video0, demo://<pattern>);
                             repeat for several sources
      --demo                 Add three built-in test-pattern sources (no camera needed)
      --record-dir <path>    Recording and artifact directory (default ./recordings)
      --web-root <path>      Web UI directory (default ./web/dist)
      --log-level <l>        trace, debug, info, warn, or error (default info)
      --loop / --no-loop     Loop file sources (default loop)
      --no-turn              Disable TURN
      --doctor               Print the preflight report as JSON; exit 0 if ready, else 1
      --check-config         Validate the config (file, env, flags) and exit 0, or 3 with the reason
      --version              Print the version
  -h, --help                 Print this help

Environment:
  ICEY_CONFIG ICEY_LOG_LEVEL ICEY_HOST ICEY_PORT ICEY_TURN_PORT ICEY_TURN_EXTERNAL_IP ICEY_MODE
  ICEY_SOURCE ICEY_RECORD_DIR ICEY_WEB_ROOT ICEY_TLS_CERT ICEY_TLS_KEY ICEY_LOOP ICEY_TURN
  ICEY_METRICS_PORT ICEY_METRICS_HOST
  ICEY_AUTH_TOKEN ICEY_TURN_SECRET ICEY_METRICS_TOKEN (secrets have no flags, so they never show in process lists)
  ICEY_SOURCES               Sources as whitespace-separated [ID=]URL entries: the way to pass
                             camera passwords (a --source flag shows them to every local user)
Precedence: defaults < config file < environment < flags

Exit codes: 0 ok, 1 runtime failure or doctor not ready, 2 usage error, 3 config error,
  4 preflight failure or port in use
"""

_VALUE_FLAGS = {
    "-c": "config", "--config": "config", "--host": "host", "--port": "port",
    "--tls-cert": "tls_cert", "--tls-key": "tls_key", "--turn-port": "turn_port",
    "--turn-external-ip": "turn_external_ip", "--mode": "mode", "--record-dir": "record_dir",
    "--web-root": "web_root", "--log-level": "log_level", "--metrics-port": "metrics_port",
    "--metrics-host": "metrics_host",
}
SOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # always fullmatch: "$" accepts a trailing newline
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass
class Flags:
    help: bool = False
    version: bool = False
    doctor: bool = False
    check_config: bool = False
    demo: bool = False
    config: str | None = None
    host: str | None = None
    port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    turn_port: int | None = None
    turn_external_ip: str | None = None
    metrics_port: int | None = None
    metrics_host: str | None = None
    mode: str | None = None
    record_dir: str | None = None
    web_root: str | None = None
    log_level: str | None = None
    loop: bool | None = None
    turn: bool | None = None
    sources: list[tuple[str | None, str]] = field(default_factory=list)


def parse_port(value: str, what: str) -> int:
    if _PORT.fullmatch(value) and 1 <= int(value) <= 65535:
        return int(value)
    raise UsageError(f"Error: invalid {what} '{value}'. Expected 1..65535.")


def check_mode(value: str, what: str) -> str:
    if value not in MODES:
        raise UsageError(f"Error: invalid {what} '{value}'. Expected stream, record, or relay.")
    return value


def check_log_level(value: str, what: str = "log level") -> str:
    if value not in LOG_LEVELS:
        raise UsageError(f"Error: invalid {what} '{value}'. Expected trace, debug, info, warn, or error.")
    return value


def split_source(value: str, where: str) -> tuple[str | None, str]:
    """`[ID=]URL`. The text before the first `=` is part of the URL, not an id, when it holds a `:`
    (a scheme, `v4l2:`), starts with `/`, `./` or `../`, or when the whole value is an existing
    path. Otherwise it is an id and must be a valid one: `a/b=x.mp4` or `=x.mp4` is refused
    rather than quietly taken for a file path. `where` (the flag or variable) names the culprit."""
    head, sep, tail = value.partition("=")
    if not sep or ":" in head or head.startswith(("/", "./", "../")) or os.path.exists(value):
        return None, value
    if not SOURCE_ID.fullmatch(head):
        raise UsageError(f"Error: invalid source id '{head}' in {where}. Expected 1-64 of A-Z a-z 0-9 _ -, "
                         "starting with a letter or digit (write a path that holds '=' as ./PATH).")
    return head, tail


def parse_flags(argv: list[str]) -> Flags:
    flags = Flags()
    for token in argv:  # first pass: help and version win over everything else
        if token in ("-h", "--help"):
            flags.help = True
            return flags
        if token == "--version":
            flags.version = True
            return flags
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _VALUE_FLAGS:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UsageError(f"Error: flag '{token}' requires a value", show_usage=True)
            value = argv[i + 1]
            i += 2
            name = _VALUE_FLAGS[token]
            if name == "port":
                flags.port = parse_port(value, "port")
            elif name == "turn_port":
                flags.turn_port = parse_port(value, "turn port")
            elif name == "metrics_port":
                flags.metrics_port = parse_port(value, "metrics port")
            elif name == "mode":
                flags.mode = check_mode(value, "mode")
            elif name == "log_level":
                flags.log_level = check_log_level(value)
            else:
                setattr(flags, name, value)
            continue
        if token == "--source":
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UsageError(f"Error: flag '{token}' requires a value", show_usage=True)
            flags.sources.append(split_source(argv[i + 1], token))
            i += 2
            continue
        simple = {"--doctor": ("doctor", True), "--check-config": ("check_config", True), "--demo": ("demo", True),
                  "--loop": ("loop", True),
                  "--no-loop": ("loop", False), "--no-turn": ("turn", False)}
        if token in simple:
            setattr(flags, *simple[token])
            i += 1
            continue
        raise UsageError(f"Error: unknown argument '{token}'", show_usage=True)
    return flags
