"""The editable source list (raw entries, as an operator wrote them) and the edits the API makes
to it, written back atomically: to the config file's `sources` (other keys kept as they are), or
to the state file when the sources come from flags/env.

Check, write and apply run in one synchronous step on the supervisor's event loop, which is the
lock: two edits never interleave, and a stale `If-Match` is refused before anything happens."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from protocol.config import Settings
from protocol.messages import EditSource
from protocol.scrub import public_value
from protocol.vocabulary import ControlErrorCode


class EditRefused(Exception):
    def __init__(self, code: ControlErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _read_json(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EditRefused("bad_request", f"cannot read '{path}': {exc}") from None
    if not isinstance(raw, dict):
        raise EditRefused("bad_request", f"'{path}': expected a JSON object at the top level")
    return raw


def current(settings: Settings) -> list[dict[str, Any]]:
    """The list as written now (so an edit never drops what is in the file), each entry's id made
    explicit the way the loader derives a missing one; the running sources when nothing is written."""
    path = Path(settings.edits_path)
    raw = _read_json(path) if settings.edits_kind == "config" or path.is_file() else {}
    written = raw.get("sources")
    if not isinstance(written, list):
        return [{"id": s.id, "source": s.url} for s in settings.sources]
    entries = [dict(e) if isinstance(e, dict) else {} for e in written]
    used = {e["id"] for e in entries if isinstance(e.get("id"), str) and e["id"]}
    for n, entry in enumerate(entries):
        if not entry.get("id"):
            k = n + 1
            while f"source-{k}" in used:
                k += 1
            entry["id"] = f"source-{k}"
            used.add(entry["id"])
    return entries


def scrubbed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "source": public_value(e["source"])} if isinstance(e.get("source"), str) and e["source"] else e
            for e in entries]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def edited(entries: list[dict[str, Any]], edit: EditSource) -> list[dict[str, Any]]:
    ids = [e.get("id") for e in entries]
    if edit.op == "add":
        new_id = edit.entry.get("id")
        if not isinstance(new_id, str) or not new_id:
            raise EditRefused("bad_request", "a new source needs an `id`")
        if new_id in ids:
            raise EditRefused("conflict", f"a source with id '{new_id}' exists already")
        return [*entries, dict(edit.entry)]
    if edit.source_id not in ids:
        raise EditRefused("not_found", f"no source with id '{edit.source_id}'")
    at = ids.index(edit.source_id)
    if edit.op == "remove":
        return entries[:at] + entries[at + 1:]
    entry = dict(edit.entry) if edit.op == "replace" else merge_patch(entries[at], edit.entry)
    if entry.setdefault("id", edit.source_id) != edit.source_id:
        raise EditRefused("bad_request", "a source's `id` cannot change; remove it and add a new one")
    return entries[:at] + [entry] + entries[at + 1:]


def document(settings: Settings, entries: list[dict[str, Any]]) -> dict:
    """The file's next content: the config file with `sources` replaced (a `media.source` moves
    into the list, so it cannot come back once removed), or the state file."""
    if settings.edits_kind != "config":
        return {"sources": entries}
    raw = _read_json(Path(settings.edits_path))
    media = raw.get("media")
    if isinstance(media, dict) and media.get("source"):
        raw["media"] = {k: v for k, v in media.items() if k != "source"}
    return {**raw, "sources": entries}


def write_atomically(path: Path, doc: dict) -> None:
    """Temp file in the same directory, fsync, rename over: a reader (or a crash) sees the old
    file or the new one, never half of one. Raises EditRefused when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise EditRefused("unavailable", f"cannot write '{path}': {exc.strerror or exc}; nothing was changed"
                          ) from None
