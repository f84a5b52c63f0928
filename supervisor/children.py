"""One supervised child process: spawn, relay its output to the log, restart it with backoff,
give it up after a crash loop, stop it within a bound."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

from protocol.child import SUPERVISOR_PID_ENV
from protocol.logs import LEVELS, escape_controls, format_line, line_role
from protocol.messages import ProcessInfo
from protocol.scrub import scrub_text
from supervisor.output_lines import bounded_lines
from supervisor.restart_policy import RestartPolicy

log = logging.getLogger("icey.children")


def exit_code(returncode: int) -> int:
    """A shell-style code: killed by signal N reports 128+N (SIGKILL -> 137)."""
    return 128 - returncode if returncode < 0 else returncode


class Child:
    def __init__(self, role: str, argv: list[str], policy: RestartPolicy, on_change: Callable[[], None],
                 pass_fds: tuple[int, ...] = (), raw_level: Callable[[str], str] = lambda line: "error") -> None:
        self.role = role
        self.argv = argv
        self.raw_level = raw_level  # the level of an output line not in our format (a traceback; coturn)
        self.policy = policy
        self.on_change = on_change
        self.pass_fds = pass_fds
        self.info = ProcessInfo(role=role, pid=None, state="stopped")
        self.proc: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.given_up = asyncio.Event()

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, SUPERVISOR_PID_ENV: str(os.getpid())}
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, pass_fds=self.pass_fds, env=env, start_new_session=True)
        return proc

    async def _relay_output(self, proc: asyncio.subprocess.Process) -> None:
        """Lines in our format that carry this child's role pass through; anything else (a
        traceback, coturn's output, a line claiming another process's role) is framed with the
        role of the pipe it came from. Reads until EOF whatever the lines hold."""
        assert proc.stdout is not None
        async for raw in bounded_lines(proc.stdout):
            text = raw.decode("utf-8", "replace").removesuffix("\r")
            if line_role(text) == self.role:
                out = escape_controls(scrub_text(text))  # the child's own logger already applied the level
            else:
                level = self.raw_level(text)
                if not logging.getLogger().isEnabledFor(LEVELS[level]):
                    continue
                out = format_line(self.role, level, text)
            try:
                sys.stderr.write(out + "\n")
                sys.stderr.flush()
            except OSError:
                pass  # nowhere to report it; keep draining the pipe so the child never blocks on it

    async def _run_once(self, started: float) -> str:
        """Start the child and wait for it to end; says how it ended. A failed start (exec error,
        EMFILE, EAGAIN) counts as a crash: it is retried with backoff and given up like one."""
        try:
            self.proc = proc = await self._spawn()
        except Exception as exc:  # whatever the cause, supervision of this child must go on
            self.proc = None
            self.info.last_exit_code, self.info.spawn_error = None, f"{type(exc).__name__}: {exc}"
            return f"could not be started ({self.info.spawn_error})"
        self.info.pid, self.info.state, self.info.started_mono = proc.pid, "running", started
        self.info.next_restart_mono, self.info.spawn_error = None, None
        self.on_change()
        relay = asyncio.create_task(self._relay_output(proc))
        returncode = await proc.wait()
        await asyncio.wait({relay}, timeout=1.0)
        self.info.last_exit_code = exit_code(returncode)
        return f"exited with code {self.info.last_exit_code}"

    async def keep_running(self) -> None:
        while not self.stopping:
            started = time.monotonic()
            ended = await self._run_once(started)
            if self.stopping:
                break
            now = time.monotonic()
            delay = self.policy.next_delay(now, now - started)
            if delay is None:
                self.info.state, self.info.pid = "given-up", None
                log.error("%s %s; crash loop, giving up", self.role, ended)
                self.on_change()
                self.given_up.set()
                return
            self.info.state, self.info.pid, self.info.next_restart_mono = "restarting", None, now + delay
            log.warning("%s %s; restarting in %.1fs", self.role, ended, delay)
            self.on_change()
            await asyncio.sleep(delay)
            self.info.restarts += 1
        self.info.state, self.info.pid = "stopped", None
        self.on_change()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        self.stopping = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            log.warning("%s did not stop within %.1fs; killing it", self.role, timeout)
            self.signal(signal.SIGKILL)
            await proc.wait()
