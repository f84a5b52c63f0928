"""A private network namespace for tests that need a client the server sees as another host:
lo plus a veth pair, 10.203.0.1/24 and 10.203.0.2/24. Nothing in it can reach outside. Needs
root (`ip netns`); see ../shared/notes/examples/netns_setup.sh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVER_IP = "10.203.0.1"
LAN_CLIENT_IP = "10.203.0.2"
CLIENT = Path(__file__).with_name("netns_http.py")


class Netns:
    def __init__(self) -> None:
        self.name = f"icey-test-{os.getpid()}"

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def create(self) -> Netns:
        self.delete()  # a namespace left by a killed run with the same pid
        self._ip("netns", "add", self.name)
        self._ip("-n", self.name, "link", "set", "lo", "up")
        self._ip("-n", self.name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        for dev, address in (("d0", SERVER_IP), ("d1", LAN_CLIENT_IP)):
            self._ip("-n", self.name, "addr", "add", f"{address}/24", "dev", dev)
            self._ip("-n", self.name, "link", "set", dev, "up")
        return self

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def requests(self, source: str, target: str, calls: list[dict]) -> list[dict]:
        """HTTP calls from `source` to `target` (`ip:port`) inside the namespace, once /api/health
        answers there; each call is {method, path, headers?, body?}, each answer {status, headers, body}."""
        result = subprocess.run(self.command([sys.executable, str(CLIENT), source, target]),
                                input=json.dumps(calls), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
