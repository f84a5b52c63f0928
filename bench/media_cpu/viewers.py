"""The viewer client program (the driver runs it with the hidden `--client <spec.json>`): aiortc viewers that
count the encoded frames they receive and never decode, so the client costs the server's 2 cores as little as
possible.

It talks to the driver over stdio: it prints `CONNECTED`, `MARK`, `LATE` and `BYE` lines (a tag and JSON) and
reads `mark` / `quit` commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import aioice.ice
import aiortc.rtcrtpreceiver
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription


class RxStats:
    """Filled by the counting decoder thread of one receiver."""

    __slots__ = ("frames", "bytes", "keyframes", "first_any", "first_key", "decodable", "decodable_bytes",
                 "last_ts", "squeezed", "jumps")

    def __init__(self) -> None:
        self.frames = self.bytes = self.keyframes = self.decodable = self.decodable_bytes = 0
        self.last_ts: int | None = None
        self.squeezed = 0  # frames less than half a 30 fps frame interval after the previous one (RTP time)
        self.jumps = 0  # RTP timestamp going back or forward by more than 1 s
        self.first_any: float | None = None  # monotonic time of the first complete encoded frame
        self.first_key: float | None = None  # ... of the first IDR frame (the first decodable picture)


FRAME_STATS: dict = {}  # receiver output queue (the track's _queue) -> RxStats


def _is_idr(data: bytes) -> bool:
    """aiortc's H.264 depayloader writes every NAL unit behind a 4-byte start code (the payload itself cannot
    contain one: emulation prevention). SEI/SPS/PPS may come first (x264's first IDR carries a ~700-byte SEI);
    the first slice decides."""
    pos = data.find(b"\x00\x00\x00\x01")
    while pos != -1 and pos + 4 < len(data):
        nal = data[pos + 4] & 0x1F
        if nal == 5:
            return True
        if nal == 1:
            return False
        pos = data.find(b"\x00\x00\x00\x01", pos + 5)
    return False


def counting_decoder_worker(loop, input_q, output_q, decode_error) -> None:
    """Replaces aiortc.rtcrtpreceiver.decoder_worker: drains the encoded frames, counts them."""
    st = FRAME_STATS.setdefault(output_q, RxStats())
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)  # ends the track
            break
        _codec, frame = task
        now = time.monotonic()
        size = len(frame.data)
        st.frames += 1
        st.bytes += size
        if st.last_ts is not None:
            delta = (frame.timestamp - st.last_ts) & 0xFFFFFFFF
            if delta < 1500:
                st.squeezed += 1
            elif delta > 90_000:
                st.jumps += 1
        st.last_ts = frame.timestamp
        if st.first_any is None:
            st.first_any = now
        if _is_idr(frame.data):
            st.keyframes += 1
            if st.first_key is None:
                st.first_key = now
        if st.first_key is not None:
            st.decodable += 1
            st.decodable_bytes += size


def client_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    addresses = [spec["host"]]
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: addresses
    aiortc.rtcrtpreceiver.decoder_worker = counting_decoder_worker
    asyncio.run(_client(spec))


def _prefer_h264(transceiver) -> None:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"]
                                    + [c for c in codecs if c.mimeType == "video/rtx"])


class Viewer:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.stats: RxStats | None = None
        self.t0: float | None = None  # the request that asks for the stream (WHEP POST / Janus watch)
        self.t_setup: float | None = None  # the first signalling request (same as t0 for WHEP)
        self.t_answer: float | None = None

        @self.pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                self.stats = FRAME_STATS.setdefault(track._queue, RxStats())

    def snapshot(self) -> list:
        s = self.stats
        if s is None:
            return [0, 0, 0, 0, 0, 0, 0]
        return [s.frames, s.bytes, s.decodable, s.decodable_bytes, s.keyframes, s.squeezed, s.jumps]

    def first(self, key: bool = True) -> float | None:
        if self.stats is None or self.t0 is None:
            return None
        t = self.stats.first_key if key else self.stats.first_any
        return None if t is None else t - self.t0


class WhepViewer(Viewer):
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        super().__init__()
        self.http, self.url, self.location = http, url, None

    async def connect(self) -> None:
        _prefer_h264(self.pc.addTransceiver("video", direction="recvonly"))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.t0 = self.t_setup = time.monotonic()
        async with self.http.post(self.url, data=self.pc.localDescription.sdp,
                                  headers={"Content-Type": "application/sdp"}) as r:
            body = await r.text()
            if r.status != 201:
                raise RuntimeError(f"WHEP POST answered {r.status}: {body[:200]}")
            self.location = r.headers.get("Location")
        self.t_answer = time.monotonic()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def keepalive(self) -> None:
        pass

    async def close(self) -> None:
        if self.location:
            url = urljoin(self.url, self.location)
            with contextlib.suppress(Exception):
                async with self.http.delete(url, timeout=aiohttp.ClientTimeout(total=3)) as r:
                    await r.read()
        await self.pc.close()


class JanusViewer(Viewer):
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        super().__init__()
        self.http, self.base = http, base
        self.session_url = self.handle_url = None

    async def post(self, url: str, body: dict) -> dict:
        body["transaction"] = f"{random.getrandbits(48):012x}"
        async with self.http.post(url, json=body) as r:
            return await r.json(content_type=None)

    async def connect(self) -> None:
        self.t_setup = time.monotonic()
        r = await self.post(self.base, {"janus": "create"})
        self.session_url = f"{self.base}/{r['data']['id']}"
        r = await self.post(self.session_url, {"janus": "attach", "plugin": "janus.plugin.streaming"})
        self.handle_url = f"{self.session_url}/{r['data']['id']}"
        self.t0 = time.monotonic()
        r = await self.post(self.handle_url, {"janus": "message", "body": {"request": "watch", "id": 1}})
        ev = r if r.get("jsep") else None
        end = time.monotonic() + 10
        while ev is None:
            if time.monotonic() > end:
                raise RuntimeError("no jsep offer from Janus")
            async with self.http.get(f"{self.session_url}?maxev=1") as resp:
                got = await resp.json(content_type=None)
            if got.get("janus") == "event" and got.get("jsep"):
                ev = got
        self.t_answer = time.monotonic()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.post(self.handle_url, {"janus": "message", "body": {"request": "start"},
                                          "jsep": {"type": "answer", "sdp": self.pc.localDescription.sdp}})

    async def keepalive(self) -> None:
        if self.session_url:
            with contextlib.suppress(Exception):
                await self.post(self.session_url, {"janus": "keepalive"})

    async def close(self) -> None:
        await self.pc.close()
        if self.session_url:
            with contextlib.suppress(Exception):
                await self.post(self.session_url, {"janus": "destroy"})


def _emit(tag: str, doc: dict) -> None:
    sys.stdout.write(f"{tag} {json.dumps(doc)}\n")
    sys.stdout.flush()


async def _keepalives(viewers: list[Viewer]) -> None:
    while True:
        await asyncio.sleep(15)
        await asyncio.gather(*(v.keepalive() for v in list(viewers)), return_exceptions=True)


async def _wait_first(viewers: list[Viewer], limit: float) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end and any(v.first() is None for v in viewers):
        await asyncio.sleep(0.02)


async def _wait_janus(http: aiohttp.ClientSession, url: str) -> None:
    end = time.monotonic() + 20  # Janus may still be starting
    while True:
        try:
            async with http.get(f"{url}/info") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > end:
            raise RuntimeError("Janus HTTP API never answered")
        await asyncio.sleep(0.2)


async def _client(spec: dict) -> None:
    deadline = time.monotonic() + spec.get("max_seconds", 600)
    timeout = aiohttp.ClientTimeout(total=40)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        if spec["system"] == "janus":
            await _wait_janus(http, spec["url"])

        def new_viewer() -> Viewer:
            if spec["system"] == "janus":
                return JanusViewer(http, spec["url"])
            return WhepViewer(http, spec["url"])

        viewers: list[Viewer] = []
        ka = asyncio.ensure_future(_keepalives(viewers))
        try:
            if spec["mode"] == "load":
                await _load(spec, new_viewer, viewers, deadline)
            else:
                await _late_joiners(spec, new_viewer, viewers)
        finally:
            ka.cancel()
            await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
    _emit("BYE", {})


async def _load(spec: dict, new_viewer: Callable[[], Viewer], viewers: list[Viewer], deadline: float) -> None:
    """`n` viewers connect (5 at a time), then report their counters whenever the driver says `mark`."""
    viewers.extend(new_viewer() for _ in range(spec["n"]))
    sem = asyncio.Semaphore(5)
    errors: list[str] = []

    async def connect(v: Viewer) -> None:
        async with sem:
            try:
                await v.connect()
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(connect(v) for v in viewers))
    await _wait_first(viewers, spec["connect_timeout"])
    firsts = [v.first() for v in viewers]
    # then until every viewer runs at the live pace: no replayed (squeezed) frame for 1 s
    end, quiet, last = time.monotonic() + 15, 0, None
    while time.monotonic() < end and quiet < 2:
        now = [v.stats.squeezed if v.stats else 0 for v in viewers]
        quiet = quiet + 1 if now == last else 0
        last = now
        await asyncio.sleep(0.5)
    _emit("CONNECTED", {"n": len(viewers), "with_frames": sum(f is not None for f in firsts),
                        "first_frame_s": [f for f in firsts if f is not None], "errors": errors})
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(sys.stdin.readline)
        cmd = line.strip()
        if cmd == "mark":
            _emit("MARK", {"t": time.monotonic(), "viewers": [v.snapshot() for v in viewers]})
        elif cmd == "quit" or not line:  # an empty read is EOF: the orchestrator is gone
            break


async def _late_joiners(spec: dict, new_viewer: Callable[[], Viewer], viewers: list[Viewer]) -> None:
    """One viewer stays connected; then `count` viewers join one at a time after random gaps (so they land
    anywhere in the GOP). Each is timed from its stream request to its first IDR frame, kept `hold`
    seconds (to count the frames that follow), then closed."""
    base = new_viewer()
    viewers.append(base)
    await base.connect()
    await _wait_first([base], spec["connect_timeout"])
    rng = random.Random(spec["seed"])
    lo, hi = spec["gap"]
    out = []
    for _ in range(spec["count"]):
        await asyncio.sleep(rng.uniform(lo, hi))
        v = new_viewer()
        viewers.append(v)
        rec: dict = {}
        try:
            await v.connect()
            await _wait_first([v], spec["first_timeout"])
            first = v.first()
            if first is not None:
                await asyncio.sleep(max(0.0, v.t0 + first + spec["hold"] - time.monotonic()))
            rec = {"first_key": first, "first_any": v.first(key=False),
                   "answer": v.t_answer - v.t0 if v.t_answer else None,
                   "setup": v.t0 - v.t_setup if v.t_setup else 0.0,
                   "frames_hold": v.stats.decodable if v.stats else 0,
                   "skipped": (v.stats.frames - v.stats.decodable) if v.stats else 0}
        except Exception as exc:  # noqa: BLE001 - reported
            rec = {"first_key": None, "error": f"{type(exc).__name__}: {exc}"}
        out.append(rec)
        viewers.remove(v)
        await v.close()
    _emit("LATE", {"joiners": out, "base_frames": base.stats.frames if base.stats else 0})
