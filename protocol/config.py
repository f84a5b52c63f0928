"""Config schema (icey's JSON keys, plus `sources`, `stun` and `supervisor`) and the resolved
settings the supervisor hands to every child process.

The file schema mirrors the C++ icey-server key for key, so its config files load unchanged;
`Settings` is what all three processes run on, written once by the supervisor and read by the
children, so no process re-parses flags or env on its own.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from protocol.vocabulary import Mode, RequiredSources, SourceKindName

MODES = ("stream", "record", "relay")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
# Every numeric key has a range, so a value that parses but makes no sense (heartbeatMs 0 spins
# every process) is refused at load, by msgspec, with its key path. Ports are checked by the loader.
USEC_HOUR = 3_600_000_000
Width = Annotated[int, Meta(ge=16, le=7680)]
Height = Annotated[int, Meta(ge=16, le=4320)]
Fraction01 = Annotated[float, Meta(ge=0.0, le=1.0)]
Usec = Annotated[int, Meta(ge=0, le=USEC_HOUR)]
Viewers = Annotated[int, Meta(ge=0, le=10_000)]  # 0: the source takes no viewers
StallTimeout = Annotated[float, Meta(gt=0.0, le=3600.0)]
Count = Annotated[int, Meta(ge=0, le=1_000_000)]  # a cap; 0 disables it
Seconds = Annotated[float, Meta(gt=0.0, le=86_400.0)]
# A source's labels: operator metadata shown with it (never metric labels), bounded like any input.
LabelKey = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
LabelValue = Annotated[str, Meta(max_length=256)]
Labels = Annotated[dict[LabelKey, LabelValue], Meta(max_length=32)]


class _Camel(msgspec.Struct, rename="camel", omit_defaults=False):
    pass


class HttpConfig(_Camel):
    """`allowedHosts`: names (besides localhost, the bind host and any literal IP) that a
    request's `Host` may carry; any other is refused, which stops DNS rebinding.
    `maxConnections` caps open HTTP connections (past it a new one gets 503 and is closed);
    `maxEventStreams` caps SSE clients (503 past it); an idle connection, or one still sending
    its request headers, is closed after `keepAliveTimeoutSec`. 0 disables a cap."""

    host: str = "0.0.0.0"
    port: int = 4500
    allowed_hosts: list[str] = []
    max_connections: Count = 1024
    max_event_streams: Count = 64
    keep_alive_timeout_sec: Seconds = 5.0


class TlsConfig(_Camel):
    cert: str = ""
    key: str = ""


class AuthConfig(_Camel):
    """`allowedOrigins`: the browser origins (`https://dash.example`) that get CORS headers;
    no other origin does, and the server's own pages need none."""

    token: str = ""
    allowed_origins: list[str] = []


class VideoConfig(_Camel):
    codec: str = "h264"
    width: Width = 1280
    height: Height = 720
    fps: Annotated[int, Meta(ge=1, le=240)] = 30
    bitrate: Annotated[int, Meta(ge=16_000, le=100_000_000)] = 2_000_000


class AudioConfig(_Camel):
    codec: str = "libopus"
    channels: Annotated[int, Meta(ge=1, le=8)] = 2
    sample_rate: Annotated[int, Meta(ge=8_000, le=192_000)] = 48_000
    bitrate: Annotated[int, Meta(ge=6_000, le=512_000)] = 128_000


class NormalizeConfig(_Camel):
    width: Annotated[int, Meta(ge=0, le=7680)] = 0  # 0: the source's
    height: Annotated[int, Meta(ge=0, le=4320)] = 0
    pixel_fmt: str = ""


class MotionConfig(_Camel):
    grid_width: Annotated[int, Meta(ge=1, le=7680)] = 32
    grid_height: Annotated[int, Meta(ge=1, le=4320)] = 18
    warmup_frames: Annotated[int, Meta(ge=0, le=10_000)] = 2
    threshold: Fraction01 = 0.08
    cooldown_usec: Usec = 500_000


class SnapshotsConfig(_Camel):
    enabled: bool = False
    dir: str = ""
    min_interval_usec: Usec = 1_000_000


class ClipsConfig(_Camel):
    enabled: bool = False
    dir: str = ""
    pre_roll_usec: Annotated[int, Meta(ge=0, le=60_000_000)] = 1_000_000  # held in memory
    post_roll_usec: Annotated[int, Meta(ge=0, le=600_000_000)] = 3_000_000


class VisionConfig(_Camel):
    enabled: bool = False
    every_nth_frame: Annotated[int, Meta(ge=1, le=10_000)] = 6
    min_interval_usec: Usec = 200_000
    queue_depth: Annotated[int, Meta(ge=1, le=1024)] = 8
    normalize: NormalizeConfig = msgspec.field(default_factory=NormalizeConfig)
    motion: MotionConfig = msgspec.field(default_factory=MotionConfig)
    snapshots: SnapshotsConfig = msgspec.field(default_factory=SnapshotsConfig)
    clips: ClipsConfig = msgspec.field(default_factory=ClipsConfig)


class SpeechConfig(_Camel):
    enabled: bool = False
    queue_depth: Annotated[int, Meta(ge=1, le=4096)] = 32
    start_threshold: Fraction01 = 0.045
    stop_threshold: Fraction01 = 0.020
    min_silence_usec: Usec = 250_000
    update_interval_usec: Annotated[int, Meta(ge=10_000, le=USEC_HOUR)] = 250_000


class RetentionConfig(_Camel):
    """Oldest files go first once a limit is passed: older than `maxAgeHours`, more than
    `maxTotalMb` in all, or less than `minFreeMb` left on the disk; 0 disables that limit."""

    max_age_hours: Annotated[float, Meta(ge=0.0, le=876_000.0)] = 72.0
    max_total_mb: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 20_480
    min_free_mb: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 256


class ArtifactsConfig(_Camel):
    """The retention limit each artifact folder (snapshots, clips) is kept within (new; icey
    never deletes anything)."""

    retention: RetentionConfig = msgspec.field(
        default_factory=lambda: RetentionConfig(max_age_hours=168.0, max_total_mb=2048))


class IntelligenceConfig(_Camel):
    vision: VisionConfig = msgspec.field(default_factory=VisionConfig)
    speech: SpeechConfig = msgspec.field(default_factory=SpeechConfig)
    artifacts: ArtifactsConfig = msgspec.field(default_factory=ArtifactsConfig)


class RecordConfig(_Camel):
    """Continuous recording of a source's own packets (new): `<dir>/<source-id>/<UTC>.mp4`,
    `dir` defaulting to media.recordDir."""

    enabled: bool = False
    segment_seconds: Annotated[float, Meta(ge=0.5, le=3600.0)] = 60.0
    dir: str = ""
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)


class MediaConfig(_Camel):
    mode: str = "stream"
    source: str = ""
    record_dir: str = "./recordings"
    loop: bool = True
    # icey's key, accepted for compatibility: passthrough is decided per source from what it
    # delivers (browser-ready H.264 always passes through; the rest is transcoded once).
    passthrough_video: bool = False
    max_viewers: Viewers = 64
    # An online source that delivers no packet for this long is `stalled` and reconnected. Unset:
    # 5 s for live sources, for files max(5 s, 3 frame intervals) (see workers/source/watchdog.py).
    stall_timeout_sec: StallTimeout | None = None
    record: RecordConfig = msgspec.field(default_factory=RecordConfig)
    video: VideoConfig = msgspec.field(default_factory=VideoConfig)
    audio: AudioConfig = msgspec.field(default_factory=AudioConfig)
    intelligence: IntelligenceConfig = msgspec.field(default_factory=IntelligenceConfig)


class TurnConfig(_Camel):
    """The coturn relay. It runs only when enabled *and* `secret` is set (no demo login): a relay
    anyone can use is an open door into the LAN. Peers in private, loopback, link-local and
    metadata ranges are refused unless listed in `allowPrivatePeers` (CIDRs); TCP relays are
    off unless `allowTcpRelay`; quotas count allocations (0 = unlimited), `maxBps` is bytes/s
    per session."""

    enabled: bool = True
    port: int = 3478
    realm: str = "0state.com"
    external_ip: str = ""
    username: str = ""
    secret: str = ""
    credential_ttl_seconds: Annotated[int, Meta(ge=1)] = 3600  # above a day: clamped with a warning
    allow_private_peers: list[str] = []
    allow_tcp_relay: bool = False
    user_quota: Annotated[int, Meta(ge=0, le=1_000_000)] = 32
    total_quota: Annotated[int, Meta(ge=0, le=1_000_000)] = 256
    max_bps: Annotated[int, Meta(ge=0, le=10_000_000_000)] = 1_250_000
    # icey's key, accepted so its configs load, but not honoured: it opened the relay to every
    # private address. The loader warns when it is true.
    allow_local_relay: bool = False

    @property
    def active(self) -> bool:
        """The one condition under which coturn runs and credentials are handed out."""
        return self.enabled and bool(self.secret)


class StunConfig(_Camel):
    """STUN servers handed to browsers and used by the server's ICE agent. Empty by default:
    icey hard-codes a third-party STUN server, which a closed network cannot reach."""

    urls: list[str] = []


class WebRtcConfig(_Camel):
    """Server-side ICE and session limits. `hostAddresses` limits the host candidates offered (a
    host-network box with several interfaces offers only the ones viewers can reach); empty =
    every interface. A session that has not connected `connectTimeoutSec` after its answer is
    dropped; `maxSessions` (all sources) and `maxSessionsPerAddress` (one client address) cap the
    WebRTC sessions of the whole service, 0 meaning no such cap."""

    host_addresses: list[str] = []
    disconnect_grace_sec: Annotated[float, Meta(ge=0.0, le=3600.0)] = 5.0
    connect_timeout_sec: Seconds = 10.0
    max_sessions: Count = 256
    max_sessions_per_address: Count = 32


class SupervisorConfig(_Camel):
    """Restart policy knobs. Defaults suit production; tests shrink them. A worker given up after
    a crash loop is tried again after `givenUpRetrySec` (0: only on request), so a camera that
    crashed its worker for a while comes back without an operator. `watchConfig` reloads the
    config file when it changes. `zygote` forks workers from a pre-imported template."""

    restart_initial_ms: Annotated[int, Meta(ge=10, le=600_000)] = 500
    restart_max_ms: Annotated[int, Meta(ge=10, le=3_600_000)] = 30_000
    stable_after_sec: Annotated[float, Meta(ge=0.1, le=86_400.0)] = 30.0
    crash_loop_limit: Annotated[int, Meta(ge=1, le=1000)] = 5
    crash_loop_window_sec: Annotated[float, Meta(ge=0.1, le=86_400.0)] = 60.0
    given_up_retry_sec: Annotated[float, Meta(ge=0.0, le=604_800.0)] = 300.0
    stop_timeout_sec: Annotated[float, Meta(ge=0.1, le=300.0)] = 5.0
    heartbeat_ms: Annotated[int, Meta(ge=50, le=60_000)] = 1000
    # Reload when the config file changes (as on SIGHUP): its directory is watched (watchfiles).
    watch_config: bool = False
    # Fork workers from one template process that has imported PyAV, aiortc and numpy (their
    # memory is shared) instead of starting each as a fresh interpreter.
    zygote: bool = True


class ReadyConfig(_Camel):
    """Which sources must be online for /api/ready to say 200 (new): "any" (one dead camera never
    pulls a multi-camera box out of a load balancer), "all", or a list of source ids."""

    require_sources: RequiredSources | list[str] = "any"


class MetricsConfig(_Camel):
    """GET /metrics (new). `token`, when set, is a second token that opens /metrics only (for a
    scraper that must not read or change anything else); `auth.token` opens it too. `port` (0:
    off) also serves /metrics, and nothing else, on a listener of its own bound to `host` (empty:
    http.host), so a scraper's network need not reach the API at all; the token rule is the same
    there (open only when neither token is set)."""

    token: str = ""
    host: str = ""
    port: Annotated[int, Meta(ge=0, le=65535)] = 0

    def bind_host(self, http: HttpConfig) -> str:
        return self.host or http.host


class SourceEntry(_Camel):
    """One item of the `sources` list. Keys other than id/source are per-source overrides of
    `media.*`, deep-merged onto the global media block."""

    id: str = ""
    source: str = ""
    mode: str | None = None
    loop: bool | None = None
    passthrough_video: bool | None = None
    max_viewers: Viewers | None = None
    stall_timeout_sec: StallTimeout | None = None
    record: dict | None = None
    video: dict | None = None
    audio: dict | None = None
    intelligence: dict | None = None
    labels: Labels | None = None


class FileConfig(_Camel):
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    media: MediaConfig = msgspec.field(default_factory=MediaConfig)
    turn: TurnConfig = msgspec.field(default_factory=TurnConfig)
    stun: StunConfig = msgspec.field(default_factory=StunConfig)
    webrtc: WebRtcConfig = msgspec.field(default_factory=WebRtcConfig)
    web_root: str = "./web/dist"
    sources: list[SourceEntry] = []
    supervisor: SupervisorConfig = msgspec.field(default_factory=SupervisorConfig)
    ready: ReadyConfig = msgspec.field(default_factory=ReadyConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)


# Per-source override blocks are typed by the matching media sub-struct for validation.
SOURCE_OVERRIDE_TYPES: dict[str, type] = {
    "record": RecordConfig,
    "video": VideoConfig,
    "audio": AudioConfig,
    "intelligence": IntelligenceConfig,
}


# The one table of what a running worker applies in place: key paths of a source as written in
# the config (a path covers everything under it). A change anywhere else (url, mode, loop, video,
# audio, the intelligence pipelines' shape, switching vision or speech on or off) restarts only that
# source's worker. Labels are read by the API alone.
HOT_SOURCE_PATHS = frozenset({
    "maxViewers", "labels",
    "record.enabled", "record.segmentSeconds", "record.retention",
    "intelligence.vision.motion",
    "intelligence.speech.startThreshold", "intelligence.speech.stopThreshold",
    "intelligence.speech.minSilenceUsec", "intelligence.speech.updateIntervalUsec",
})


class SourceSettings(_Camel):
    """One resolved source: what its worker opens and how the API describes it."""

    id: str
    index: int
    url: str
    kind: SourceKindName
    remote: bool
    live: bool
    mode: Mode
    loop: bool
    max_viewers: int
    stall_timeout_sec: float | None  # None: derived from the source (see workers/source/watchdog.py)
    record: RecordConfig
    video: VideoConfig
    audio: AudioConfig
    intelligence: IntelligenceConfig
    labels: dict[str, str] = {}


def changed_paths(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted key paths where two JSON-like values differ (objects compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [p for key in sorted(old.keys() | new.keys())
                for p in changed_paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)]
    return [] if old == new else [prefix]


def changed_source_paths(old: SourceSettings, new: SourceSettings) -> list[str]:
    """The key paths (as written in the config) whose values differ, the index (which endpoint
    the worker binds) aside."""
    return changed_paths(msgspec.to_builtins(msgspec.structs.replace(old, index=new.index)),
                         msgspec.to_builtins(new))


def cold_source_paths(changed: list[str]) -> list[str]:
    """The changed paths no HOT_SOURCE_PATHS entry covers: they need a new worker."""
    return [p for p in changed if not any(p == hot or p.startswith(hot + ".") for hot in HOT_SOURCE_PATHS)]


class Settings(_Camel):
    """Everything every process needs, after defaults < file < env < flags."""

    config_path: str
    config_exists: bool
    config_error: str | None
    http: HttpConfig
    tls: TlsConfig
    auth: AuthConfig
    turn: TurnConfig
    stun: StunConfig
    webrtc: WebRtcConfig
    web_root: str
    record_dir: str
    mode: str
    log_level: str
    sources: list[SourceSettings]
    supervisor: SupervisorConfig
    ready: ReadyConfig
    warnings: list[str] = []
    # Every configured source's id, also in a worker's settings (which hold only its own source):
    # artifact folders are shared, and retention deletes only the artifacts of these sources.
    source_ids: list[str] = []
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    # Where API edits of the source list are written: the config file ("config"), or, when the
    # sources come from flags/env (or there is no file), the state file in the record dir ("state").
    edits_path: str = ""
    edits_kind: str = "config"

    def source(self, source_id: str) -> SourceSettings | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def for_worker(self, source_id: str) -> Settings:
        """What one source's worker may know: its own source, no API token, no TURN secret, no
        other camera's URL (a worker parses untrusted media; what it does not hold cannot leak)."""
        src = self.source(source_id)
        return msgspec.structs.replace(
            self, auth=AuthConfig(), turn=msgspec.structs.replace(self.turn, secret=""), metrics=MetricsConfig(),
            sources=[src] if src is not None else [])
