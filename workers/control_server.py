"""Answers the API's requests on this worker's ROUTER socket (the control channel)."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.messages import (
    ControlError,
    ControlReply,
    ControlRequest,
    DescribeRequest,
    SourceDescription,
    decode_request,
    encode,
)
from workers.source_reader import SourceReader

log = logging.getLogger("icey.control")


class ControlServer:
    def __init__(self, ctx: zmq.asyncio.Context, runtime_dir: Path, source_index: int, source_id: str) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ipc.control_endpoint(runtime_dir, source_index))
        self.source_id = source_id
        self.reader: SourceReader | None = None
        self.dropped = 0

    def handle(self, request: ControlRequest) -> ControlReply:
        if isinstance(request, DescribeRequest):
            r = self.reader
            if r is None:
                return SourceDescription(source_id=self.source_id, state="offline", container=None, opened_at=None,
                                         packets=0, bytes=0, streams=[])
            return SourceDescription(source_id=self.source_id, state=r.state, container=r.container_name,
                                     opened_at=r.opened_at, packets=r.stats.packets, bytes=r.stats.bytes,
                                     streams=list(r.streams))
        return ControlError(code="bad_request", detail="unknown request")

    async def run(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            if len(frames) != 3:
                self.dropped += 1
                continue
            identity, request_id, payload = frames
            try:
                reply = self.handle(decode_request(payload))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.dropped += 1
                reply = ControlError(code="bad_request", detail=f"undecodable request: {exc}")
            await self.sock.send_multipart([identity, request_id, encode(reply)])
