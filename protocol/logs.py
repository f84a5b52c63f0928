"""One log format for every process: `<UTC time> <LEVEL> [<role>] <message>` on stderr.

The role is `supervisor`, `api` or `worker:<source id>`. Every line passes the scrubber, so
credentials in an exception text never reach the log.
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
# What a formatted line starts with; the supervisor passes such lines from children through.
LINE_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ \[")
logging.addLevelName(TRACE, "TRACE")


class _Formatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return scrub_text(f"{stamp}.{int(record.msecs):03d}Z {record.levelname} [{self.role}] {msg}")


def format_line(role: str, level: str, message: str) -> str:
    """Format a line for a role other than this process's own (raw child output)."""
    record = logging.LogRecord(role, LEVELS.get(level, logging.INFO), "", 0, message, None, None)
    return _Formatter(role).format(record)


def setup_logging(role: str, level: str = "info") -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
    # Library chatter (aioice, hypercorn access) stays at warn unless asked for.
    for noisy in ("aioice", "aiortc", "hypercorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return logging.getLogger("icey")
