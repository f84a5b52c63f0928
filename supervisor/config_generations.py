"""Config generations: load a candidate through the startup loader, and plan the smallest change
from the running settings to it (which workers to add, stop or restart; which keys wait for a
service restart)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

import msgspec

from protocol.config import Settings, changed_paths, changed_source_paths, cold_source_paths
from supervisor.config_loader import load_settings
from supervisor.errors import StartupError
from supervisor.flags import Flags

# Top-level settings only a service restart applies (sockets, secrets, the relay, the children's
# restart policy): a reload reports them in `requiresRestart` and keeps running the old values.
RESTART_KEYS = ("http", "tls", "auth", "turn", "stun", "webrtc", "webRoot", "supervisor", "logLevel", "metrics")


class ConfigRejected(Exception):
    """A candidate config the loader refuses; `detail` names the key path, as at startup."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ConfigReader:
    """The flags and environment the service started with: every generation is loaded with
    them, so a reload sees the same precedence as the start."""

    flags: Flags
    env: typing.Mapping[str, str]

    def load(self, *, file_raw: dict | None = None, state_sources: list | None = None) -> Settings:
        try:
            settings = load_settings(self.flags, self.env, file_raw=file_raw, state_sources=state_sources)
        except StartupError as exc:
            raise ConfigRejected(exc.message.removeprefix("Error: ")) from None
        if settings.config_error is not None:
            raise ConfigRejected(f"invalid config file '{settings.config_path}': {settings.config_error}")
        return settings


@dataclass(frozen=True)
class Plan:
    settings: Settings  # what runs next
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # only hot fields changed: applied in place
    changed: dict[str, list[str]] = field(default_factory=dict)  # updated/restarted id -> changed key paths
    restarted_for: dict[str, list[str]] = field(default_factory=dict)  # restarted id -> the paths that needed it
    requires_restart: list[str] = field(default_factory=list)
    next_index: int = 0


def plan(running: Settings, candidate: Settings, next_index: int) -> Plan:
    """A source keeps its index (it names the worker's control endpoint, which the API is
    connected to); a new source gets one never used before. A change to hot fields only
    (HOT_SOURCE_PATHS) is applied in place by the worker; any other change restarts only that
    source's worker."""
    old = {s.id: s for s in running.sources}
    sources = []
    added, restarted, updated = [], [], []
    changes: dict[str, list[str]] = {}
    colds: dict[str, list[str]] = {}
    for src in candidate.sources:
        before = old.get(src.id)
        if before is None:
            sources.append(msgspec.structs.replace(src, index=next_index))
            next_index += 1
            added.append(src.id)
        else:
            sources.append(msgspec.structs.replace(src, index=before.index))
            changed = changed_source_paths(before, src)
            if changed:
                changes[src.id] = changed
            if cold := cold_source_paths(changed):
                restarted.append(src.id)
                colds[src.id] = cold
            elif changed:
                updated.append(src.id)
    removed = [sid for sid in old if candidate.source(sid) is None]
    old_raw, new_raw = msgspec.to_builtins(running), msgspec.to_builtins(candidate)
    requires_restart = [p for key in RESTART_KEYS for p in changed_paths(old_raw[key], new_raw[key], key)]
    kept = {f.name: getattr(running, f.name) for f in msgspec.structs.fields(Settings)
            if f.encode_name in RESTART_KEYS}
    settings = msgspec.structs.replace(candidate, sources=sources, **kept)
    return Plan(settings, added, removed, restarted, updated, changes, colds, requires_restart, next_index)
