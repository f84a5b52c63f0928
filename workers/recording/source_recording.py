"""A source's recording as the worker runs it, switched while it runs (`record.enabled`, the
segment length and retention are hot settings, see HOT_SOURCE_PATHS).

- Record mode: the store takes the WHIP publisher's segments; it exists for the worker's life.
- A source with a reader of its own: this object is the reader's recording tap from the start,
  whether recording is on or not, so switching it on never touches the reader; the continuous
  recorder behind it is made on each switch-on (given the streams of the open source, so it
  starts at the next keyframe) and stopped on each switch-off (its segment is finalized). The
  store (index, retention thread) is made the first time recording goes on, then kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import av

from protocol.config import RecordConfig, SourceSettings
from protocol.messages import RecordStatus
from workers.recording.segment_store import SegmentStore
from workers.recording.segments import SegmentRecorder
from workers.recording.write_health import Emit
from workers.source.taps import SourceStreams

log = logging.getLogger("icey.recording")


class SourceRecording:
    def __init__(self, src: SourceSettings, emit: Emit, on_change: Callable[[], None]) -> None:
        self.source_id, self.mode = src.id, src.mode
        self._emit, self._on_change = emit, on_change
        self.record = src.record
        self.store: SegmentStore | None = None
        self.recorder: SegmentRecorder | None = None  # continuous, while on
        self.continuous = False  # the source has a reader of its own to record
        self._streams: SourceStreams | None = None  # of the open source (reader thread)
        self._lock = threading.Lock()  # switching vs the reader's open/close
        if src.mode == "record" or src.record.enabled:  # segments of the WHIP publisher, or of the source
            self.store = SegmentStore(src.id, src.record, emit, on_change)
            if src.mode == "record" and src.record.enabled and src.kind != "none":
                log.warning("record mode records the WHIP publisher: record.enabled for %s is ignored", src.id)

    @property
    def on(self) -> bool:
        return self.store is not None and (self.mode == "record" or self.record.enabled)

    def start(self, continuous: bool) -> None:
        """`continuous`: the source has a reader, whose packets are recorded while on."""
        self.continuous = continuous and self.mode != "record"
        if self.store is None:
            return
        self.store.start()  # recovers what a previous worker left, in its own thread
        if self.continuous and self.on:
            self.recorder = SegmentRecorder(self.store)

    def configure(self, record: RecordConfig) -> None:
        """New settings while running (event loop): switch on or off, new length and retention."""
        self.record = record
        if record.enabled and self.store is None and self.mode != "record":
            self.store = SegmentStore(self.source_id, record, self._emit, self._on_change)
            self.store.start()
        if self.store is not None:
            self.store.configure(record)
        if self.continuous:
            self._switch(record.enabled)
        self._on_change()

    def _switch(self, on: bool) -> None:
        with self._lock:
            if on and self.recorder is None and self.store is not None:
                recorder = SegmentRecorder(self.store)
                if self._streams is not None:
                    recorder.on_open(self._streams)
                self.recorder = recorder
                log.info("recording switched on")
            elif not on and self.recorder is not None:
                recorder, self.recorder = self.recorder, None
                recorder.stop()  # finalizes the open segment
                log.info("recording switched off")

    def status(self) -> RecordStatus | None:
        """None (shown as `off`) while nothing records."""
        return self.store.health.status() if self.store is not None and self.on else None

    def stop_recorder(self) -> None:
        """Closes the open segment now: the reader thread may not get there."""
        with self._lock:
            if self.recorder is not None:
                self.recorder.stop()

    def stop(self) -> None:
        if self.store is not None:
            self.store.stop()

    # -- PacketTap (the reader thread) ------------------------------------------------------------

    def on_open(self, streams: SourceStreams) -> None:
        with self._lock:
            self._streams = streams
            if self.recorder is not None:
                self.recorder.on_open(streams)

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        recorder = self.recorder
        if recorder is not None:
            recorder.on_packet(kind, packet, seconds)

    def on_close(self, reason: str) -> None:
        with self._lock:
            self._streams = None
            if self.recorder is not None:
                self.recorder.on_close(reason)
