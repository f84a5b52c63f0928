"""The one way a session request is refused: a control error code (the API maps it to an HTTP
status) and a detail for the client."""

from __future__ import annotations

from protocol.vocabulary import ControlErrorCode


class SessionError(Exception):
    def __init__(self, code: ControlErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail
