"""A WHIP publisher's media into its sink (workers/webrtc/encoded_receiver.py via the session
manager), with real aiortc peers in this process: a sink that fails ends its own session only,
and peers that never connect leave no registration behind."""

from __future__ import annotations

import asyncio
import json
import logging

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import pytest
import zmq
import zmq.asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from support.processes import until
from support.webrtc_client import PatternTrack

from protocol.events import SourceEvent
from protocol.ipc import SnapshotSocket, state_endpoint
from protocol.messages import EventMessage, decode_state
from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags
from workers.event_emitter import EventEmitter
from workers.webrtc import encoded_receiver
from workers.webrtc.fanout import Fanout
from workers.webrtc.publisher import PublisherSink
from workers.webrtc.sessions import Session, SessionManager


@pytest.fixture(autouse=True)
def _worker_receivers():
    """The hook a worker installs at start, for these tests only: the test process's other aiortc
    peers (viewers in later tests) keep aiortc's own decoder."""
    original = rtcrtpreceiver.decoder_worker
    encoded_receiver.install()
    yield
    rtcrtpreceiver.decoder_worker = original


class FailingSink(PublisherSink):
    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        raise OSError(28, "No space left on device", "/srv/private/recordings/desk/x.mp4")


class CountingSink(PublisherSink):
    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def write(self, kind: str, data: bytes, timestamp: int) -> None:
        self.frames += 1


@pytest.fixture
async def manager(tmp_path, monkeypatch):
    """A record-mode source's session manager; its events go to a real state-plane socket."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"sources": [{"id": "desk", "mode": "record"}],
                                  "webrtc": {"hostAddresses": ["127.0.0.1"]}}))
    settings = load_settings(parse_flags(["--config", str(config)]), {})
    sinks: list[PublisherSink] = []

    def make_sink(session: Session) -> PublisherSink:
        sink = FailingSink() if not sinks else CountingSink()
        sinks.append(sink)
        return sink

    loop = asyncio.get_running_loop()
    subscriber = zmq.asyncio.Context.instance().socket(zmq.SUB)  # the API's end of the state plane
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.bind(state_endpoint(tmp_path))
    seen: list[SourceEvent] = []

    async def receive() -> None:
        while True:
            message = decode_state(await subscriber.recv())
            if isinstance(message, EventMessage):
                seen.append(message.event)

    receiver = asyncio.create_task(receive())
    sock = SnapshotSocket(tmp_path)
    await asyncio.wait_for(sock.subscribed(), 5)  # sends before the subscription arrives go nowhere
    src = settings.source("desk")
    created = SessionManager(settings, src, Fanout(loop), lambda: None, lambda: True, make_sink,
                             EventEmitter(sock, "desk", loop))
    created.sinks = sinks  # type: ignore[attr-defined]
    created.events_seen = seen  # type: ignore[attr-defined]
    yield created
    receiver.cancel()
    sock.close()
    subscriber.close(0)


async def offer() -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = pc.addTransceiver(PatternTrack.make(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"])
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def publish(manager: SessionManager) -> tuple[RTCPeerConnection, str]:
    pc = await offer()
    session_id, answer = await manager.whip(pc.localDescription.sdp, "127.0.0.1")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, session_id


async def test_a_failing_publisher_sink_ends_only_its_session(manager, caplog):
    """Issue 8 item 12: an error in one publisher's sink (its recorder or relay) ends that
    session with a logged, scrubbed reason; the source takes the next publisher."""
    caplog.set_level(logging.WARNING, logger="icey.sessions")
    first, first_id = await publish(manager)
    second = None
    try:
        await until(lambda: first_id not in manager.sessions, 15, what="the failing session closed")
        closed = await until(lambda: [e for e in manager.events_seen if e.type == "session.closed"], 5,
                             what="the session.closed event")
        assert [e.data.session_id for e in closed] == [first_id]
        warning = next(r.getMessage() for r in caplog.records if first_id in r.getMessage())
        assert "No space left on device" in warning and "/srv/private" not in warning  # scrubbed

        second, second_id = await publish(manager)  # the next publisher of the same source
        sink = manager.sinks[1]
        await until(lambda: sink.frames > 40, 15, what="frames into the second publisher's sink")
        assert manager.sessions[second_id].state == "active"
    finally:
        for pc in (first, second):
            if pc is not None:
                await pc.close()
        await manager.close_all()


async def test_peers_that_never_connect_leave_no_sink_registered(manager):
    """Issue 8 item 12: a track's sink registration goes with its session, started or not."""
    before = len(encoded_receiver._sinks)
    peers = []
    for _ in range(3):
        pc = await offer()
        session_id, _answer = await manager.whip(pc.localDescription.sdp, "127.0.0.1")
        peers.append(pc)  # the answer is never applied: no ICE, no receiver thread
        assert len(encoded_receiver._sinks) == before + 2  # its video and audio tracks
        assert await manager.close(session_id, "test")
    try:
        assert len(encoded_receiver._sinks) == before
    finally:
        for pc in peers:
            await pc.close()
