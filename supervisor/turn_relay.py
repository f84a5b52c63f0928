"""The TURN relay: coturn, run and watched by the supervisor like any other child.

It runs only with `turn.secret` (TURN REST credentials, no static users). Its config file lives
in the private runtime directory (mode 0600), so the secret never appears on a command line.
Every value written here was checked to be one line at load (a newline would add a directive).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from protocol.config import WILDCARD_HOSTS, Settings
from supervisor import turn_peers

TURNSERVER = "turnserver"


def log_level(line: str) -> str:
    """coturn is chatty at startup (and warns about SCTP it cannot open): only its errors count."""
    return "error" if "ERROR" in line else "debug"  # LEVELS names


def turnserver_path() -> str | None:
    return shutil.which(TURNSERVER)


def config_lines(settings: Settings, runtime_dir: Path) -> list[str]:
    turn, host = settings.turn, settings.http.host
    lines = [f"listening-port={turn.port}", f"realm={turn.realm}", "fingerprint", "no-cli", "no-tls", "no-dtls",
             "no-multicast-peers", "no-software-attribute", "log-file=stdout", "simple-log",
             f"pidfile={runtime_dir / 'turnserver.pid'}", f"userdb={runtime_dir / 'turndb'}",
             "use-auth-secret", f"static-auth-secret={turn.secret}",
             f"user-quota={turn.user_quota}", f"total-quota={turn.total_quota}", f"max-bps={turn.max_bps}"]
    if not turn.allow_tcp_relay:
        lines.append("no-tcp-relay")  # RFC 6062 relays open TCP connections to any peer
    if host not in WILDCARD_HOSTS:
        lines += [f"listening-ip={host}", f"relay-ip={host}"]
    if turn.external_ip:
        lines.append(f"external-ip={turn.external_ip}")
    return lines + turn_peers.directives(turn.allow_private_peers)


def write_config(settings: Settings, runtime_dir: Path) -> Path:
    path = runtime_dir / "turnserver.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(config_lines(settings, runtime_dir)) + "\n")
    return path


def argv(settings: Settings, runtime_dir: Path, binary: str) -> list[str]:
    return [sys.executable, "-m", "supervisor.exec_with_parent", binary, "-c",
            str(write_config(settings, runtime_dir))]
