"""The driver's handle on one viewer client process (viewers.py): its spec goes in a file, its stdout lines
are read by a thread into a queue, commands go to its stdin."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from pathlib import Path

from media_cpu.processes import self_command, spawn, stop_proc


class Client:
    """One viewer client process, from start to `BYE`."""

    def __init__(self, spec: dict, tmp: Path, prefix: list[str], tag: str) -> None:
        spec_path = tmp / f"client-{tag}.json"
        spec_path.write_text(json.dumps(spec))
        self.proc = spawn([*prefix, *self_command("--client", str(spec_path))],
                          tmp / f"client-{tag}.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, tag: str, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"client {self.proc.pid}: no {tag} within {timeout:.0f}s") from None
            if line is None:
                raise RuntimeError(f"client {self.proc.pid} exited (code {self.proc.poll()}) before {tag}")
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1:])

    def send(self, cmd: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write((cmd + "\n").encode())
            self.proc.stdin.flush()

    def finish(self) -> None:
        self.send("quit")
        with contextlib.suppress(RuntimeError):
            self.expect("BYE", 20)
        stop_proc(self.proc, timeout=5.0)
