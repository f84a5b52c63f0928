"""A source's new settings taken by the running worker (UpdateSource from the supervisor): the
keys of HOT_SOURCE_PATHS go to the parts they concern (the session manager's viewer limit,
the recording switch, segment length and retention, the motion and speech settings); a change
to any other key is refused, for the supervisor to restart the worker instead. No reader is
reopened and no session is touched."""

from __future__ import annotations

import logging

from protocol.config import SourceSettings, changed_source_paths, cold_source_paths
from protocol.messages import Applied, ControlError, ControlReply
from workers.intelligence.pipelines import Intelligence
from workers.recording.source_recording import SourceRecording
from workers.webrtc.sessions import SessionManager

log = logging.getLogger("icey.worker")


class HotSettings:
    def __init__(self, src: SourceSettings, sessions: SessionManager, recording: SourceRecording,
                 intelligence: Intelligence | None) -> None:
        self.src = src
        self.sessions, self.recording, self.intelligence = sessions, recording, intelligence

    def apply(self, new: SourceSettings) -> ControlReply:
        if new.id != self.src.id:
            return ControlError(code="conflict", detail=f"this worker runs source '{self.src.id}', not '{new.id}'")
        changed = changed_source_paths(self.src, new)
        if cold := cold_source_paths(changed):
            return ControlError(code="conflict", detail=f"needs a restart: {', '.join(cold)}")
        self.sessions.src = new  # read on every offer: the next one sees the new limit
        if new.record != self.src.record:
            self.recording.configure(new.record)
        if self.intelligence is not None and new.intelligence != self.src.intelligence:
            self.intelligence.configure(new.intelligence)
        self.src = new
        log.info("applied in place: %s", ", ".join(changed) or "nothing changed")
        return Applied(paths=changed)
