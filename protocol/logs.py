"""One log format for every process: `<UTC time> <LEVEL> [<role>] <message>` on stderr.

The role is `supervisor`, `api` or `worker:<source id>`. Every line passes the scrubber, so
credentials in an exception text never reach the log. A record is exactly one line: control
characters in a message are escaped (a source URL or an error text cannot start a line of its
own that reads like another process's record); a traceback keeps its lines, each marked as a
continuation of its record.
"""

from __future__ import annotations

import logging
import re
import sys
import time

from protocol.scrub import scrub_text

TRACE = 5
LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}
# What a formatted line starts with (group 1: the role); the supervisor passes such lines from a
# child through only when the role is that child's own.
LINE_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ \[([^\]]*)\]")
# Starts every traceback line after a record's first: no record starts with a space.
CONTINUATION = "  | "
# C0, DEL, C1 (NEL among them) and the Unicode line/paragraph separators: all end or rewrite a
# line in some terminal or log reader.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
logging.addLevelName(TRACE, "TRACE")


def _escape_one(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """`text` on one line: `\\n` for a newline, `\\xNN` / `\\uNNNN` for other control characters."""
    return _CONTROL.sub(_escape_one, text)


def line_role(line: str) -> str | None:
    """The role a formatted line claims, or None when the line is not in our format."""
    match = LINE_PREFIX.match(line)
    return match.group(1) if match else None


class LineFormatter(logging.Formatter):
    """A record as one line for `role`; a traceback follows on lines that start with CONTINUATION."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        # Scrub before escaping: the scrubber finds URLs and paths by the whitespace around them.
        msg = escape_controls(scrub_text(record.getMessage()))
        if record.exc_info:
            lines = scrub_text(self.formatException(record.exc_info)).splitlines()
            msg += "".join(f"\n{CONTINUATION}{escape_controls(line)}" for line in lines)
        return f"{stamp}.{int(record.msecs):03d}Z {record.levelname} [{self.role}] {msg}"


def format_line(role: str, level: str, message: str) -> str:
    """Format a line for a role other than this process's own (raw child output)."""
    record = logging.LogRecord(role, LEVELS.get(level, logging.INFO), "", 0, message, None, None)
    return LineFormatter(role).format(record)


def setup_logging(role: str, level: str = "info") -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
    # Library chatter (aioice, hypercorn access) stays at warn unless asked for.
    for noisy in ("aioice", "aiortc", "hypercorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return logging.getLogger("icey")
