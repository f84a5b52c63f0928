"""The TURN relay: coturn, run and watched by the supervisor like any other child.

Its config file lives in the private runtime directory (mode 0600), so the TURN secret never
appears on a command line. Without `turn.secret`, icey's demo pair icey/icey is configured
(and reported as a degrading warning).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from protocol.config import WILDCARD_HOSTS, Settings

TURNSERVER = "turnserver"


def log_level(line: str) -> str:
    """coturn is chatty at startup (and warns about SCTP it cannot open): only its errors count."""
    return "error" if "ERROR" in line else "debug"  # LEVELS names


def turnserver_path() -> str | None:
    return shutil.which(TURNSERVER)


def write_config(settings: Settings, runtime_dir: Path) -> Path:
    turn, host = settings.turn, settings.http.host
    lines = [f"listening-port={turn.port}", f"realm={turn.realm}", "fingerprint", "no-cli", "no-tls", "no-dtls",
             "no-multicast-peers", "no-software-attribute", "log-file=stdout", "simple-log",
             f"pidfile={runtime_dir / 'turnserver.pid'}", f"userdb={runtime_dir / 'turndb'}"]
    if host not in WILDCARD_HOSTS:
        lines += [f"listening-ip={host}", f"relay-ip={host}"]
    if turn.external_ip:
        lines.append(f"external-ip={turn.external_ip}")
    if turn.secret:
        lines += ["use-auth-secret", f"static-auth-secret={turn.secret}"]
    else:
        lines += ["lt-cred-mech", "user=icey:icey"]
    if turn.allow_local_relay:
        lines.append("allow-loopback-peers")
    path = runtime_dir / "turnserver.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def argv(settings: Settings, runtime_dir: Path, binary: str) -> list[str]:
    return [sys.executable, "-m", "supervisor.exec_with_parent", binary, "-c",
            str(write_config(settings, runtime_dir))]
