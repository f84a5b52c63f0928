"""Answers the API's requests on the supervisor's ROUTER socket (the supervisor channel): what
only the process that owns the children can do, such as restarting a worker.

The handler only records the request (the child acts on it in its own task), so a reply never
waits on a process stopping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.messages import SupervisorReply, SupervisorRequest, decode_supervisor_request, encode

log = logging.getLogger("icey.supervisor")


class SupervisorControl:
    def __init__(self, runtime_dir: Path, handle: Callable[[SupervisorRequest], SupervisorReply]) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ipc.supervisor_endpoint(runtime_dir))
        self.handle = handle

    async def run(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            if len(frames) != 3:
                log.warning("dropped a malformed request on the supervisor channel")
                continue
            identity, request_id, payload = frames
            try:
                reply = self.handle(decode_supervisor_request(payload))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                reply = SupervisorReply(error="bad_request", detail=f"undecodable request: {exc}")
            await self.sock.send_multipart([identity, request_id, encode(reply)])

    def close(self) -> None:
        self.sock.close(0)
