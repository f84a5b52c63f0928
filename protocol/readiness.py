"""The readiness rule, shared by `/api/ready` and `--doctor` so both answer the same question.

Ready means the service can serve (no service check fails: config, ffmpeg, ports, tls, ipc, ...)
and the sources named by `ready.requireSources` pass their `source:<id>` check (online; a
record/relay source without a configured URL passes while its worker lives). "any" is the
default so one dead camera never pulls a multi-camera box out of a load balancer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from protocol.messages import Check
from protocol.vocabulary import RequiredSources

SOURCE_CHECK_PREFIX = "source:"


def source_check_name(source_id: str) -> str:
    return SOURCE_CHECK_PREFIX + source_id


def is_source_check(check: Check) -> bool:
    return check.name.startswith(SOURCE_CHECK_PREFIX)


def is_ready(checks: Sequence[Check], require: RequiredSources | list[str],
             serving: Mapping[str, bool] | None = None) -> bool:
    """With no source checks at all, "any" is vacuous: the service checks decide (a stream-mode
    box without sources already fails its static `source` check). `serving` (source id -> whether
    it delivers) overrides what the source checks say, for a check that warns about something
    else than delivery (a failing recording)."""
    if any(c.result == "fail" for c in checks if not is_source_check(c)):
        return False
    passing = {c.name[len(SOURCE_CHECK_PREFIX):]: c.result == "pass" for c in checks if is_source_check(c)}
    if serving is not None:
        passing = {source_id: serving.get(source_id, ok) for source_id, ok in passing.items()}
    if require == "any":
        return not passing or any(passing.values())
    if require == "all":
        return all(passing.values())
    return all(passing.get(source_id, False) for source_id in require)


def overall(checks: Sequence[Check], degrading: Sequence[str], require: RequiredSources | list[str],
            serving: Mapping[str, bool] | None = None) -> tuple[bool, str]:
    """(ready, status): `error` when not ready, else `degraded` when any check warns or fails (a
    failing camera on a box that is still ready) or a degrading warning exists, else `ok`."""
    if not is_ready(checks, require, serving):
        return False, "error"
    if degrading or any(c.result != "pass" for c in checks):
        return True, "degraded"
    return True, "ok"
