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
