"""Run inside a network namespace by support.netns: `netns_http.py SOURCE_IP HOST:PORT`, calls as
JSON on stdin, answers as JSON on stdout. Waits for /api/health first (the server may be starting)."""

from __future__ import annotations

import http.client
import json
import sys
import time


def call(source: str, target: str, method: str, path: str, headers: dict | None = None,
         body: str | None = None) -> dict:
    host, port = target.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body.encode() if body is not None else None, headers=headers or {})
        response = conn.getresponse()
        return {"status": response.status, "headers": {k.lower(): v for k, v in response.getheaders()},
                "body": response.read().decode(errors="replace")}
    finally:
        conn.close()


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    calls = json.load(sys.stdin)
    deadline = time.monotonic() + 30
    while True:
        try:
            if call(source, target, "GET", "/api/health")["status"] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit("the server never answered /api/health")
        time.sleep(0.2)
    json.dump([call(source, target, **c) for c in calls], sys.stdout)


main()
