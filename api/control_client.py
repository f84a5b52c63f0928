"""Request/reply over ROUTER sockets, with a timeout: to each worker (the control channel) and to
the supervisor (the supervisor channel). A slow or absent peer gives the caller an error in
bounded time, never a hung request."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.config import Settings
from protocol.messages import (
    ControlReply,
    ControlRequest,
    SupervisorReply,
    SupervisorRequest,
    decode_reply,
    decode_supervisor_reply,
    encode,
)

log = logging.getLogger("icey.control")
DEFAULT_TIMEOUT_SEC = 3.0
CONNECT_GRACE_SEC = 1.0
Reply = TypeVar("Reply")


class PeerUnavailable(Exception):
    """Nobody is connected to take the request (a worker restarting or gone, the supervisor stopping)."""


class PeerTimeout(Exception):
    """The peer took the request but did not answer in time."""


class _Channel(Generic[Reply]):
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, peer: str, decode: Callable[[bytes], Reply]) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only to a connected peer
        self.sock.setsockopt(zmq.SNDHWM, 64)
        self.sock.setsockopt(zmq.MAXMSGSIZE, ipc.MAX_CONTROL_MESSAGE)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 50)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        self.sock.connect(endpoint)
        self.peer, self.decode = peer, decode
        self.pending: dict[bytes, asyncio.Future[Reply]] = {}
        self.ids = itertools.count(1)
        self.reader: asyncio.Task | None = None

    def close(self) -> None:
        """Pending requests fail at once: nobody will answer them."""
        if self.reader is not None:
            self.reader.cancel()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(PeerUnavailable(f"{self.peer} was removed"))
        self.pending.clear()
        self.sock.close(0)

    async def read_replies(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            if len(frames) != 2:
                continue
            future = self.pending.pop(frames[0], None)
            if future is None or future.done():
                continue  # a reply that arrived after its timeout
            try:
                future.set_result(self.decode(frames[1]))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                future.set_exception(PeerUnavailable(f"undecodable reply: {exc}"))

    async def request(self, request: msgspec.Struct, timeout: float) -> Reply:
        if self.reader is None or self.reader.done():
            self.reader = asyncio.create_task(self.read_replies())
        request_id = str(next(self.ids)).encode()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        deadline = asyncio.get_running_loop().time() + CONNECT_GRACE_SEC
        while True:
            try:
                await self.sock.send_multipart([request_id, encode(request)], flags=zmq.NOBLOCK)
                break
            except zmq.Again:
                # Not connected (yet): a peer that just started or restarted gets a moment.
                if asyncio.get_running_loop().time() >= deadline:
                    self.pending.pop(request_id, None)
                    raise PeerUnavailable(f"{self.peer} is not connected") from None
                await asyncio.sleep(0.02)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise PeerTimeout(f"{self.peer} did not answer within {timeout:.1f}s") from None
        finally:
            self.pending.pop(request_id, None)


class ControlClient:
    def __init__(self, settings: Settings, runtime_dir: Path) -> None:
        self.ctx = zmq.asyncio.Context.instance()
        self.runtime_dir = runtime_dir
        self.channels: dict[str, _Channel[ControlReply]] = {}
        self.sync(settings)
        self.supervisor = _Channel(self.ctx, ipc.supervisor_endpoint(runtime_dir), "the supervisor",
                                   decode_supervisor_reply)

    def sync(self, settings: Settings) -> None:
        """A channel per configured source: new sources get one, removed ones lose theirs (a
        source keeps its index, so an existing channel stays connected to the right worker)."""
        wanted = {src.id: src.index for src in settings.sources}
        for source_id in [sid for sid in self.channels if sid not in wanted]:
            self.channels.pop(source_id).close()
        for source_id, index in wanted.items():
            if source_id not in self.channels:
                self.channels[source_id] = _Channel(self.ctx, ipc.control_endpoint(self.runtime_dir, index),
                                                    f"worker {source_id}", decode_reply)

    async def request(self, source_id: str, request: ControlRequest,
                      timeout: float = DEFAULT_TIMEOUT_SEC) -> ControlReply:
        channel = self.channels.get(source_id)
        if channel is None:
            raise PeerUnavailable(f"worker {source_id} is not configured")
        return await channel.request(request, timeout)

    async def ask_supervisor(self, request: SupervisorRequest,
                             timeout: float = DEFAULT_TIMEOUT_SEC) -> SupervisorReply:
        return await self.supervisor.request(request, timeout)
