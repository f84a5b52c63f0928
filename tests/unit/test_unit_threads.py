"""The thread guard: whatever escapes a worker thread is recorded once and reported."""

from __future__ import annotations

from workers.threads import ThreadDeath, ThreadGuard


def test_an_escaping_exception_is_a_death_reported_once():
    guard = ThreadGuard()
    deaths: list[ThreadDeath] = []
    guard.on_death(deaths.append)

    def bug() -> None:
        raise KeyError("rtsp://admin:pw@cam.local/s")

    first = guard.thread("decode-video-cam", bug)
    first.start()
    first.join(5)
    second = guard.thread("vision", lambda: 1 / 0)
    second.start()
    second.join(5)
    assert deaths == [guard.death]
    assert guard.death is not None and guard.death.thread == "decode-video-cam"
    assert guard.death.describe().startswith("worker thread decode-video-cam died: KeyError:")
    assert "pw@" not in guard.death.error  # scrubbed: it goes into lastError


def test_system_exit_in_a_thread_does_not_end_it_silently():
    def leave() -> None:
        raise SystemExit(3)

    guard = ThreadGuard()
    thread = guard.thread("retention-cam", leave)
    thread.start()
    thread.join(5)
    assert guard.death == ThreadDeath("retention-cam", "SystemExit: 3")


def test_a_thread_that_returns_is_no_death():
    guard = ThreadGuard()
    thread = guard.thread("clips-cam", lambda: None)
    thread.start()
    thread.join(5)
    assert guard.death is None
