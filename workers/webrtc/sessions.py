"""The WebRTC peers of one source: WHEP viewers (and, in record/relay mode, the WHIP publisher).

Each session owns one RTCPeerConnection. A session is `active` while it is connected and we hear
from the peer (RTCP from a viewer, media from a publisher); silent for SILENCE_SEC it is
`disconnected` and gets a grace period to come back; `failed`/`closed`/DELETE end it at once and
free everything. aiortc itself has no `disconnected` state (its consent check only fails after
30 s), hence this watch. Every change is pushed on the state plane at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from protocol.config import Settings, SourceSettings
from protocol.events import SessionData
from protocol.messages import SessionInfo
from protocol.scrub import scrub_text
from protocol.times import rfc3339
from protocol.vocabulary import SessionKind, SessionState
from workers.event_emitter import EventEmitter
from workers.webrtc.encoded_receiver import receive_encoded, receiver_of, release
from workers.webrtc.fanout import Fanout
from workers.webrtc.ice import candidate_policy, configuration, filter_remote_candidates
from workers.webrtc.media_unit import MediaUnit
from workers.webrtc.offer_rules import check_offer
from workers.webrtc.publisher import PublisherSink
from workers.webrtc.session_error import SessionError
from workers.webrtc.viewer_track import ViewerTrack, attach_sender

__all__ = ["Session", "SessionError", "SessionManager"]

log = logging.getLogger("icey.sessions")
SILENCE_SEC = 3.0  # receivers report every second or so; three seconds of nothing is a gone peer
# A closed peer connection is a web of reference cycles holding OpenSSL and SRTP state in C
# memory that Python's GC does not weigh: left to the generational thresholds, dozens of dead
# ones pile up under churn. One full collection this long after a close (coalesced) frees them.
COLLECT_AFTER_CLOSE_SEC = 1.0


@dataclass
class Session:
    id: str
    kind: SessionKind
    remote: str
    pc: RTCPeerConnection
    created_at: str
    state: SessionState = "connecting"
    tracks: list[ViewerTrack] = field(default_factory=list)
    bytes_sent: int = 0
    packets_sent: int = 0
    bytes_received: int = 0
    packets_received: int = 0
    ingest: PublisherSink | None = None  # a WHIP publisher's recorder or relay
    received: list[MediaStreamTrack] = field(default_factory=list)  # its tracks handed to the ingest
    last_heard: float = field(default_factory=time.monotonic)
    connect_deadline: asyncio.TimerHandle | None = None

    def heard(self) -> None:
        self.last_heard = time.monotonic()

    def info(self) -> SessionInfo:
        return SessionInfo(id=self.id, kind=self.kind, remote=self.remote, state=self.state,
                           created_at=self.created_at, bytes_sent=self.bytes_sent, packets_sent=self.packets_sent,
                           bytes_received=self.bytes_received, packets_received=self.packets_received,
                           dropped_units=sum(t.dropped for t in self.tracks))


def _codecs(kind: str, mime: str) -> list:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in caps if c.mimeType.lower() == mime]
    return chosen + [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]


class SessionManager:
    def __init__(self, settings: Settings, src: SourceSettings, fanout: Fanout, on_change: Callable[[], None],
                 has_audio: Callable[[], bool], ingest_factory: Callable[[Session], PublisherSink],
                 events: EventEmitter, viewer_joining: Callable[[], None] = lambda: None) -> None:
        self.settings, self.src, self.fanout = settings, src, fanout
        self.viewer_joining = viewer_joining  # the reader's hurry(): an unwatched source may be lagging
        self.events = events
        self.on_change = on_change
        self.has_audio = has_audio
        self.ingest_factory = ingest_factory
        self.candidates = candidate_policy(settings)
        self.sessions: dict[str, Session] = {}
        # Offers being negotiated, by kind: they hold their slot from the first check on, so
        # concurrent offers cannot all pass a limit that counts only finished negotiations.
        self.negotiating: dict[SessionKind, int] = {"whep": 0, "whip": 0}
        self.total = 0
        # Cumulative over every session, closed ones included: the worker's traffic counters.
        self.sent_bytes = 0
        self.received_bytes = {"video": 0, "audio": 0}
        self._collect: asyncio.TimerHandle | None = None

    # -- queries --------------------------------------------------------------------------

    @property
    def active(self) -> int:
        return sum(1 for s in self.sessions.values() if s.state == "active")

    def infos(self) -> list[SessionInfo]:
        return [s.info() for s in self.sessions.values()]

    # -- lifecycle ------------------------------------------------------------------------

    def _new_session(self, kind: SessionKind, remote: str) -> Session:
        pc = RTCPeerConnection(configuration(self.settings))
        session = Session(id=secrets.token_urlsafe(12), kind=kind, remote=remote, pc=pc,
                          created_at=rfc3339())

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            await self._on_connection_state(session)

        session.connect_deadline = asyncio.get_running_loop().call_later(
            self.settings.webrtc.connect_timeout_sec, self._expire_unconnected, session.id)
        return session

    def _expire_unconnected(self, session_id: str) -> None:
        session = self.sessions.get(session_id)
        if session is not None and session.state == "connecting":
            log.info("session %s never connected; closing", session_id)
            asyncio.ensure_future(self.close(session_id, "connect timeout"))

    async def _on_connection_state(self, session: Session) -> None:
        state = session.pc.connectionState
        if session.id not in self.sessions:
            return
        if state == "connected":
            if session.state != "active":
                session.state = "active"
                session.heard()
                log.info("session %s (%s from %s) active", session.id, session.kind, session.remote)
                self.on_change()
        elif state in ("failed", "closed"):
            await self.close(session.id, state)
            return
        if state == "connected" and session.ingest is not None:
            await session.ingest.started()

    async def close(self, session_id: str, reason: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        session.state = "closed"
        self._stop(session)
        await session.pc.close()
        await self._close_ingest(session)
        self.on_change()
        self.events.emit("session.closed", SessionData(session_id=session.id, kind=session.kind, remote=session.remote))
        log.info("session %s closed (%s); sent %d bytes", session.id, reason, session.bytes_sent)
        self._collect_soon()
        return True

    def _collect_soon(self) -> None:
        if self._collect is None:
            self._collect = asyncio.get_running_loop().call_later(COLLECT_AFTER_CLOSE_SEC, self._collect_now)

    def _collect_now(self) -> None:
        self._collect = None
        gc.collect()

    async def watch_liveness(self) -> None:
        """active -> disconnected after SILENCE_SEC without a word from the peer; back to active
        if it speaks again within the grace period; closed after it."""
        grace = self.settings.webrtc.disconnect_grace_sec
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                silent = now - session.last_heard
                if session.state == "active" and silent > SILENCE_SEC:
                    session.state = "disconnected"
                    log.info("session %s silent for %.1fs; %.0fs grace", session.id, silent, grace)
                    self.on_change()
                elif session.state == "disconnected" and silent <= SILENCE_SEC:
                    session.state = "active"
                    log.info("session %s back", session.id)
                    self.on_change()
                elif session.state == "disconnected" and silent > SILENCE_SEC + grace:
                    await self.close(session.id, "disconnected")

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(sid, "shutdown") for sid in list(self.sessions)))

    # -- WHEP -----------------------------------------------------------------------------

    def _count_sent(self, session: Session) -> Callable[[MediaUnit], None]:
        def count(unit: MediaUnit) -> None:
            session.bytes_sent += unit.size
            self.sent_bytes += unit.size
            session.packets_sent += len(unit.payloads)

        return count

    async def whep(self, sdp: str, remote: str) -> tuple[str, str]:
        """Answer a viewer's offer; raises SessionError with an HTTP-ish code."""
        if self.src.mode == "record":
            raise SessionError("conflict", f"source {self.src.id} is in record mode: it has nothing to watch")
        lines = check_offer(sdp, "whep")
        sdp = filter_remote_candidates(sdp, self.candidates, remote)
        # An inactive m-line gets no track: one nobody sends from would fill its queue for nothing.
        wanted = {m.kind for m in lines if m.direction != "inactive"} - (set() if self.has_audio() else {"audio"})
        if self.src.max_viewers == 0:
            raise SessionError("busy", f"source {self.src.id} takes no viewers (maxViewers 0)")
        viewers = sum(1 for s in self.sessions.values() if s.kind == "whep") + self.negotiating["whep"]
        if viewers >= self.src.max_viewers:
            raise SessionError("busy", f"source {self.src.id} has reached its limit of {self.src.max_viewers} viewers")
        self.negotiating["whep"] += 1  # the slot is held from the check on: no await in between
        self.viewer_joining()
        try:
            session = self._new_session("whep", remote)

            def add_transceivers(pc: RTCPeerConnection) -> None:
                for kind, mime in (("video", "video/h264"), ("audio", "audio/opus")):
                    if kind not in wanted:
                        continue
                    track = ViewerTrack(kind, self.fanout)
                    session.tracks.append(track)
                    transceiver = pc.addTransceiver(track, direction="sendonly")
                    transceiver.setCodecPreferences(_codecs(kind, mime))
                    attach_sender(transceiver.sender, track, self._count_sent(session), session.heard)

            return await self._negotiate(session, sdp, add_transceivers)
        finally:
            self.negotiating["whep"] -= 1

    @property
    def publisher(self) -> Session | None:
        return next((s for s in self.sessions.values() if s.kind == "whip"), None)

    async def whip(self, sdp: str, remote: str) -> tuple[str, str]:
        """Take a publisher's offer (record and relay modes). Its H.264 and Opus are received
        encoded (see encoded_receiver.py) and recorded or relayed as they are."""
        if self.src.mode == "stream":
            raise SessionError("conflict", f"source {self.src.id} is in stream mode; WHIP needs record or relay")
        lines = check_offer(sdp, "whip")
        sdp = filter_remote_candidates(sdp, self.candidates, remote)
        if self.publisher is not None or self.negotiating["whip"]:
            raise SessionError("conflict", f"source {self.src.id} already has a publisher")
        self.negotiating["whip"] += 1  # as in whep()
        try:
            session = self._new_session("whip", remote)
            ingest = session.ingest = self.ingest_factory(session)
            loop = asyncio.get_running_loop()

            def count(kind: str, data: bytes, timestamp: int) -> None:
                session.last_heard = time.monotonic()  # plain store: safe from the receiver thread
                session.bytes_received += len(data)
                session.packets_received += 1
                if kind in self.received_bytes:
                    self.received_bytes[kind] += len(data)
                ingest.write(kind, data, timestamp)

            def failed(exc: Exception) -> None:  # on a receiver thread
                loop.call_soon_threadsafe(self._ingest_failed, session.id, exc)

            def add_transceivers(pc: RTCPeerConnection) -> None:
                @pc.on("track")
                def on_track(track) -> None:
                    receive_encoded(track, count, failed)
                    session.received.append(track)
                    if track.kind == "video":
                        ingest.receiver = receiver_of(pc, track)

                pc.addTransceiver("video", direction="recvonly").setCodecPreferences(_codecs("video", "video/h264"))
                if any(m.kind == "audio" for m in lines):
                    pc.addTransceiver("audio", direction="recvonly").setCodecPreferences(
                        _codecs("audio", "audio/opus"))

            return await self._negotiate(session, sdp, add_transceivers)
        finally:
            self.negotiating["whip"] -= 1

    async def _negotiate(self, session: Session, sdp: str,
                         add_transceivers: Callable[[RTCPeerConnection], None]) -> tuple[str, str]:
        """The transceivers exist before setRemoteDescription, so aiortc binds them to the
        offer's m-lines with our codec choice (it picks codecs inside that call)."""
        pc = session.pc
        try:
            add_transceivers(pc)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError/InternalError/... on a bad offer
            await self._discard(session)
            raise SessionError("bad_request", f"cannot negotiate the offer: {exc}") from None
        self.sessions[session.id] = session
        self.total += 1
        self.on_change()
        self.events.emit("session.opened", SessionData(session_id=session.id, kind=session.kind, remote=session.remote))
        log.info("session %s (%s from %s) created", session.id, session.kind, session.remote)
        return session.id, pc.localDescription.sdp

    def _ingest_failed(self, session_id: str, exc: Exception) -> None:
        """A publisher's recorder or relay raised: that session ends, the others go on."""
        reason = scrub_text(f"publisher media failed: {type(exc).__name__}: {exc}")
        log.warning("session %s: %s", session_id, reason)
        asyncio.ensure_future(self.close(session_id, reason))

    async def _close_ingest(self, session: Session) -> None:
        for track in session.received:
            release(track)  # a track whose receiver never started
        if session.ingest is None:
            return
        try:
            await asyncio.to_thread(session.ingest.close)  # finalises a recording off the loop
        except Exception as exc:  # one publisher's ending must never end the worker
            log.warning("session %s: closing its %s failed: %s", session.id, type(session.ingest).__name__,
                        scrub_text(f"{type(exc).__name__}: {exc}"))

    async def _discard(self, session: Session) -> None:
        """After a failed negotiation: best effort, as aiortc's close itself fails on a transceiver
        the offer never bound (no transport); the offer is refused all the same."""
        self._stop(session)
        try:
            await session.pc.close()
        except Exception as exc:
            log.debug("closing an unnegotiated session %s: %s", session.id, exc)
        await self._close_ingest(session)

    @staticmethod
    def _stop(session: Session) -> None:
        if session.connect_deadline is not None:
            session.connect_deadline.cancel()
        for track in session.tracks:
            track.stop()
