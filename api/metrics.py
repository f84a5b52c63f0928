"""The Prometheus view of the merged state: one custom collector that reads the same snapshot
/api/status is built from (Documents over the StateView) at scrape time.

No multiprocess mode and no metric objects updated from code paths: the workers and the
supervisor keep the counters in their state messages, so a restarted API reports the same
values as soon as it has heard them again. `collect()` does no I/O (the supervisor reads /proc
and statvfs; see supervisor/resources.py). A worker's counters are left out until the API has
that worker's state, so a scrape never sees them drop to 0 and come back.

Labels are bounded by the config: `source` (source ids), `role` (api, worker:<id>, turn),
`media`, `kind`, `state`, `path` (the recording folders, scrubbed). No session ids, no addresses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from api.documents import Documents, SourceItem
from protocol.messages import ProcessInfo, WorkerState
from protocol.scrub import public_value
from protocol.version import VERSION
from protocol.vocabulary import SessionKind, SourceState

SOURCE_STATES: tuple[str, ...] = get_args(SourceState)
SESSION_KINDS: tuple[str, ...] = get_args(SessionKind)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


class IceyCollector(Collector):
    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def collect(self) -> Iterator[Metric]:
        docs = self.documents
        now = docs.now()
        readiness, items = docs.readiness(now)  # what /api/status is made of
        yield InfoMetricFamily("icey_build", "The running icey-server version.", value={"version": VERSION})
        ready = _gauge("icey_ready", "1 when /api/ready answers 200, else 0.", [])
        ready.add_metric([], 1.0 if readiness.ready else 0.0)
        yield ready
        workers = [(item, docs.worker_state(src)) for src, item in zip(docs.settings.sources, items, strict=True)]
        yield from self._sources(workers)
        yield from self._traffic(workers)
        yield from self._intelligence(workers)
        yield from self._recording(workers)
        yield from self._processes()
        dropped = _counter("icey_ipc_dropped_total", "State-plane messages this API process could not decode "
                           "(restarts at 0 with the API).", [])
        dropped.add_metric([], float(docs.view.dropped))
        yield dropped

    @staticmethod
    def _sources(workers: list[tuple[SourceItem, WorkerState | None]]) -> Iterator[Metric]:
        up = _gauge("icey_source_up", "1 while the source delivers media (state online), else 0.", ["source"])
        state = _gauge("icey_source_state", "The source's state: 1 for the current one, 0 for every other.",
                       ["source", "state"])
        age = _gauge("icey_state_age_seconds", "Seconds since the API last heard the source's worker.", ["source"])
        reconnects = _counter("icey_source_reconnects_total", "Times the source was lost and reopening began.",
                              ["source"])
        fps = _gauge("icey_source_video_fps", "Video frames per second measured over the last seconds.", ["source"])
        bitrate = _gauge("icey_source_video_bitrate_bits_per_second", "Video bitrate measured over the last seconds.",
                         ["source"])
        keyframe = _gauge("icey_source_keyframe_interval_seconds", "Media time between the last two keyframes.",
                          ["source"])
        packet_age = _gauge("icey_source_last_packet_age_seconds", "Seconds since the last packet of the source.",
                            ["source"])
        for item, ws in workers:
            up.add_metric([item.id], 1.0 if item.online else 0.0)
            for name in SOURCE_STATES:
                state.add_metric([item.id, name], 1.0 if item.state == name else 0.0)
            if item.worker.last_heartbeat_age_ms is not None:
                age.add_metric([item.id], item.worker.last_heartbeat_age_ms / 1000)
            if ws is None:
                continue
            reconnects.add_metric([item.id], float(item.reconnects))
            video = item.media.video
            fps.add_metric([item.id], video.fps if video else 0.0)
            bitrate.add_metric([item.id], video.bitrate_kbps * 1000.0 if video else 0.0)
            if video is not None and video.keyframe_interval_sec is not None:
                keyframe.add_metric([item.id], video.keyframe_interval_sec)
            if item.media.last_packet_age_ms is not None:
                packet_age.add_metric([item.id], item.media.last_packet_age_ms / 1000)
        yield from (up, state, age, reconnects, fps, bitrate, keyframe, packet_age)

    @staticmethod
    def _traffic(workers: list[tuple[SourceItem, WorkerState | None]]) -> Iterator[Metric]:
        sessions = _gauge("icey_source_sessions", "Active WebRTC sessions (whep: viewers, whip: publishers).",
                          ["source", "kind"])
        created = _counter("icey_source_sessions_created_total", "WebRTC sessions opened since the worker started.",
                           ["source"])
        received = _counter("icey_source_receive_bytes_total", "Media bytes received from the source.",
                            ["source", "media"])
        sent = _counter("icey_source_send_bytes_total", "Media bytes sent to viewers, closed sessions included.",
                        ["source"])
        for item, ws in workers:
            if ws is None:
                continue
            for kind in SESSION_KINDS:
                count = sum(1 for s in ws.sessions if s.kind == kind and s.state == "active")
                sessions.add_metric([item.id, kind], float(count))
            created.add_metric([item.id], float(item.sessions.total))
            received.add_metric([item.id, "video"], float(ws.counters.received_video_bytes))
            received.add_metric([item.id, "audio"], float(ws.counters.received_audio_bytes))
            sent.add_metric([item.id], float(ws.counters.sent_bytes))
        yield from (sessions, created, received, sent)

    @staticmethod
    def _intelligence(workers: list[tuple[SourceItem, WorkerState | None]]) -> Iterator[Metric]:
        active = _gauge("icey_motion_active", "1 while motion is in progress (sources with vision on).", ["source"])
        motion = _counter("icey_motion_events_total", "Motion events (starts) detected.", ["source"])
        drops = _counter("icey_vision_queue_drops_total", "Frames the vision queue dropped to stay current.",
                         ["source"])
        speech = _counter("icey_speech_events_total", "Speech events (starts) detected.", ["source"])
        for item, ws in workers:
            if ws is None:
                continue
            vision, voice = item.intelligence.vision, item.intelligence.speech
            if vision.enabled:
                active.add_metric([item.id], 1.0 if vision.active else 0.0)
                motion.add_metric([item.id], float(vision.events))
                drops.add_metric([item.id], float(vision.queue_drops))
            if voice.enabled:
                speech.add_metric([item.id], float(voice.events))
        yield from (active, motion, drops, speech)

    def _recording(self, workers: list[tuple[SourceItem, WorkerState | None]]) -> Iterator[Metric]:
        written = _counter("icey_recording_bytes_total", "Media bytes written to continuous-recording segments.",
                           ["source"])
        segments = _counter("icey_recording_segments_total", "Continuous-recording segments started.", ["source"])
        settings = self.documents.settings
        for src, (item, ws) in zip(settings.sources, workers, strict=True):
            if ws is None or not src.record.enabled:
                continue
            written.add_metric([item.id], float(ws.counters.recorded_bytes))
            segments.add_metric([item.id], float(ws.counters.recorded_segments))
        free = _gauge("icey_storage_free_bytes", "Bytes free for the server's user where recordings go.", ["path"])
        sup = self.documents.view.supervisor
        shown: set[str] = set()
        for storage in sup.storage if sup else []:
            label = public_value(storage.path)
            if label not in shown:  # two folders with one name: the first one stands for both
                shown.add(label)
                free.add_metric([label], float(storage.free_bytes))
        yield from (written, segments, free)

    def _processes(self) -> Iterator[Metric]:
        up = _gauge("icey_process_up", "1 while the child process runs, else 0 (restarting, given up).", ["role"])
        restarts = _counter("icey_process_restarts_total", "Times the supervisor restarted the child.", ["role"])
        memory = _gauge("icey_process_resident_memory_bytes", "Resident memory of the child.", ["role"])
        cpu = _counter("icey_process_cpu_seconds_total", "User and system CPU time of the child (restarts at 0 "
                       "with it).", ["role"])
        sup = self.documents.view.supervisor
        infos: list[ProcessInfo] = [sup.api, *sup.workers.values(), *([sup.turn] if sup.turn else []),
                                    *([sup.zygote] if sup.zygote else [])] if sup else []
        for info in infos:
            up.add_metric([info.role], 1.0 if info.state == "running" else 0.0)
            restarts.add_metric([info.role], float(info.restarts))
            if info.rss_bytes is not None:
                memory.add_metric([info.role], float(info.rss_bytes))
            if info.cpu_seconds is not None:
                cpu.add_metric([info.role], info.cpu_seconds)
        yield from (up, restarts, memory, cpu)


def metrics_registry(documents: Documents) -> CollectorRegistry:
    """A registry of its own (not the global one): only what the collector reads, nothing of the
    client library's default process metrics, which would describe the API process alone."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IceyCollector(documents))
    return registry
