"""systemd readiness and watchdog against a real notify socket: the test binds it as systemd
would and sets NOTIFY_SOCKET / WATCHDOG_USEC for a real server."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.notify_socket import NotifySocket
from support.processes import free_port, wait_for

HEARTBEAT = {"supervisor": {"heartbeatMs": 500}}
WATCHDOG_USEC = "1000000"  # pings every 0.5 s


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


def _env(sock: NotifySocket, **extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": sock.env_value, **extra}


def test_ready_status_watchdog_and_stopping(icey, notify_socket):
    server = icey(["--demo", "--no-turn"], HEARTBEAT, _env(notify_socket, WATCHDOG_USEC=WATCHDOG_USEC))
    [ready] = wait_for(lambda: notify_socket.with_field("READY"), 15, what="READY=1")
    assert ready.fields["READY"] == "1"
    assert ready.pid == server.proc.pid  # NotifyAccess=main: only the supervisor's messages count
    assert re.fullmatch(r"[0-3]/3 sources online, 0 viewers", ready.fields["STATUS"])  # all 3 had reported
    assert server.get("/api/health").status == 200
    server.wait_all_online()
    wait_for(lambda: "3/3 sources online, 0 viewers" in notify_socket.statuses(), 10, what="STATUS 3/3")
    assert all("\n" not in s for s in notify_socket.statuses())

    pings = wait_for(lambda: len(p := notify_socket.with_field("WATCHDOG")) >= 4 and p, 10, what="pings")
    assert all(m.pid == server.proc.pid and m.fields["WATCHDOG"] == "1" for m in pings)
    gaps = [b.at - a.at for a, b in zip(pings, pings[1:], strict=False)]
    assert max(gaps) < 0.9, gaps  # every half WATCHDOG_USEC

    # A hung API: its reports stop, so do the pings; they resume when it does.
    api = server.children()["api"]
    os.kill(api, signal.SIGSTOP)
    try:
        wait_for(lambda: "The API is not answering; waiting for it" in notify_socket.statuses(), 10,
                 what="STATUS for a silent API")
        silent_since = notify_socket.messages[-1].at
        time.sleep(2.0)
        assert notify_socket.with_field("WATCHDOG", since=silent_since + 0.1) == []
    finally:
        os.kill(api, signal.SIGCONT)
    wait_for(lambda: notify_socket.with_field("WATCHDOG", since=silent_since + 0.1), 10, what="pings again")
    wait_for(lambda: notify_socket.statuses()[-1] == "3/3 sources online, 0 viewers", 10, what="STATUS back")

    # The children never saw the socket: they cannot notify in the supervisor's name.
    for pid in server.children().values():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_"))]

    assert server.terminate() == 0
    [stopping] = notify_socket.with_field("STOPPING")
    assert stopping.fields == {"STOPPING": "1", "STATUS": "Stopping"}
    assert len(notify_socket.with_field("READY")) == 1


def test_ready_without_any_camera_online(icey, tmp_path):
    """Readiness is the service's: a camera that does not answer does not hold it back. The
    abstract namespace (`@name`) works as a path does."""
    sock = NotifySocket(f"@icey-test-{os.getpid()}-{free_port()}")
    try:
        dead_camera = f"rtsp://127.0.0.1:{free_port()}/nothing-here"
        server = icey(["--source", f"cam={dead_camera}", "--no-turn"], HEARTBEAT, _env(sock))
        [ready] = wait_for(lambda: sock.with_field("READY"), 15, what="READY=1")
        assert ready.fields["STATUS"] == "0/1 sources online, 0 viewers"
        assert server.source("cam")["state"] in ("connecting", "reconnecting")
        assert sock.with_field("WATCHDOG") == []  # no WATCHDOG_USEC: no pings
    finally:
        sock.close()
