"""What a `demo://<pattern>?size=WxH&rate=N&tone=HZ&gop=N&move=S&period=S&burst=ON,PERIOD` URL may
say. The worker builds a lavfi filter graph from it, and lavfi can read and write files (`movie=`,
`metadata=...:file=`), so the pattern is one of a fixed list and every parameter a number in
range. The supervisor checks at config load (a bad URL is a config error), the worker again
before it builds the graph."""

from __future__ import annotations

import re
import urllib.parse
from typing import NamedTuple

# lavfi's test sources that take `size` and `rate`, and the synthetic scenes of workers/source/demo.py.
LAVFI_PATTERNS = ("testsrc", "testsrc2", "smptebars", "smptehdbars", "rgbtestsrc", "yuvtestsrc", "pal75bars",
                  "pal100bars", "colorspectrum", "mandelbrot", "life", "cellauto", "color")
SCENE_PATTERNS = ("square", "lightstep")
PATTERNS = LAVFI_PATTERNS + SCENE_PATTERNS
DEFAULT_PATTERN = "testsrc2"
# size: even (yuv420p) width and height within 16..3840 x 16..2160.
MIN_SIDE, MAX_WIDTH, MAX_HEIGHT = 16, 3840, 2160
_INT_RANGES = {"rate": (1, 60), "tone": (20, 20_000), "gop": (1, 600)}
_SECONDS = (0.1, 600.0)  # move, period, and burst's period
PARAMETERS = ("size", "rate", "tone", "gop", "move", "period", "burst")
_INT = re.compile(r"[0-9]{1,6}")
_DECIMAL = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_SIZE = re.compile(r"([0-9]{1,5})x([0-9]{1,5})")


class DemoUrlError(ValueError):
    """The demo URL says something outside the whitelist; the message names what and what is allowed."""


class DemoParams(NamedTuple):
    pattern: str
    width: int
    height: int
    rate: int
    tone: int
    gop: int
    move: float  # scenes: the square moves for `move` s of every `period` s, then rests
    period: float
    burst: tuple[float, float] | None  # the tone sounds for the first ON s of every PERIOD s (else always)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def _int(query: dict[str, str], key: str, default: int) -> int:
    low, high = _INT_RANGES[key]
    value = query.get(key)
    if value is None:
        return default
    if not _INT.fullmatch(value) or not low <= int(value) <= high:
        raise DemoUrlError(f"demo parameter {key}={value}: expected a whole number {low}..{high}")
    return int(value)


def _seconds(key: str, value: str, low: float = _SECONDS[0]) -> float:
    if not _DECIMAL.fullmatch(value) or not low <= float(value) <= _SECONDS[1]:
        raise DemoUrlError(f"demo parameter {key}={value}: expected seconds {low:g}..{_SECONDS[1]:g}")
    return float(value)


def _size(value: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(value)
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not (MIN_SIDE <= width <= MAX_WIDTH and MIN_SIDE <= height <= MAX_HEIGHT and width % 2 == height % 2 == 0):
        raise DemoUrlError(f"demo parameter size={value}: expected WxH, even numbers within "
                           f"{MIN_SIDE}..{MAX_WIDTH} x {MIN_SIDE}..{MAX_HEIGHT}")
    return width, height


def _query(text: str) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True) if text else []
    except ValueError:
        raise DemoUrlError("malformed demo parameters: expected key=value pairs joined by '&'") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key not in PARAMETERS:
            raise DemoUrlError(f"unknown demo parameter '{key}'; allowed: {', '.join(PARAMETERS)}")
        if key in query:
            raise DemoUrlError(f"demo parameter '{key}' given twice")
        query[key] = value
    return query


def parse_demo_url(url: str) -> DemoParams:
    """The checked parameters of a `demo://` URL; raises DemoUrlError."""
    parsed = urllib.parse.urlsplit(url)
    pattern = parsed.netloc or DEFAULT_PATTERN
    if pattern not in PATTERNS:  # named without any `user:password@`
        raise DemoUrlError(f"unknown demo pattern '{pattern.rpartition('@')[2]}'; allowed: {', '.join(PATTERNS)}")
    if parsed.path or parsed.fragment:
        raise DemoUrlError("a demo URL is demo://<pattern>?<parameters>, with nothing after the pattern but "
                           "the parameters")
    query = _query(parsed.query)
    width, height = _size(query.get("size", "640x360"))
    rate = _int(query, "rate", 25)
    burst = None
    if "burst" in query:
        on, sep, period = query["burst"].partition(",")
        if not sep:
            raise DemoUrlError(f"demo parameter burst={query['burst']}: expected ON,PERIOD in seconds")
        burst = (_seconds("burst", on, low=0.0), _seconds("burst", period))
    return DemoParams(pattern=pattern, width=width, height=height, rate=rate, tone=_int(query, "tone", 440),
                      gop=_int(query, "gop", rate), move=_seconds("move", query.get("move", "3")),
                      period=_seconds("period", query.get("period", "8")), burst=burst)
