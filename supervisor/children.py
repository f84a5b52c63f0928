"""One supervised child process: start it (its launcher spawns or forks it), relay its output to
the log, restart it with backoff, give it up after a crash loop (and try it again later), restart
it on request, stop it within a bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

from protocol.logs import LEVELS, escape_controls, format_line, line_role
from protocol.messages import ProcessInfo
from protocol.scrub import scrub_text
from supervisor.launchers import Launcher, Running
from supervisor.output_lines import bounded_lines
from supervisor.restart_policy import RestartPolicy

log = logging.getLogger("icey.children")


def exit_code(returncode: int) -> int:
    """A shell-style code: killed by signal N reports 128+N (SIGKILL -> 137)."""
    return 128 - returncode if returncode < 0 else returncode


class Child:
    def __init__(self, role: str, launch: Launcher, policy: RestartPolicy, on_change: Callable[[], None],
                 stop_timeout_sec: float, raw_level: Callable[[str], str] = lambda line: "error") -> None:
        self.role = role
        self.launch = launch
        self.raw_level = raw_level  # the level of an output line not in our format (a traceback; coturn)
        self.policy = policy
        self.on_change = on_change
        self.stop_timeout_sec = stop_timeout_sec
        self.info = ProcessInfo(role=role, pid=None, state="stopped")
        self.proc: Running | None = None
        self.stopping = False
        self.given_up = asyncio.Event()
        self._restart = asyncio.Event()  # set by request_restart, cleared by the start it causes

    async def _relay_output(self, proc: Running) -> None:
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
        """Start the child and wait for it to end (a restart request stops it); says how it ended.
        A failed start (exec error, EMFILE, EAGAIN) counts as a crash: it is retried with backoff
        and given up like one."""
        try:
            self.proc = proc = await self.launch()
        except Exception as exc:  # whatever the cause, supervision of this child must go on
            self.proc = None
            self.info.last_exit_code, self.info.spawn_error = None, f"{type(exc).__name__}: {exc}"
            return f"could not be started ({self.info.spawn_error})"
        self.info.pid, self.info.state, self.info.started_mono = proc.pid, "running", started
        self.info.next_restart_mono, self.info.spawn_error = None, None
        self.on_change()
        relay = asyncio.create_task(self._relay_output(proc))
        returncode = await self._run_until_exit(proc)
        await asyncio.wait({relay}, timeout=1.0)
        self.info.last_exit_code = exit_code(returncode)
        return f"exited with code {self.info.last_exit_code}"

    async def keep_running(self) -> None:
        while not self.stopping:
            self._restart.clear()  # this start answers any request made before it
            started = time.monotonic()
            ended = await self._run_once(started)
            if self.stopping:
                break
            if self._restart.is_set():
                log.info("%s %s on request; starting it again", self.role, ended)
            else:
                await self._after_crash(time.monotonic(), started, ended)
            self.info.restarts += 1
        self.info.state, self.info.pid = "stopped", None
        self.on_change()

    async def _run_until_exit(self, proc: Running) -> int:
        """The exit status; a restart request stops the process first."""
        exited = asyncio.create_task(proc.wait())
        asked = asyncio.create_task(self._restart.wait())
        try:
            await asyncio.wait({exited, asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            asked.cancel()
        if not exited.done():
            await self._terminate(proc)
        return await exited

    async def _after_crash(self, now: float, started: float, ended: str) -> None:
        """Wait out the backoff; after a crash loop, give up and wait for the slow retry (if any)
        or a restart request, whichever comes first."""
        delay = self.policy.next_delay(now, now - started)
        if delay is None:
            retry = self.policy.given_up_retry_sec
            self.info.state, self.info.pid = "given-up", None
            self.info.next_restart_mono = now + retry if retry else None
            log.error("%s %s; crash loop, giving up%s", self.role, ended,
                      f" (trying again in {retry:g}s)" if retry else "")
            self.on_change()
            self.given_up.set()
            await self._pause(retry or None)
            self.given_up.clear()
            self.policy.reset()
            if not self._restart.is_set():
                log.warning("%s: trying again after giving up", self.role)
            return
        self.info.state, self.info.pid, self.info.next_restart_mono = "restarting", None, now + delay
        log.warning("%s %s; restarting in %.1fs", self.role, ended, delay)
        self.on_change()
        await self._pause(delay)

    async def _pause(self, seconds: float | None) -> None:
        """Sleep `seconds` (None: until asked); a restart request cuts it short."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._restart.wait(), seconds)

    def request_restart(self) -> str:
        """Start afresh now, its backoff and crash history forgotten: a running child is stopped
        first, one waiting out its backoff or given up starts at once. Returns what happens."""
        was = self.info.state
        self.policy.reset()
        self._restart.set()
        log.warning("%s: restart requested (it was %s)", self.role, was)
        return f"{self.role} was {was}; starting it again"

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self) -> None:
        """Stop for good: SIGTERM, then SIGKILL after the stop timeout."""
        self.stopping = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        await self._terminate(proc)

    async def _terminate(self, proc: Running) -> None:
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout_sec)
        except TimeoutError:
            log.warning("%s did not stop within %.1fs; killing it", self.role, self.stop_timeout_sec)
            self.signal(signal.SIGKILL)
            await proc.wait()
