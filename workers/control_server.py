"""Answers the API's requests on this worker's ROUTER socket (the control channel). Every request
gets an answer: one the worker did not expect to fail gets ControlError "internal" at once (the
traceback goes to the log), never the API's timeout."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.messages import (
    CloseSession,
    ControlError,
    ControlReply,
    ControlRequest,
    DescribeRequest,
    Done,
    SdpAnswer,
    SnapshotRequest,
    SourceDescription,
    UpdateSource,
    WhepOffer,
    WhipOffer,
    decode_request,
    encode,
)
from workers.hot_settings import HotSettings
from workers.source.reader import SourceReader
from workers.stills.service import SnapshotService
from workers.webrtc.delivery import Delivery
from workers.webrtc.sessions import SessionError, SessionManager

log = logging.getLogger("icey.control")


class ControlServer:
    def __init__(self, ctx: zmq.asyncio.Context, runtime_dir: Path, source_index: int, source_id: str,
                 reader: SourceReader | None, delivery: Delivery | None, sessions: SessionManager,
                 hot: HotSettings, stills: SnapshotService | None = None) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, ipc.MAX_CONTROL_MESSAGE)
        self.sock.bind(ipc.control_endpoint(runtime_dir, source_index))
        self.source_id = source_id
        self.reader, self.delivery, self.sessions, self.stills = reader, delivery, sessions, stills
        self.hot = hot
        self.dropped = 0

    async def handle(self, request: ControlRequest) -> ControlReply:
        if isinstance(request, (WhepOffer, WhipOffer, CloseSession)):
            return await self._session_request(request)
        if isinstance(request, SnapshotRequest):
            if self.stills is None:
                return ControlError(code="unavailable", detail="no snapshots: this source has no reader of its own")
            return await self.stills.take(request)
        if isinstance(request, UpdateSource):
            return self.hot.apply(request.source)
        if isinstance(request, DescribeRequest):
            if self.reader is None:
                return SourceDescription(source_id=self.source_id, state="offline", container=None, opened_at=None,
                                         packets=0, bytes=0, streams=[])
            description = self.reader.describe()
            if self.delivery is not None:
                description.video_delivery = self.delivery.video_mode
                description.audio_delivery = self.delivery.audio_mode
            if self.stills is not None:
                description.snapshot_decodes, description.snapshot_encodes = self.stills.decodes, self.stills.encodes
            return description
        return ControlError(code="bad_request", detail="unknown request")

    async def _session_request(self, request: WhepOffer | WhipOffer | CloseSession) -> ControlReply:
        manager = self.sessions
        try:
            if isinstance(request, CloseSession):
                if await manager.close(request.session_id, "deleted"):
                    return Done()
                return ControlError(code="not_found", detail=f"no session '{request.session_id}'")
            if isinstance(request, WhepOffer):
                session_id, sdp = await manager.whep(request.sdp, request.remote)
            else:
                session_id, sdp = await manager.whip(request.sdp, request.remote)
        except SessionError as exc:
            return ControlError(code=exc.code, detail=exc.detail)
        return SdpAnswer(session_id=session_id, sdp=sdp)

    async def _answer(self, identity: bytes, request_id: bytes, payload: bytes) -> None:
        try:
            reply = await self.handle(decode_request(payload))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.dropped += 1
            reply = ControlError(code="bad_request", detail=f"undecodable request: {exc}")
        except Exception:
            log.exception("control request failed")
            reply = ControlError(code="internal", detail="the worker failed to handle the request; see its log")
        await self.sock.send_multipart([identity, request_id, encode(reply)])

    async def run(self) -> None:
        """Requests are served concurrently: a slow negotiation never holds up a describe."""
        pending: set[asyncio.Task] = set()
        while True:
            frames = await self.sock.recv_multipart()
            if len(frames) != 3:
                self.dropped += 1
                continue
            task = asyncio.create_task(self._answer(*frames))
            pending.add(task)
            task.add_done_callback(pending.discard)
