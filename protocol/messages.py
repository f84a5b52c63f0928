"""Wire messages of the ZeroMQ state plane and control channel (msgpack via msgspec).

State plane (PUB -> the API's SUB): workers send `WorkerState`, the supervisor sends
`SupervisorState`; each is a full snapshot, so a restarted API is whole again after one
heartbeat. Control channel (API DEALER -> worker ROUTER): `ControlRequest` / `ControlReply`.
Supervisor channel (API DEALER -> supervisor ROUTER): `SupervisorRequest` / `SupervisorReply`,
for what only the supervisor can do to a process (restart a worker).
Times named `*_mono` are CLOCK_MONOTONIC seconds, which all processes on one host share.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocol.config import SourceSettings
from protocol.events import SourceEvent
from protocol.vocabulary import (
    CheckResult,
    ConfigOrigin,
    ControlErrorCode,
    DeliveryMode,
    ProcessState,
    RecordState,
    RuntimeState,
    SessionKind,
    SessionState,
    SourceEditOp,
    SourceState,
    StreamType,
)


class Check(msgspec.Struct, frozen=True):
    name: str
    result: CheckResult
    detail: str


class VideoInfo(msgspec.Struct, rename="camel"):
    codec: str
    width: int
    height: int
    fps: float
    bitrate_kbps: int
    keyframe_interval_sec: float | None


class AudioInfo(msgspec.Struct, rename="camel"):
    codec: str
    sample_rate: int
    channels: int


class SessionInfo(msgspec.Struct, rename="camel", kw_only=True):
    """One WebRTC peer of a source (a WHEP viewer or a WHIP publisher)."""

    id: str
    kind: SessionKind
    remote: str
    state: SessionState
    created_at: str  # RFC 3339 UTC
    bytes_sent: int = 0
    packets_sent: int = 0
    bytes_received: int = 0
    packets_received: int = 0
    dropped_units: int = 0  # media units a lagging viewer (or worker loop) did not get


class VisionStatus(msgspec.Struct, rename="camel", kw_only=True):
    enabled: bool = True
    active: bool = False  # motion in progress
    threshold: float | None = None  # the motion threshold in effect
    last_score: float | None = None
    events: int = 0
    queue_drops: int = 0
    analysis_fps: float = 0.0
    latency_ms: float | None = None  # frame arrival to analysis done
    last_snapshot_url: str | None = None
    last_clip_url: str | None = None
    last_error: str | None = None  # the snapshot or clip write failing now (scrubbed); None when they work


class SpeechStatus(msgspec.Struct, rename="camel", kw_only=True):
    enabled: bool = True
    active: bool = False  # voice in progress
    level: float = 0.0
    peak: float = 0.0
    start_threshold: float | None = None  # in effect
    stop_threshold: float | None = None
    events: int = 0
    queue_drops: int = 0


class RecordStatus(msgspec.Struct, rename="camel", kw_only=True):
    """Whether the source's segments (continuous, or its WHIP publisher's) reach the disk."""

    state: RecordState = "off"
    last_error: str | None = None  # the last write error (scrubbed); kept after recording resumed
    bytes_free: int | None = None  # on the recording directory's filesystem


class SourceStatus(msgspec.Struct, rename="camel", kw_only=True):
    """What the worker knows of its source: the reader's view of a camera or file, or for a
    record/relay source, whether its WHIP publisher is there."""

    state: SourceState = "starting"
    online_since: str | None = None  # RFC 3339 UTC
    last_error: str | None = None  # already scrubbed by the worker
    next_retry_at: str | None = None  # RFC 3339 UTC
    reconnects: int = 0  # outages: times an open source was lost
    reconnect_attempts: int = 0  # reopenings tried, successful or not
    video: VideoInfo | None = None
    audio: AudioInfo | None = None
    last_packet_mono: float | None = None
    dropped_units: int = 0  # packets a tap could not take (malformed): dropped, the stream went on


class WorkerCounters(msgspec.Struct, kw_only=True):
    """Cumulative counts kept by the worker process (never sums over what is live now), so they
    only grow while it runs and survive an API restart; they start at 0 with a new worker."""

    received_video_bytes: int = 0  # from the source: the camera or file, or the WHIP publisher
    received_audio_bytes: int = 0
    sent_bytes: int = 0  # media to viewers, sessions that have closed included
    recorded_bytes: int = 0  # media written to continuous-recording segments
    recorded_segments: int = 0  # segments started


class WorkerState(msgspec.Struct, tag="worker", kw_only=True):
    """A worker's full view of its source, sent on every change and every heartbeat."""

    source_id: str
    pid: int
    started_mono: float  # when this worker process started: orders snapshots across restarts
    seq: int
    source: SourceStatus
    sessions_active: int = 0
    sessions_total: int = 0
    sessions: list[SessionInfo] = []
    vision: VisionStatus | None = None
    speech: SpeechStatus | None = None
    record: RecordStatus | None = None  # None: this worker records nothing
    counters: WorkerCounters = msgspec.field(default_factory=WorkerCounters)


class ProcessInfo(msgspec.Struct, kw_only=True):
    """The supervisor's view of one child process."""

    role: str  # api | worker:<id> | turn | zygote
    pid: int | None
    state: ProcessState
    restarts: int = 0
    started_mono: float | None = None
    last_exit_code: int | None = None
    next_restart_mono: float | None = None
    spawn_error: str | None = None  # why the last start failed (exec error, EMFILE); None once one succeeds
    rss_bytes: int | None = None  # read by the supervisor from /proc at each heartbeat
    cpu_seconds: float | None = None  # user + system, all threads, of the running process


class StorageInfo(msgspec.Struct, kw_only=True):
    """Free space where recordings and artifacts go, read by the supervisor at each heartbeat."""

    path: str  # as the operator configured it; scrubbed where it is shown
    free_bytes: int


class ConfigInfo(msgspec.Struct, rename="camel", kw_only=True):
    """The configuration generation the service runs: `requiresRestart` lists the key paths
    changed in the file that only a service restart applies (they are not applied until then);
    `updated` / `restarted` the sources this generation changed in place / with a new worker."""

    generation: int = 1
    loaded_at: str = ""  # RFC 3339 UTC
    source: ConfigOrigin = "file"
    requires_restart: list[str] = []
    updated: list[str] = []
    restarted: list[str] = []


class SupervisorState(msgspec.Struct, tag="supervisor", kw_only=True):
    """Service-wide facts that must survive an API restart."""

    pid: int
    seq: int
    runtime_state: RuntimeState
    started_mono: float
    checks: list[Check]  # static preflight checks, in contract order, before the source checks
    warnings: list[str]
    degrading_warnings: list[str]
    api: ProcessInfo
    workers: dict[str, ProcessInfo]
    turn: ProcessInfo | None = None  # the TURN relay (coturn), when enabled and installed
    zygote: ProcessInfo | None = None  # the worker template, when supervisor.zygote is on
    storage: list[StorageInfo] = []
    config: ConfigInfo = msgspec.field(default_factory=ConfigInfo)


class ApiReport(msgspec.Struct, tag="api-report", kw_only=True):
    """The API's word to the supervisor at every heartbeat once it serves HTTP (report endpoint):
    what the supervisor tells systemd (READY=1, STATUS=, WATCHDOG=1) is decided on it."""

    pid: int
    sources: int
    reported: int  # sources whose running worker has sent its state, or whose worker was given up
    online: int
    viewers: int  # active WHEP sessions over all sources


class EventMessage(msgspec.Struct, tag="event"):
    """A SourceEvent on the state plane (events are not state: the API keeps a bounded backlog).
    `pid` is the sender's: a source's worker (checked like its WorkerState) or the supervisor."""

    event: SourceEvent
    pid: int


StateMessage = WorkerState | SupervisorState | EventMessage


class DescribeRequest(msgspec.Struct, tag="describe"):
    """Ask a worker for its live view of the source (streams as the demuxer sees them)."""


# The largest SDP offer taken: the API answers 413 above it, the worker refuses it too.
MAX_SDP_BYTES = 64 * 1024


class WhepOffer(msgspec.Struct, tag="whep"):
    """A viewer's SDP offer (RFC 9725 WHEP), forwarded by the API to the source's worker."""

    sdp: str
    remote: str


class WhipOffer(msgspec.Struct, tag="whip"):
    """A publisher's SDP offer (RFC 9725 WHIP) for a record or relay source."""

    sdp: str
    remote: str


class CloseSession(msgspec.Struct, tag="close"):
    session_id: str


# A snapshot reply never carries more than this, so one request cannot put a huge message on the
# control channel (a 4K JPEG at the best quality is well under it).
SNAPSHOT_MAX_BYTES = 4 << 20
SNAPSHOT_MAX_SIDE = 16_384
SNAPSHOT_MAX_AGE_SEC = 86_400.0  # the oldest cached picture a request may accept
SNAPSHOT_DEFAULT_QUALITY = 85


class SnapshotRequest(msgspec.Struct, tag="snapshot", rename="camel", kw_only=True):
    """The latest picture of the source as JPEG: one cached no older than `max_age_sec` is served
    as is; `width`/`height` (0: the source's) bound the size, keeping the aspect, never scaling up;
    `quality` 1-100 (100 best)."""

    max_age_sec: float = 0.0
    width: int = 0
    height: int = 0
    quality: int = SNAPSHOT_DEFAULT_QUALITY


class UpdateSource(msgspec.Struct, tag="update-source"):
    """From the supervisor: this source's new settings, which differ from the running ones only
    in keys a worker applies in place (HOT_SOURCE_PATHS); anything else is refused. Answered
    with `Applied`."""

    source: SourceSettings


ControlRequest = DescribeRequest | WhepOffer | WhipOffer | CloseSession | SnapshotRequest | UpdateSource


class StreamDescription(msgspec.Struct, rename="camel"):
    index: int
    type: StreamType
    codec: str
    profile: str | None
    time_base: str | None
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    has_extradata: bool = False


class SourceDescription(msgspec.Struct, rename="camel", tag="description"):
    source_id: str
    state: SourceState
    container: str | None
    opened_at: str | None
    packets: int
    bytes: int
    streams: list[StreamDescription]
    video_delivery: DeliveryMode | None = None
    audio_delivery: DeliveryMode | None = None
    snapshot_decodes: int = 0  # keyframes decoded for snapshots (not counting the shared decoder's frames)
    snapshot_encodes: int = 0  # JPEGs encoded for snapshots


class SdpAnswer(msgspec.Struct, tag="answer"):
    session_id: str
    sdp: str


class SnapshotReply(msgspec.Struct, tag="jpeg", rename="camel", kw_only=True):
    jpeg: bytes
    frame_time: str  # RFC 3339 UTC: when the picture's packet reached the worker
    width: int
    height: int


class Done(msgspec.Struct, tag="done"):
    pass


class Applied(msgspec.Struct, tag="applied"):
    """The key paths a worker took in place (an answer to UpdateSource)."""

    paths: list[str]


class ControlError(msgspec.Struct, tag="error"):
    code: ControlErrorCode
    detail: str


ControlReply = SourceDescription | SdpAnswer | SnapshotReply | Done | Applied | ControlError


class RestartSource(msgspec.Struct, tag="restart-source"):
    """Start this source's worker afresh: a given-up one comes back, a running one is stopped
    and started again; either way its crash history is forgotten."""

    source_id: str


class ReloadConfig(msgspec.Struct, tag="reload-config"):
    """Read the config file again and apply what changed (as SIGHUP does)."""


class GetSourceConfig(msgspec.Struct, tag="get-source-config"):
    """The editable source list as configured (raw entries, before defaults are merged in)."""


class EditSource(msgspec.Struct, tag="edit-source", kw_only=True):
    """Add, replace, merge-patch (RFC 7396) or remove one source entry. `if_match`: refused
    unless it is the running generation, so two editors never lose each other's change."""

    op: SourceEditOp
    source_id: str = ""
    entry: dict[str, Any] = {}
    if_match: int | None = None


SupervisorRequest = RestartSource | ReloadConfig | GetSourceConfig | EditSource


class ConfigOutcome(msgspec.Struct, rename="camel", kw_only=True):
    """What applying a generation did, source by source: `updated` sources took their change in
    place (their worker kept running), `restarted` ones got a new worker; `changed` gives the
    key paths that changed for each of them, `restartedFor` the ones that needed the restart."""

    generation: int
    added: list[str] = []
    removed: list[str] = []
    restarted: list[str] = []
    updated: list[str] = []
    changed: dict[str, list[str]] = {}
    restarted_for: dict[str, list[str]] = {}
    requires_restart: list[str] = []


class SupervisorReply(msgspec.Struct, kw_only=True):
    """`error` is None when the request was accepted; `detail` says what was done or why not.
    Config requests also carry the running `generation`, and `outcome` or `sources`."""

    error: ControlErrorCode | None = None
    detail: str = ""
    generation: int | None = None
    outcome: ConfigOutcome | None = None
    sources: list[dict[str, Any]] | None = None

_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(StateMessage)
_request_decoder = msgspec.msgpack.Decoder(ControlRequest)
_reply_decoder = msgspec.msgpack.Decoder(ControlReply)
_supervisor_request_decoder = msgspec.msgpack.Decoder(SupervisorRequest)
_supervisor_reply_decoder = msgspec.msgpack.Decoder(SupervisorReply)
_report_decoder = msgspec.msgpack.Decoder(ApiReport)

encode = _state_encoder.encode


def decode_state(data: bytes) -> StateMessage:
    """Raises msgspec.DecodeError / ValidationError on garbage; callers count and drop."""
    return _state_decoder.decode(data)


def decode_request(data: bytes) -> ControlRequest:
    return _request_decoder.decode(data)


def decode_reply(data: bytes) -> ControlReply:
    return _reply_decoder.decode(data)


def decode_supervisor_request(data: bytes) -> SupervisorRequest:
    return _supervisor_request_decoder.decode(data)


def decode_supervisor_reply(data: bytes) -> SupervisorReply:
    return _supervisor_reply_decoder.decode(data)
def decode_api_report(data: bytes) -> ApiReport:
    return _report_decoder.decode(data)
