"""Request/reply to workers over their ROUTER sockets, with a timeout: a slow or dead worker
gives the caller an error in bounded time, never a hung request."""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.config import Settings
from protocol.messages import ControlReply, ControlRequest, decode_reply, encode

log = logging.getLogger("icey.control")
DEFAULT_TIMEOUT_SEC = 3.0
CONNECT_GRACE_SEC = 1.0


class WorkerUnavailable(Exception):
    """No worker is connected to take the request (it is restarting or gone)."""


class WorkerTimeout(Exception):
    """The worker took the request but did not answer in time."""


class _Channel:
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only to a connected worker
        self.sock.setsockopt(zmq.SNDHWM, 64)
        self.sock.setsockopt(zmq.MAXMSGSIZE, ipc.MAX_CONTROL_MESSAGE)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 50)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        self.sock.connect(endpoint)
        self.pending: dict[bytes, asyncio.Future[ControlReply]] = {}
        self.ids = itertools.count(1)
        self.reader: asyncio.Task | None = None

    async def read_replies(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            if len(frames) != 2:
                continue
            future = self.pending.pop(frames[0], None)
            if future is None or future.done():
                continue  # a reply that arrived after its timeout
            try:
                future.set_result(decode_reply(frames[1]))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                future.set_exception(WorkerUnavailable(f"undecodable reply: {exc}"))


class ControlClient:
    def __init__(self, settings: Settings, runtime_dir: Path) -> None:
        ctx = zmq.asyncio.Context.instance()
        self.channels = {src.id: _Channel(ctx, ipc.control_endpoint(runtime_dir, src.index))
                         for src in settings.sources}

    async def request(self, source_id: str, request: ControlRequest,
                      timeout: float = DEFAULT_TIMEOUT_SEC) -> ControlReply:
        channel = self.channels[source_id]
        if channel.reader is None or channel.reader.done():
            channel.reader = asyncio.create_task(channel.read_replies())
        request_id = str(next(channel.ids)).encode()
        future: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        channel.pending[request_id] = future
        deadline = asyncio.get_running_loop().time() + CONNECT_GRACE_SEC
        while True:
            try:
                await channel.sock.send_multipart([request_id, encode(request)], flags=zmq.NOBLOCK)
                break
            except zmq.Again:
                # Not connected (yet): a worker that just started or restarted gets a moment.
                if asyncio.get_running_loop().time() >= deadline:
                    channel.pending.pop(request_id, None)
                    raise WorkerUnavailable(f"worker {source_id} is not connected") from None
                await asyncio.sleep(0.02)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise WorkerTimeout(f"worker {source_id} did not answer within {timeout:.1f}s") from None
        finally:
            channel.pending.pop(request_id, None)
