"""The real `icey-server` CLI as a one-shot subprocess, for exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "supervisor", *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=30)


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]
