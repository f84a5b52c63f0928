"""When to restart a child that died, when to give up on it (a crash loop), and when to try a
given-up child again."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from protocol.config import SupervisorConfig


@dataclass
class RestartPolicy:
    initial_sec: float
    max_sec: float
    stable_after_sec: float
    crash_limit: int
    window_sec: float
    given_up_retry_sec: float = 0.0  # 0: a given-up child only comes back on request
    _delay: float = 0.0
    _crashes: deque[float] = field(default_factory=deque)

    @classmethod
    def from_config(cls, cfg: SupervisorConfig, retry_given_up: bool = True) -> RestartPolicy:
        return cls(cfg.restart_initial_ms / 1000, cfg.restart_max_ms / 1000, cfg.stable_after_sec,
                   cfg.crash_loop_limit, cfg.crash_loop_window_sec,
                   cfg.given_up_retry_sec if retry_given_up else 0.0)

    def reset(self) -> None:
        """Forget the backoff and the crash history: the child starts afresh (a retry after giving
        up, or a restart an operator asked for)."""
        self._delay = 0.0
        self._crashes.clear()

    def next_delay(self, now: float, ran_for: float) -> float | None:
        """Delay before the next start, or None once `crash_limit` deaths fall in the window.
        A run longer than `stable_after_sec` resets the backoff."""
        if ran_for >= self.stable_after_sec:
            self._delay = 0.0
        self._crashes.append(now)
        while self._crashes and now - self._crashes[0] > self.window_sec:
            self._crashes.popleft()
        if len(self._crashes) >= self.crash_limit:
            return None
        self._delay = self.initial_sec if self._delay == 0 else min(self._delay * 2, self.max_sec)
        return self._delay
