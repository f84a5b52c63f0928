"""The reader never dies of what it reads and never stays `online` without packets: errors reopen
the source (counted as outages and attempts), a tap's bad unit is dropped and counted, and the
stall watchdog makes a silent source, or a file paced across a timestamp gap, reconnect."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from fractions import Fraction

import av
import msgspec
import numpy as np
import pytest

import workers.source.reader as reader_module
from protocol.messages import SourceStatus
from supervisor.config_loader import load_settings
from supervisor.flags import parse_flags
from workers.source.base import Interrupted
from workers.source.reader import SourceReader
from workers.source.taps import SourceStreams
from workers.source.watchdog import UNBLOCK_GRACE_SEC, StallWatchdog

IDR = b"\x00\x00\x00\x01\x65\x88\x84\x00"


def _packet(n: int) -> av.Packet:
    packet = av.Packet(IDR)
    packet.pts = packet.dts = n
    packet.time_base = Fraction(1, 25)
    return packet


class FakeSource:
    """`count` packets, then `then`: "end", an exception to raise, "wait" (until interrupted, as
    a network read would) or "stuck" (until `release` is set, whatever the interrupt)."""

    format_name = "fake"

    def __init__(self, count: int, then: object = "end", release: threading.Event | None = None) -> None:
        self.count, self.then, self.release = count, then, release
        self.interrupted = threading.Event()

    def streams(self) -> SourceStreams:
        return SourceStreams(None, None, None, None)

    def packets(self) -> Iterator[tuple[str, av.Packet | None]]:
        for n in range(self.count):
            yield "video", _packet(n)
        if isinstance(self.then, Exception):
            raise self.then
        if self.then == "wait":
            self.interrupted.wait(10)
            raise Interrupted()
        if self.then == "stuck":
            assert self.release is not None
            self.release.wait(10)

    def interrupt(self) -> None:
        self.interrupted.set()

    def close(self) -> None:
        pass


class Collect:
    def __init__(self, fail_every: int = 0) -> None:
        self.fail_every, self.packets = fail_every, 0

    def on_open(self, streams) -> None:
        pass

    def on_packet(self, kind, packet, seconds) -> None:
        self.packets += 1
        if self.fail_every and self.packets % self.fail_every == 0:
            raise IndexError("index out of range")  # what aiortc's packetizer raised on an empty NAL

    def on_close(self, reason) -> None:
        pass


@pytest.fixture
def start_reader(monkeypatch):
    """start(opens, taps, url, stall) -> (reader, states); `opens` are what successive opens give
    (a FakeSource, or an exception to raise), the last one repeated."""
    readers: list[SourceReader] = []

    def start(opens: list, taps: list | None = None, url: str = "rtsp://127.0.0.1:1/cam",
              stall: float | None = None) -> tuple[SourceReader, list[SourceStatus]]:
        queue = list(opens)

        def open_source(src):
            item = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(item, Exception):
                raise item
            return item

        if opens:
            monkeypatch.setattr(reader_module, "open_source", open_source)
        src = msgspec.structs.replace(load_settings(parse_flags(["--source", f"cam={url}"]), {}).sources[0],
                                      stall_timeout_sec=stall)
        states: list[SourceStatus] = []
        reader = SourceReader(src, states.append, taps if taps is not None else [Collect()])
        reader.start()
        readers.append(reader)
        return reader, states

    yield start
    for reader in readers:
        reader.stop()
        reader.join(5)


def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_unexpected_error_reopens_the_source(start_reader):
    reader, states = start_reader([FakeSource(5, KeyError("a bug")), FakeSource(5, "wait")])
    _until(lambda: reader.state == "online" and reader.status(time.monotonic()).reconnects == 1)
    assert reader.is_alive()
    lost = next(s for s in states if s.state == "reconnecting" and s.last_error)
    assert lost.last_error == "KeyError: 'a bug'" and lost.next_retry_at is not None
    assert reader.status(time.monotonic()).reconnect_attempts == 1


def test_a_unit_a_tap_cannot_take_is_dropped_and_counted(start_reader):
    picky, other = Collect(fail_every=2), Collect()
    reader, states = start_reader([FakeSource(10, "wait")], taps=[picky, other])
    _until(lambda: other.packets == 10)
    assert picky.packets == 10  # every unit still offered to every tap
    status = reader.status(time.monotonic())
    assert (status.state, status.dropped_units, status.reconnects) == ("online", 5, 0)


def test_reconnects_count_outages_and_attempts_count_tries(start_reader):
    reader, _ = start_reader([OSError("refused"), OSError("refused"), FakeSource(3, "end"), FakeSource(3, "wait")])
    _until(lambda: reader.status(time.monotonic()).reconnects == 1 and reader.state == "online", timeout=10)
    status = reader.status(time.monotonic())
    assert status.reconnect_attempts == 3  # two refused, one that opened and ended, then this one


def test_a_silent_source_is_stalled_and_reconnects(start_reader):
    reader, states = start_reader([FakeSource(3, "wait"), FakeSource(3, "wait")], stall=0.2)
    stuck: list[tuple[str, str]] = []
    watchdog = StallWatchdog(reader, lambda *why: stuck.append(why))
    _until(lambda: reader.state == "online")
    deadline = time.monotonic() + 5
    while reader.status(time.monotonic()).reconnects == 0:
        assert time.monotonic() < deadline, "no reconnect"
        watchdog.check(time.monotonic())
        time.sleep(0.02)
    seen = [s.state for s in states]
    assert seen.index("stalled") < seen.index("reconnecting", seen.index("stalled"))
    lost = next(s for s in states if s.state == "reconnecting" and s.last_error)
    assert lost.last_error.startswith("stalled: no packet since ") and "(stallTimeoutSec 0.2)" in lost.last_error
    assert stuck == []


def test_a_reader_that_does_not_let_go_is_reported_once(start_reader):
    release = threading.Event()
    reader, _ = start_reader([FakeSource(3, "stuck", release)], stall=1.0)
    stuck: list[tuple[str, str]] = []
    watchdog = StallWatchdog(reader, lambda *why: stuck.append(why))
    _until(lambda: reader.state == "online")
    now = time.monotonic()
    watchdog.check(now + 1.1)
    assert reader.state == "stalled" and stuck == []
    watchdog.check(now + 1.1 + UNBLOCK_GRACE_SEC + 0.1)
    watchdog.check(now + 1.1 + UNBLOCK_GRACE_SEC + 0.2)
    release.set()
    assert stuck == [("reader-cam", f"blocked: the source stalled and the reader did not let go within "
                                    f"{UNBLOCK_GRACE_SEC:g}s")]


def test_a_file_paced_across_a_timestamp_gap_is_stalled_and_reopened(start_reader, tmp_path):
    """The reader would wait out the gap (a minute here) while saying `online`; the watchdog
    wakes its pacing wait and the file starts again."""
    path = tmp_path / "gap.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 160, 90, "yuv420p"
        v.options = {"preset": "ultrafast", "bf": "0"}
        for i, pts in enumerate([*range(25), *range(25 * 60, 25 * 61)]):
            frame = av.VideoFrame.from_ndarray(np.full((90, 160, 3), i * 9 % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 25)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    reader, states = start_reader([], url=str(path), stall=0.5)
    watchdog = StallWatchdog(reader, lambda *why: None)
    deadline = time.monotonic() + 8
    while reader.status(time.monotonic()).reconnects == 0:
        assert time.monotonic() < deadline, "no reconnect"
        watchdog.check(time.monotonic())
        time.sleep(0.05)
    assert "stalled" in [s.state for s in states]
    _until(lambda: reader.state == "online")
