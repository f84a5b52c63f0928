"""systemd's notify protocol, spoken directly: one AF_UNIX datagram of `KEY=value` lines to
$NOTIFY_SOCKET (a path, or an abstract name written `@name`). Ten lines do not need a library.

The variables are taken out of the environment when read, so the children (API, workers,
coturn, which may speak the protocol itself) never notify systemd in the supervisor's name.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("icey.notify")
_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class SdNotify:
    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_sec = watchdog_usec / 1e6 if watchdog_usec else None
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)

    @classmethod
    def from_environ(cls) -> SdNotify:
        """As sd_notify(3) and sd_watchdog_enabled(3) read them; WATCHDOG_PID, when set, must be us."""
        env = {name: os.environ.pop(name, None) for name in _VARIABLES}
        usec = env["WATCHDOG_USEC"]
        for_us = env["WATCHDOG_PID"] in (None, str(os.getpid()))
        watchdog = int(usec) if usec and usec.isdigit() and int(usec) > 0 and for_us else None
        return cls(env["NOTIFY_SOCKET"], watchdog)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str) -> None:
        """`send(READY="1", STATUS="...")`; nothing happens without a socket. A full or gone
        socket drops the message: systemd's own state decides what that means."""
        if self._sock is None or self.address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("sd_notify %s failed: %s", list(fields), exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
