"""Restart backoff and crash-loop give-up (supervisor.restart_policy)."""

from __future__ import annotations

from protocol.config import SupervisorConfig
from supervisor.restart_policy import RestartPolicy


def policy(initial=0.5, max_sec=8.0, stable=30.0, limit=100, window=60.0) -> RestartPolicy:
    return RestartPolicy(initial_sec=initial, max_sec=max_sec, stable_after_sec=stable, crash_limit=limit,
                         window_sec=window)


def test_backoff_doubles_up_to_the_maximum():
    p = policy(initial=0.5, max_sec=8.0, window=1.0)
    delays = [p.next_delay(now=10.0 * i, ran_for=0.1) for i in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_backoff_max_that_is_not_a_power_of_two_is_respected():
    p = policy(initial=1.0, max_sec=5.0, window=1.0)
    delays = [p.next_delay(now=10.0 * i, ran_for=0.1) for i in range(5)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_stable_run_resets_the_backoff():
    p = policy(initial=0.5, max_sec=30.0, stable=30.0, window=1.0)
    assert [p.next_delay(now=10.0 * i, ran_for=1.0) for i in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert p.next_delay(now=100.0, ran_for=30.0) == 0.5
    assert p.next_delay(now=110.0, ran_for=1.0) == 1.0


def test_run_just_short_of_stable_does_not_reset():
    p = policy(initial=0.5, max_sec=30.0, stable=30.0, window=1.0)
    p.next_delay(now=0.0, ran_for=1.0)
    p.next_delay(now=10.0, ran_for=1.0)
    assert p.next_delay(now=20.0, ran_for=29.9) == 2.0


def test_gives_up_after_crash_limit_deaths_within_the_window():
    p = policy(limit=5, window=60.0)
    results = [p.next_delay(now=float(i), ran_for=0.5) for i in range(5)]
    assert all(r is not None for r in results[:4])
    assert results[4] is None


def test_deaths_spread_beyond_the_window_never_give_up():
    p = policy(limit=3, window=60.0)
    results = [p.next_delay(now=61.0 * i, ran_for=0.5) for i in range(20)]
    assert None not in results


def test_old_deaths_leave_the_window():
    p = policy(limit=3, window=60.0)
    assert p.next_delay(now=0.0, ran_for=0.1) is not None
    assert p.next_delay(now=1.0, ran_for=0.1) is not None
    # Both earlier deaths are more than 60 s old by now: this is the only one in the window.
    assert p.next_delay(now=100.0, ran_for=0.1) is not None
    assert p.next_delay(now=101.0, ran_for=0.1) is not None
    assert p.next_delay(now=102.0, ran_for=0.1) is None


def test_from_config_converts_milliseconds():
    cfg = SupervisorConfig(restart_initial_ms=250, restart_max_ms=1000, stable_after_sec=5.0, crash_loop_limit=4,
                           crash_loop_window_sec=9.0)
    p = RestartPolicy.from_config(cfg)
    assert (p.initial_sec, p.max_sec, p.stable_after_sec, p.crash_limit, p.window_sec) == (0.25, 1.0, 5.0, 4, 9.0)
    assert [p.next_delay(now=10.0 * i, ran_for=0.1) for i in range(4)] == [0.25, 0.5, 1.0, 1.0]


def test_reset_forgets_the_backoff_and_the_crash_window():
    p = policy(initial=0.5, limit=3, window=60.0)
    assert [p.next_delay(now=0.0, ran_for=0.1), p.next_delay(now=1.0, ran_for=0.1)] == [0.5, 1.0]
    p.reset()
    assert p.next_delay(now=2.0, ran_for=0.1) == 0.5  # the third death in the window, but counted afresh
    assert p.next_delay(now=3.0, ran_for=0.1) == 1.0
    assert p.next_delay(now=4.0, ran_for=0.1) is None


def test_given_up_retry_comes_from_config_unless_turned_off():
    cfg = SupervisorConfig(given_up_retry_sec=120.0)
    assert RestartPolicy.from_config(cfg).given_up_retry_sec == 120.0
    assert RestartPolicy.from_config(cfg, retry_given_up=False).given_up_retry_sec == 0.0
