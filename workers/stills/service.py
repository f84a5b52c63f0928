"""Answers SnapshotRequests: the newest picture there is, as JPEG, for as little work as asked.

Where the picture comes from, cheapest first:
- a cached picture no older than `maxAge` (no decoding at all);
- the shared decoder's latest frame, when vision runs (already decoded);
- the latest keyframe from the KeyframeTap, decoded on demand.
Concurrent requests share one decode and one encode (single-flight, keyed by what they produce),
new pictures are taken at most every MIN_INTERVAL_SEC (a faster asker gets the cached one), and
the work runs on one thread of its own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import av

from protocol.messages import SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_SIDE, ControlError, SnapshotReply, SnapshotRequest
from protocol.times import rfc3339
from workers.intelligence.snapshots import encode_jpeg
from workers.stills.keyframes import Keyframe, KeyframeTap, decode_keyframe

MIN_INTERVAL_SEC = 0.2  # the rate limit: at most 5 new pictures a second per source
JPEG_CACHE = 8  # encoded (picture, size, quality) variants kept


@dataclass(frozen=True, slots=True)
class Picture:
    key: tuple[str, float]  # ("keyframe", seq) or ("decoder", arrival): equal keys, same picture
    frame: av.VideoFrame
    arrival: float  # time.monotonic() when its packet reached the worker


MIN_SIDE = 16  # a smaller request still gets a picture one can see something in


def fit(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The size within max_width x max_height (0: no bound) with the picture's aspect, never larger
    than the picture itself."""
    scale = 1.0
    if max_width > 0:
        scale = min(scale, max_width / width)
    if max_height > 0:
        scale = min(scale, max_height / height)
    return _side(width * scale, width), _side(height * scale, height)


def _side(side: float, original: int) -> int:
    """A side of the fitted picture: never below MIN_SIDE (a 2x1 JPEG fails to encode), never
    larger than the picture."""
    return min(original, max(MIN_SIDE, round(side)))


def qscale(quality: int) -> int:
    """Quality 1..100 (100 best) onto mjpeg's quantizer 31..2."""
    return round(2 + (100 - quality) * 29 / 99)


def wall_time(arrival: float) -> str:
    return rfc3339(time.time() - (time.monotonic() - arrival))


class Source(Protocol):
    @property
    def state(self) -> str: ...


class SnapshotService:
    def __init__(self, keyframes: KeyframeTap, source: Source,
                 decoded: Callable[[], tuple[av.VideoFrame, float] | None] | None = None) -> None:
        """`source` is the reader (its state); `decoded()` gives the shared decoder's latest frame."""
        self.keyframes, self.source, self.decoded = keyframes, source, decoded
        self.decodes = self.encodes = 0
        self._picture: Picture | None = None
        self._taken = 0.0  # time.monotonic() when _picture was taken
        self._jpegs: OrderedDict[tuple, tuple[bytes, int, int]] = OrderedDict()
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")

    async def take(self, request: SnapshotRequest) -> SnapshotReply | ControlError:
        problem = _invalid(request)
        if problem:
            return ControlError(code="bad_request", detail=problem)
        state = self.source.state
        if state != "online":
            self._picture, self._jpegs = None, OrderedDict()
            return ControlError(code="unavailable", detail=f"the source is {state}")
        try:
            picture = await self._current(request.max_age_sec)
        except (av.error.FFmpegError, ValueError) as exc:
            return ControlError(code="unavailable", detail=f"cannot decode the source's picture: {exc}")
        if picture is None:
            return ControlError(code="unavailable", detail="no picture yet: waiting for the source's first keyframe")
        q = qscale(request.quality)
        size = fit(picture.frame.width, picture.frame.height, request.width, request.height)
        key = (picture.key, size, q)
        jpeg = self._jpegs.get(key)
        if jpeg is None:
            jpeg = await self._shared(key, lambda: self._encode(picture.frame, size, q),
                                      lambda made: self._keep_jpeg(key, made))
        else:
            self._jpegs.move_to_end(key)
        data, width, height = jpeg
        if len(data) > SNAPSHOT_MAX_BYTES:
            return ControlError(code="bad_request", detail=f"the JPEG would be {len(data)} bytes, over the "
                                f"{SNAPSHOT_MAX_BYTES} limit: ask for a smaller size or a lower quality")
        return SnapshotReply(jpeg=data, frame_time=wall_time(picture.arrival), width=width, height=height)

    async def _current(self, max_age: float) -> Picture | None:
        now = time.monotonic()
        cached = self._picture
        if cached is not None and (now - cached.arrival <= max_age or now - self._taken < MIN_INTERVAL_SEC):
            return cached  # young enough, or asked again too soon
        decoded = self.decoded() if self.decoded is not None else None
        keyframe = self.keyframes.latest
        if keyframe is None:
            return None  # the source is (re)opening: nothing of its current epoch yet
        if decoded is not None and decoded[1] >= self.keyframes.opened:  # decoded since the source (re)opened
            frame, arrival = decoded
            picture = Picture(("decoder", arrival), frame, arrival)
            if cached is not None and cached.key == picture.key:
                return cached
        elif cached is not None and cached.key == ("keyframe", keyframe.seq):
            return cached  # no newer picture exists
        else:
            picture = await self._shared(("keyframe", keyframe.seq), lambda: self._decode(keyframe), self._keep)
        self._keep(picture)
        return picture

    def _keep(self, picture: Picture) -> None:
        if self._picture is not picture:
            self._picture, self._taken = picture, time.monotonic()

    def _keep_jpeg(self, key: tuple, jpeg: tuple[bytes, int, int]) -> None:
        self._jpegs[key] = jpeg
        while len(self._jpegs) > JPEG_CACHE:
            self._jpegs.popitem(last=False)

    def _decode(self, keyframe: Keyframe) -> Picture:
        frame = decode_keyframe(keyframe)
        self.decodes += 1
        return Picture(("keyframe", keyframe.seq), frame, keyframe.arrival)

    def _encode(self, frame: av.VideoFrame, size: tuple[int, int], q: int) -> tuple[bytes, int, int]:
        width, height = size
        data = encode_jpeg(frame, width, height, q)
        self.encodes += 1
        return data, width, height

    def _shared(self, key: tuple, work: Callable[[], Any], keep: Callable[[Any], None]) -> Awaitable[Any]:
        """One run of `work` on the snapshot thread for every concurrent caller with this key.
        `keep` stores its result on the loop the moment it completes: a request arriving before
        the waiters have woken finds it stored, instead of running `work` again."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(self._thread, work)
            self._inflight[key] = future

            def done(finished: asyncio.Future) -> None:
                self._inflight.pop(key, None)
                if not finished.cancelled() and finished.exception() is None:
                    keep(finished.result())

            future.add_done_callback(done)
        return asyncio.shield(future)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def _invalid(request: SnapshotRequest) -> str | None:
    if not 1 <= request.quality <= 100:
        return "quality must be 1-100"
    if not (0 <= request.width <= SNAPSHOT_MAX_SIDE and 0 <= request.height <= SNAPSHOT_MAX_SIDE):
        return f"width and height must be 0-{SNAPSHOT_MAX_SIDE}"
    if not 0 <= request.max_age_sec < float("inf"):
        return "max_age_sec must be 0 or more"
    return None
