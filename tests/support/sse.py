"""A minimal Server-Sent Events reader for tests (a real HTTP client on a thread)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request


class SseClient(threading.Thread):
    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.timeout = url, headers or {}, timeout
        self.events: list[dict] = []  # {"id", "event", "data", "at"}
        self.status: int | None = None
        self.ended = threading.Event()
        self._response = None

    def run(self) -> None:
        req = urllib.request.Request(self.url, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                self._response = response
                self.status = response.status
                current: dict = {}
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if not line:
                        if "data" in current:
                            current["at"] = time.monotonic()
                            self.events.append(current)
                        current = {}
                    elif not line.startswith(":") and ":" in line:
                        key, value = line.split(":", 1)
                        current[key] = json.loads(value) if key == "data" else value.strip()
        except urllib.error.HTTPError as e:
            self.status = e.code
        except (OSError, ValueError):  # timeouts are OSErrors
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        if self._response is not None:
            try:
                self._response.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # unblock the reading thread
            except (AttributeError, OSError):
                pass

    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [e for e in self.events if predicate(e)]
            if matching:
                return matching
            time.sleep(0.05)
        raise AssertionError(f"no matching event within {timeout}s; got {[e.get('event') for e in self.events]}")
