"""The one source classifier: every process agrees on what kind of source a URL is."""

from __future__ import annotations

import re
from typing import NamedTuple

from protocol.vocabulary import SourceKindName

DEMO_SCHEME = "demo://"
_LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "srt://", "udp://", "tcp://", "rtp://",
                 "http://", "https://")
_DEVICE_PREFIXES = ("v4l2:", "/dev/")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# What a worker can open; any other scheme is refused at config load instead of retried forever.
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp", "rtp", "http", "https", "file", "demo")
SUPPORTED_KINDS = (", ".join(f"{scheme}://" for scheme in URL_SCHEMES)
                   + ", v4l2:/dev/videoN, /dev/videoN, or a local file path")


class SourceKind(NamedTuple):
    kind: SourceKindName
    remote: bool  # lives on another host (not resolved against the config dir)
    live: bool  # never looped, never paced: it delivers in real time by itself


def classify(url: str) -> SourceKind:
    if not url:
        return SourceKind("none", False, False)
    lower = url.lower()
    if lower.startswith(DEMO_SCHEME):
        return SourceKind("demo", False, True)
    if lower.startswith(("rtsp://", "rtsps://")):
        return SourceKind("rtsp", True, True)
    if lower.startswith(_DEVICE_PREFIXES):
        return SourceKind("device", False, True)
    if lower.startswith("file://"):
        return SourceKind("file", False, False)
    if _URL.match(url):
        return SourceKind("url", True, lower.startswith(_LIVE_SCHEMES))
    return SourceKind("file", False, False)


def local_path(url: str) -> str | None:
    """The filesystem path of a file source, else None."""
    kind = classify(url).kind
    if kind != "file":
        return None
    return url[len("file://"):] if url.lower().startswith("file://") else url


def unsupported_scheme(url: str) -> str | None:
    """The scheme of a source no worker can open (`gopher://x`, `bogus:thing`), else None. A
    `name:` ahead of any `/` reads as a scheme: a local file named so is written `./name:...`."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme == "v4l2" or (scheme in URL_SCHEMES and url[match.end():].startswith("//")):
        return None
    return scheme
