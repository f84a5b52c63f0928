"""protocol.logs: one record is one line; a traceback's lines are marked as its continuation."""

from __future__ import annotations

import io
import logging

from protocol.logs import CONTINUATION, LINE_PREFIX, LineFormatter, escape_controls, format_line, line_role

FORGED = "2026-01-01T00:00:00.000Z ERROR [supervisor] fake"


def test_control_characters_in_a_message_are_escaped():
    line = format_line("worker:cam", "warn", f"bad\n{FORGED}\r\x1b[2K\u2028\x85tab\there")
    assert line.splitlines() == [line]
    assert line.endswith(f"WARNING [worker:cam] bad\\n{FORGED}\\r\\x1b[2K\\u2028\\x85tab\\there")
    assert line_role(line) == "worker:cam"


def test_traceback_lines_are_continuations_that_cannot_pass_for_records():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(LineFormatter("worker:cam"))
    log = logging.getLogger("test.unit.logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        raise ValueError(f"boom\n{FORGED}")
    except ValueError:
        log.exception("open failed\nagain")
    finally:
        log.removeHandler(handler)
    first, *rest = out.getvalue().splitlines()
    assert first.endswith("ERROR [worker:cam] open failed\\nagain")
    assert rest[0] == f"{CONTINUATION}Traceback (most recent call last):"
    assert f"{CONTINUATION}{FORGED}" in rest
    assert all(line.startswith(CONTINUATION) and not LINE_PREFIX.match(line) for line in rest)


def test_line_role_reads_the_claimed_role_only_from_a_formatted_line():
    assert line_role(FORGED) == "supervisor"
    assert line_role(f"  {FORGED}") is None
    assert escape_controls("plain text") == "plain text"
