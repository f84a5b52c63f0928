"""How a Child's process comes to be: spawned (a fresh interpreter, or coturn) or forked from the
worker template (supervisor/zygote.py). Either way the Child gets something with a pid, the
output pipe it relays, and the same wait semantics (`returncode` negative when a signal ended
the process, as asyncio's), so backoff, restart, stop and give-up are the Child's alone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from protocol.child import SUPERVISOR_PID_ENV


class Running(Protocol):
    """A started child process (asyncio.subprocess.Process is one)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> asyncio.StreamReader | None: ...

    async def wait(self) -> int: ...


Launcher = Callable[[], Awaitable[Running]]


def child_env() -> dict[str, str]:
    """The environment every child starts with: ours, and our pid so it can check it is ours."""
    return {**os.environ, SUPERVISOR_PID_ENV: str(os.getpid())}


class Spawn:
    """Run `argv` as a new process: its own session, stdin from /dev/null, stdout and stderr on
    one pipe, `pass_fds` kept open."""

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self.argv = argv
        self.pass_fds = pass_fds

    async def __call__(self) -> Running:
        return await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, pass_fds=self.pass_fds, env=child_env(), start_new_session=True)


class ForkedProcess:
    """A worker the template forked and the kernel re-parented to us (we are its subreaper):
    waited for through a pidfd on the event loop, reaped with waitpid, so its exit status is the
    real one. Until we reap it its pid cannot be reused, so signalling it by pid is safe."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader) -> None:
        self.pid = pid
        self.stdout: asyncio.StreamReader | None = stdout
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not ours after all (cannot happen once re-parented): call it lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


async def pipe_reader(fd: int) -> asyncio.StreamReader:
    """The read end of a pipe as a StreamReader; the transport closes the fd at EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**16)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader
