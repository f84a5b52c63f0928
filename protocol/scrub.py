"""Scrubbing: what may be shown of a source, a path or an error in any document, event or log
line.

Camera URLs are hostile to regexes: passwords hold `@`, `/`, quotes and spaces, and some cameras
put credentials in the query (`?user=admin&password=x`) or the path (XMEye's
`/user=admin_password=x_channel=1`). So each source URL is parsed once at load
(`register_source_url`): its password, raw and percent-decoded, and its credential-looking query
and path values become registered secrets, masked wherever they appear (an FFmpeg error quoting
the URL, a traceback). On top of that, text is cleaned structurally: userinfo is cut from any
URL, credential-looking `key=value` pairs are masked, absolute paths are cut to their file name.
A source shown as a value is rebuilt from its parsed parts: `scheme://host:port/path?query`.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import NamedTuple

MASK = "***"
MIN_SECRET_LEN = 3  # masking one- or two-letter strings would shred every message

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A host (name, IPv4, [IPv6]) with an optional port, ending where the path, query or URL ends.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::\d{1,5})?(?=[/?#\s'\"),;]|$)")
# Keys whose values are credentials, in a query (`&password=x`) or a path (`_pwd=x_`).
_CREDENTIAL_KEY = r"(?:pass(?:word|wd)?|pwd|psw|secret|token|auth|api[_-]?key|key|credentials?|sig(?:nature)?)"
# A query or prose pair ends at `&`, `;`, `#`, a quote or whitespace; an XMEye path pair also at
# `_` and `/` (its separators: a password with `_` in it cannot be written there at all).
_CREDENTIAL_PAIRS = (
    re.compile(rf"(?i)((?:^|[?&;\s]){_CREDENTIAL_KEY}=)([^&;#\s'\"]*)"),
    re.compile(rf"(?i)((?:[/_]){_CREDENTIAL_KEY}=)([^_/?&;#\s'\"]*)"),
)
# An absolute path inside prose: starts after whitespace, a quote or "(" and has a directory part.
_ABS_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")
_secrets: list[str] = []


class ParsedUrl(NamedTuple):
    scheme: str  # with "://"
    userinfo: str | None
    host: str
    rest: str  # path, query and fragment


def parse_url(url: str) -> ParsedUrl | None:
    """Split a URL at its LAST plausible `@` before a host: `rtsp://admin:p@ss@cam/s` has the
    userinfo `admin:p@ss`. None when the text is not a URL."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    scheme, rest = match.group(0), url[match.end():]
    for at in reversed([i for i, c in enumerate(rest) if c == "@"]):
        host = _HOST.match(rest, at + 1)
        if host is not None:
            return ParsedUrl(scheme, rest[:at], host.group(0), rest[host.end():])
    host = _HOST.match(rest)
    if host is None:
        return ParsedUrl(scheme, None, "", rest)
    return ParsedUrl(scheme, None, host.group(0), rest[host.end():])


def url_secrets(url: str) -> list[str]:
    """The values of a URL that must never be shown: its password (raw and percent-decoded) and
    every credential-looking query or path value."""
    parsed = parse_url(url)
    if parsed is None:
        return []
    found: list[str] = []
    if parsed.userinfo is not None and ":" in parsed.userinfo:
        password = parsed.userinfo.split(":", 1)[1]
        found += [password, urllib.parse.unquote(password)]
    for pattern in _CREDENTIAL_PAIRS:
        for match in pattern.finditer(parsed.rest):
            value = match.group(2)
            found += [value, urllib.parse.unquote_plus(value)]
    return [value for value in found if value]


def register_secrets(*values: str) -> None:
    """Mask these values in every later scrub_text call (tokens, TURN secrets, passwords)."""
    for value in values:
        if value and len(value) >= MIN_SECRET_LEN and value not in _secrets:
            _secrets.append(value)
    _secrets.sort(key=len, reverse=True)


def register_source_url(url: str) -> None:
    register_secrets(*url_secrets(url))


def _mask_secrets(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, MASK)
    return text


def _mask_pairs(text: str) -> str:
    for pattern in _CREDENTIAL_PAIRS:
        text = pattern.sub(lambda m: m.group(1) + (MASK if m.group(2) else ""), text)
    return text


def strip_userinfo(text: str) -> str:
    """Every URL in the text without its userinfo."""
    out, pos = [], 0
    for match in _SCHEME.finditer(text):
        if match.start() < pos:
            continue
        end = _url_end(text, match.end())
        parsed = parse_url(text[match.start():end])
        if parsed is None or parsed.userinfo is None:
            continue
        out += [text[pos:match.start()], parsed.scheme, parsed.host, parsed.rest]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _url_end(text: str, start: int) -> int:
    """Where a URL that starts in prose ends: at whitespace (a password with a space in it is
    caught by its registration, not here)."""
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return end


def scrub_credentials(text: str) -> str:
    """Prose with registered secrets, URL userinfo and credential-looking values masked."""
    return _mask_pairs(strip_userinfo(_mask_secrets(text)))


def scrub_text(text: str) -> str:
    """Prose for a response or log: credentials removed, absolute paths cut to their file name."""
    return _ABS_PATH.sub(r"\1", scrub_credentials(text))


def public_value(value: str) -> str:
    """A source or path as a value: a URL rebuilt as scheme://host:port/path?query with
    credentials masked; a local path as its file name."""
    value = _mask_secrets(value)
    parsed = parse_url(value)
    if parsed is not None:
        return _mask_pairs(parsed.scheme + parsed.host + parsed.rest)
    return re.split(r"[/\\]", value.rstrip("/\\"))[-1] if value else value
