"""Service-wide and per-client-address caps on WebRTC sessions (`webrtc.maxSessions`,
`webrtc.maxSessionsPerAddress`).

Counted here because the API is the one process that sees every offer, whatever its source.
A session counts from the moment its offer is admitted: while the worker negotiates it
(`pending`), then as answered until the worker's next state report lists it (reports follow a
change within milliseconds; ANSWERED_TTL_SEC bounds the wait), then as reported. The check and
the hold happen with no await in between, so concurrent offers cannot all pass the same check.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from api.state_view import StateView
from protocol.config import WebRtcConfig

ANSWERED_TTL_SEC = 5.0


class AdmissionRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Admission:
    """One admitted offer: `answered(session_id)` once the worker created the session, else `cancel()`."""

    owner: SessionAdmission
    ticket: int
    remote: str

    def answered(self, session_id: str) -> None:
        self.owner.pending.pop(self.ticket, None)
        self.owner.answered[session_id] = (self.remote, time.monotonic() + ANSWERED_TTL_SEC)

    def cancel(self) -> None:
        self.owner.pending.pop(self.ticket, None)


class SessionAdmission:
    def __init__(self, limits: WebRtcConfig, view: StateView) -> None:
        self.limits, self.view = limits, view
        self.pending: dict[int, str] = {}  # ticket -> remote address
        self.answered: dict[str, tuple[str, float]] = {}  # session id -> (remote address, until)
        self._tickets = itertools.count()

    def _remotes(self) -> list[str]:
        """The client address of every session counted now."""
        reported = {info.id: info.remote for received in self.view.workers.values()
                    for info in received.worker.sessions}
        now = time.monotonic()
        for session_id, (_, until) in list(self.answered.items()):
            if session_id in reported or until < now:
                del self.answered[session_id]
        return [*reported.values(), *(remote for remote, _ in self.answered.values()), *self.pending.values()]

    def admit(self, remote: str) -> Admission:
        """Hold a session slot for `remote`, or raise AdmissionRefused (503 service full, 429
        this address has too many)."""
        remotes = self._remotes()
        limit, per_address = self.limits.max_sessions, self.limits.max_sessions_per_address
        if limit and len(remotes) >= limit:
            raise AdmissionRefused(503, f"the server has reached its limit of {limit} WebRTC sessions")
        if per_address and sum(1 for r in remotes if r == remote) >= per_address:
            raise AdmissionRefused(429, f"{remote} has reached the limit of {per_address} WebRTC sessions per address")
        ticket = next(self._tickets)
        self.pending[ticket] = remote
        return Admission(self, ticket, remote)
