"""`python -m workers.zygote --runtime-dir DIR --log-level L --cmdline-room ....`: the worker
template, started by the supervisor only (`supervisor.zygote`, on by default).

It imports what every worker runs (PyAV, aiortc, numpy, the workers package) with the garbage
collector off (freed garbage would leave holes in shared pages that a fork's allocations fill),
moves the objects it holds out of the collector's reach (`gc.freeze()`: a collection in a worker
would otherwise write to every shared page), connects to the supervisor, and forks one worker per
request: the workers share those pages copy-on-write instead of importing it all again. It
starts no thread, no event loop and no ZeroMQ context (it checks the thread count before it
serves), so a fork inherits none.

Each worker is forked twice: a helper forks it and exits at once, so the kernel re-parents the
worker to the supervisor (a child subreaper), which waits for it and sees its real exit status,
as for a spawned worker; the template dying never touches it. The worker waits for the
supervisor's go-ahead before it does anything, so none runs that the supervisor does not watch.
It then takes what a spawned worker is given: its own session, stdin from /dev/null, stdout and
stderr on the pipe the supervisor sent (the output relay frames it with the worker's role), its
own environment, argv and command line, fresh random state; the template's socket is closed.
Only then does it ask to die with the supervisor (a parent-death signal set earlier would fire
when the helper exits). `--cmdline-room` only makes the argument area long enough for the
worker's command line (workers/cmdline.py)."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import random
import socket
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import msgspec

from protocol.child import SUPERVISOR_PID_ENV, die_with_parent
from protocol.logs import setup_logging
from protocol.zygote import (
    MAX_REQUEST_BYTES,
    ZYGOTE_SOCKET,
    ForkReply,
    ForkRequest,
    decode_request,
    encode,
    worker_cmdline,
)
from workers.cmdline import set_cmdline

log = logging.getLogger("icey.zygote")


def preload() -> ModuleType:
    """Import what a worker imports: the worker program (which imports PyAV, aiortc, numpy and
    the workers package) and the few modules a running worker imports late (found with
    PYTHONPROFILEIMPORTTIME on a spawned worker); returns the program, whose main() each fork runs."""
    import av.subtitles.stream  # noqa: F401  (opening a container)
    import numpy.ma  # noqa: F401  (intelligence)
    import numpy.random  # noqa: F401  (reseeded in each fork)

    import workers.__main__ as program
    importlib.import_module("_strptime")  # the first time.strptime
    return program


def fork_detached() -> int:
    """Fork a process that is re-parented to the supervisor: 0 in it, its pid in the template
    (once the helper between them has exited)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    helper = os.fork()
    if helper == 0:
        try:
            os.close(read_end)
            worker = os.fork()
            if worker == 0:
                os.close(write_end)
                return 0
            os.write(write_end, worker.to_bytes(4, "little"))
        except BaseException:  # the helper must never run the template's code
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    try:
        data = os.read(read_end, 4)
    finally:
        os.close(read_end)
        os.waitpid(helper, 0)
    if len(data) != 4:
        raise OSError("the fork helper ended before it forked the worker")
    return int.from_bytes(data, "little")


def serve(conn: socket.socket) -> tuple[ForkRequest, int, int]:
    """Answer fork requests until the supervisor hangs up (then exit). Returns only in a forked
    worker: its request, its output pipe and its go-ahead pipe."""
    while True:
        try:
            data, fds, flags, _ = socket.recv_fds(conn, MAX_REQUEST_BYTES, 3)
        except ConnectionError:
            data, fds, flags = b"", [], 0
        if not data:
            raise SystemExit(0)
        reply = ForkReply()
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != 2:
                raise ValueError("a fork request needs an output and a go-ahead pipe and at most "
                                 f"{MAX_REQUEST_BYTES} bytes")
            request = decode_request(data)
            reply.pid = fork_detached()
            if reply.pid == 0:
                return request, fds[0], fds[1]
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            log.error("could not fork a worker: %s", exc)
            reply.error = f"{type(exc).__name__}: {exc}"
        finally:
            if reply.pid != 0:
                for fd in fds:
                    os.close(fd)
        conn.send(encode(reply))


def become_worker(request: ForkRequest, out: int, go: int, program_path: str) -> None:
    """Everything a spawned worker would have been given (see the module docstring). First the
    supervisor's go-ahead: it comes once the supervisor has the worker's pid and waits for it (the
    helper has exited by then, so the worker is the supervisor's child); the pipe's end without it
    (a fork the supervisor gave up on, the supervisor gone) means nobody would supervise it."""
    started = os.read(go, 1) == b"\1"
    os.close(go)
    if not started or os.getppid() != int(request.env.get(SUPERVISOR_PID_ENV, "0")):
        os._exit(1)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.environ.clear()
    os.environ.update(request.env)
    sys.argv = [program_path, *request.args]  # as `python -m workers` sets it
    set_cmdline(worker_cmdline(sys.executable, request.args))
    random.seed()  # the at-fork hook does it too; numpy has none
    import numpy.random
    numpy.random.seed()


def main() -> None:
    parser = argparse.ArgumentParser(prog="workers.zygote")
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--cmdline-room", default="")
    args = parser.parse_args()
    die_with_parent()
    setup_logging("zygote", args.log_level)
    started = time.monotonic()
    gc.disable()  # no collection while importing: the garbage it would free leaves holes that forks fill
    program = preload()
    if threading.active_count() != 1:
        log.error("an import started a thread (%s); forking now would be unsafe",
                  ", ".join(t.name for t in threading.enumerate()))
        raise SystemExit(1)
    gc.freeze()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(str(args.runtime_dir / ZYGOTE_SOCKET))
    log.info("ready in %.2fs: %d modules loaded, %d objects frozen", time.monotonic() - started,
             len(sys.modules), gc.get_freeze_count())
    request, out, go = serve(conn)
    conn.close()
    gc.enable()
    become_worker(request, out, go, program.__file__ or sys.argv[0])
    program.main()


if __name__ == "__main__":
    main()
