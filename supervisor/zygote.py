"""The worker template (zygote, workers/zygote.py) seen from the supervisor: a child like any
other (role `zygote`: output relayed, restarted with backoff, given up after a crash loop), the
socket it connects back to once its imports are done, and the launcher that has it fork a worker.

The supervisor is the workers' child subreaper, so a forked worker is its own child: it is
waited for, signalled, stopped and restarted by the same Child logic as a spawned one, and the
template dying never touches it. A worker is forked only from a template that is ready. While
one is starting (at service start, or after it died and came back), a worker waits for it up to
READY_WAIT_SEC; while none is coming (waiting out its backoff, given up) or a fork fails, the
worker is spawned as a fresh interpreter instead: a camera never waits on the template's
troubles, it only costs more memory."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from protocol.zygote import MAX_REPLY_BYTES, ZYGOTE_SOCKET, ForkRequest, decode_reply, encode, worker_cmdline
from supervisor.children import Child
from supervisor.launchers import ForkedProcess, Launcher, Running, Spawn, child_env, pipe_reader
from supervisor.restart_policy import RestartPolicy

log = logging.getLogger("icey.zygote")
PR_SET_CHILD_SUBREAPER = 36
READY_WAIT_SEC = 10.0  # a worker waits this long for a template that is starting
FORK_TIMEOUT_SEC = 10.0  # a template that takes longer to answer is killed (it is restarted)
# The template's argument area must hold a worker's command line: its own is `-m workers.zygote`
# where the worker's is `-m workers`, and the worker's adds `--source-id <at most 64 characters>`.
CMDLINE_ROOM = "." * (len("--source-id") + 2 + 64)


class ForkFailed(Exception):
    """The template did not fork the worker; the reason is the message."""


def become_subreaper() -> bool:
    """Orphaned descendants (every forked worker, once its fork helper exits) become our children,
    waited for through pidfds (Linux 5.3). False, with a warning, where the kernel cannot do both:
    workers are then spawned."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:
        log.warning("no pidfd support (%s): supervisor.zygote is off, every worker is spawned", exc)
        return False
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed (%s): supervisor.zygote is off, every worker is spawned",
                    os.strerror(ctypes.get_errno()))
        return False
    return True


def peer_pid(conn: socket.socket) -> int:
    pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return pid


class Zygote:
    def __init__(self, runtime_dir: Path, log_level: str, policy: RestartPolicy, on_change: Callable[[], None],
                 stop_timeout_sec: float) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(str(runtime_dir / ZYGOTE_SOCKET))
        self.listener.listen(4)
        self.listener.setblocking(False)
        argv = [sys.executable, "-m", "workers.zygote", "--runtime-dir", str(runtime_dir), "--log-level", log_level,
                "--cmdline-room", CMDLINE_ROOM]
        self._changed = asyncio.Event()  # the template connected, or its process changed state

        def changed() -> None:
            self._changed.set()
            on_change()

        self.child = Child("zygote", Spawn(argv), policy, changed, stop_timeout_sec)
        self._conn: socket.socket | None = None
        self._conn_pid: int | None = None
        self._lock = asyncio.Lock()  # one request at a time on the template's connection

    async def accept(self) -> None:
        """Take the connection of each template that comes up (only from the template's pid)."""
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.listener)
            pid = peer_pid(conn)
            if pid != self.child.info.pid:
                log.warning("zygote socket: refused a connection from pid %d, not the template", pid)
                conn.close()
                continue
            self._drop()
            conn.setblocking(False)
            self._conn, self._conn_pid = conn, pid
            self._changed.set()

    def launcher(self, role: str, args: list[str]) -> Launcher:
        """Start a worker (`python -m workers <args>`) forked from the template, or spawned when
        there is no template to fork it."""
        spawn = Spawn(worker_cmdline(sys.executable, args))

        async def launch() -> Running:
            conn = await self._ready()
            if conn is None:
                log.warning("no worker template is ready (it is %s); spawning %s", self.child.info.state, role)
                return await spawn()
            try:
                return await self._fork(conn, args)
            except (OSError, TimeoutError, ForkFailed) as exc:
                log.warning("the template did not fork %s (%s); spawning it instead", role, exc)
            return await spawn()

        return launch

    async def _ready(self) -> socket.socket | None:
        """The ready template's connection; None when there is none and none is coming soon."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_SEC
        while True:
            info = self.child.info
            if self._conn is not None and info.state == "running" and info.pid == self._conn_pid:
                return self._conn
            # "stopped" and not stopping: the service is starting and the template with it
            coming = info.state == "running" or (info.state == "stopped" and not self.child.stopping)
            remaining = deadline - loop.time()
            if not coming or remaining <= 0:
                return None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _fork(self, conn: socket.socket, args: list[str]) -> ForkedProcess:
        """The worker gets its output pipe and a go-ahead pipe; it starts only on our byte, sent
        once it is watched (closed without it, the worker exits at once)."""
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        go_read, go_write = os.pipe2(os.O_CLOEXEC)
        try:
            async with self._lock:
                try:
                    socket.send_fds(conn, [encode(ForkRequest(args=args, env=child_env()))], [write_end, go_read])
                    os.close(write_end)
                    os.close(go_read)
                    write_end = go_read = -1
                    data = await asyncio.wait_for(loop.sock_recv(conn, MAX_REPLY_BYTES), FORK_TIMEOUT_SEC)
                except TimeoutError:
                    log.error("the template did not answer a fork request within %gs; killing it", FORK_TIMEOUT_SEC)
                    self._drop()
                    self.child.signal(signal.SIGKILL)
                    raise
                except BaseException:  # an error or a cancelled wait: a late answer must not meet the next request
                    self._drop()
                    raise
            if not data:
                self._drop()
                raise ForkFailed("the template closed its connection")
            try:
                reply = decode_reply(data)
            except msgspec.DecodeError as exc:
                raise ForkFailed(f"a garbled answer: {exc}") from exc
            if reply.pid is None:
                raise ForkFailed(reply.error or "no pid")
            stdout = await pipe_reader(read_end)
            read_end = -1
            worker = ForkedProcess(reply.pid, stdout)
            os.write(go_write, b"\1")
            return worker
        finally:
            for fd in (read_end, write_end, go_read, go_write):
                if fd >= 0:
                    os.close(fd)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._conn_pid = None, None

    def close(self) -> None:
        self._drop()
        self.listener.close()
