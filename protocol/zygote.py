"""What the supervisor and the worker template (the zygote, `python -m workers.zygote`) say to
each other. The template connects to the supervisor's `zygote.sock` in the private runtime dir
once its imports are done (that connection is its "ready"); each ForkRequest carries two pipes as
SCM_RIGHTS, the new worker's output and its go-ahead (the supervisor writes one byte there once it
watches the worker), and the template answers with the worker's pid."""

from __future__ import annotations

import msgspec

ZYGOTE_SOCKET = "zygote.sock"
# A request holds the worker's arguments and environment; a bigger one is refused (the supervisor
# then spawns that worker instead). SOCK_SEQPACKET keeps each message whole.
MAX_REQUEST_BYTES = 256 * 1024
MAX_REPLY_BYTES = 4096
# The worker program's name as `python -m` takes it; a forked worker's command line reads
# `<python> -m workers <args>`, exactly as a spawned one's.
WORKER_MODULE = "workers"


class ForkRequest(msgspec.Struct, kw_only=True):
    """Fork one worker: `args` are what follows `-m workers`, `env` its whole environment."""

    args: list[str]
    env: dict[str, str]


class ForkReply(msgspec.Struct, kw_only=True):
    """The forked worker's pid (already re-parented to the supervisor), or why there is none."""

    pid: int | None = None
    error: str | None = None


def worker_cmdline(python: str, args: list[str]) -> list[str]:
    """The command line a spawned worker runs with; a forked one shows the same."""
    return [python, "-m", WORKER_MODULE, *args]


_request_decoder = msgspec.msgpack.Decoder(ForkRequest)
_reply_decoder = msgspec.msgpack.Decoder(ForkReply)
encode = msgspec.msgpack.encode


def decode_request(data: bytes) -> ForkRequest:
    return _request_decoder.decode(data)


def decode_reply(data: bytes) -> ForkReply:
    return _reply_decoder.decode(data)
