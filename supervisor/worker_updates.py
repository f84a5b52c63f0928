"""Hand a running worker its source's new hot settings over its control channel (the same
ROUTER the API talks to), and say whether it took them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from protocol import ipc
from protocol.config import SourceSettings
from protocol.messages import Applied, ControlError, UpdateSource, decode_reply, encode

UPDATE_TIMEOUT_SEC = 2.0


async def update_in_place(runtime_dir: Path, src: SourceSettings) -> Applied | str:
    """What the worker applied of `src`; otherwise why it did not (then the caller restarts it)."""
    sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(ipc.control_endpoint(runtime_dir, src.index))
        await sock.send_multipart([b"update", encode(UpdateSource(src))])
        if not await sock.poll(UPDATE_TIMEOUT_SEC * 1000):
            return f"no answer within {UPDATE_TIMEOUT_SEC:g}s"
        frames = await sock.recv_multipart()
        reply = decode_reply(frames[-1])
    except (zmq.ZMQError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        return str(exc)
    finally:
        sock.close(0)
    if isinstance(reply, Applied):
        return reply
    if isinstance(reply, ControlError):
        return f"{reply.code}: {reply.detail}"
    return f"unexpected answer: {type(reply).__name__}"
