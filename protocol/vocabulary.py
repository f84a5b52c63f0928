"""Every enumerated value that crosses a process boundary or reaches a client, as a `Literal`
alias: msgspec rejects a typo at decode, a type checker at the producer, and a grep for a quoted
value finds where it is produced and consumed."""

from __future__ import annotations

from typing import Literal

# `stalled`: open, but no packet for the stall timeout (the worker is making its reader reconnect).
SourceState = Literal["starting", "connecting", "online", "stalled", "reconnecting", "offline", "failed", "stopped"]
SessionKind = Literal["whep", "whip"]
SessionState = Literal["connecting", "active", "disconnected", "closed"]
ProcessState = Literal["running", "restarting", "given-up", "stopped"]
RuntimeState = Literal["starting", "running", "stopping"]
CheckResult = Literal["pass", "warn", "fail"]
DeliveryMode = Literal["passthrough", "transcode"]
StreamType = Literal["video", "audio"]
Mode = Literal["stream", "record", "relay"]
SourceKindName = Literal["rtsp", "file", "device", "url", "demo", "none"]
RequiredSources = Literal["any", "all"]  # ready.requireSources, when not a list of source ids
# "internal": the worker failed unexpectedly while answering (its log has the traceback).
ControlErrorCode = Literal["bad_request", "not_found", "conflict", "busy", "unavailable", "internal",
                           "precondition_failed"]
EventType = Literal["motion.start", "motion.end", "speech.start", "speech.stop", "snapshot", "clip",
                    "source.online", "source.offline", "session.opened", "session.closed",
                    "record.failed", "record.resumed", "source.removed", "config.applied", "config.rejected"]
# Whether a source's recording works: "off" when it records nothing, "failing" while writes fail.
RecordState = Literal["recording", "failing", "off"]
# What a worker writes to disk: segments (continuous or a WHIP publisher's), snapshots, clips.
RecordTarget = Literal["recording", "snapshots", "clips"]
ConfigOrigin = Literal["file", "api", "signal"]  # what made the supervisor load a config generation
SourceEditOp = Literal["add", "replace", "patch", "remove"]
