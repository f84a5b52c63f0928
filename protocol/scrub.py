"""Scrubbing: what may be shown of a source, a path or an error in any document, event or log
line.

Values (a source, a path) are reduced to what icey shows; prose keeps its sentence and only
loses credentials and directory parts of absolute paths. Secrets registered at startup are
masked wherever they appear, so a token echoed in an exception never reaches a log or response.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]*@")
# An absolute path inside prose: starts after whitespace, a quote or "(" and has a directory part.
_ABS_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")
_secrets: list[str] = []


def register_secrets(*values: str) -> None:
    """Mask these values in every later scrub_text call (tokens, TURN secrets, passwords)."""
    for value in values:
        if value and len(value) >= 3 and value not in _secrets:
            _secrets.append(value)
    _secrets.sort(key=len, reverse=True)


def strip_userinfo(text: str) -> str:
    return _USERINFO.sub(r"\1", text)


def scrub_text(text: str) -> str:
    """Prose: credentials and secrets removed, absolute paths cut to their file name."""
    text = strip_userinfo(text)
    for secret in _secrets:
        text = text.replace(secret, "***")
    return _ABS_PATH.sub(r"\1", text)


def public_value(value: str) -> str:
    """A source or path as a value: a URL without userinfo, a local path as its file name."""
    value = strip_userinfo(value)
    for secret in _secrets:
        value = value.replace(secret, "***")
    if "://" in value:
        return value
    return re.split(r"[/\\]", value.rstrip("/\\"))[-1] if value else value
