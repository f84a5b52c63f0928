"""A real systemd notify socket for tests: binds the AF_UNIX datagram socket a service manager
would ($NOTIFY_SOCKET, a path or an abstract `@name`) and records every message with the
sender's pid (SO_PASSCRED), as systemd sees them."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Notification:
    at: float  # time.monotonic() on arrival
    pid: int | None
    fields: dict[str, str]


class NotifySocket(threading.Thread):
    def __init__(self, address: str) -> None:
        """`address`: a file path, or `@name` for the abstract namespace."""
        super().__init__(daemon=True)
        self.env_value = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.1)
        self.messages: list[Notification] = []
        self._closing = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._closing.is_set():
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(32))
            except TimeoutError:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload)[0]
                elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for fd in struct.unpack(f"{len(payload) // 4}i", payload):
                        os.close(fd)  # a BARRIER=1 fd: closing it releases the sender
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(Notification(time.monotonic(), pid, fields))

    def with_field(self, key: str, since: float = 0.0) -> list[Notification]:
        return [m for m in list(self.messages) if key in m.fields and m.at >= since]

    def statuses(self) -> list[str]:
        return [m.fields["STATUS"] for m in self.with_field("STATUS")]

    def close(self) -> None:
        self._closing.set()
        self.join(2)
        self.sock.close()
