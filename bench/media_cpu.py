#!/usr/bin/env python3
"""Media CPU benchmark: server CPU per WebRTC viewer, fixed CPU per source, late-joiner first frame
(a benchmark that prints figures, not a test).

One 720p30 ~2 Mbit/s H.264 Baseline MPEG-TS (GOP 60, no B-frames) is served by three systems in the
same run, one after the other:

  * icey:     the real `icey-server --source cam=<file>`; the source's worker process (H.264
              passthrough, packetized once per source) is what is measured, the API process apart;
  * reencode: a small aiortc server (this script, hidden `--serve-reencode`): `MediaPlayer(decode=True)`
              + `MediaRelay`, so one libx264 encoder per viewer (what a naive aiortc server does);
  * janus:    Janus 1.1.2's streaming plugin (Debian package) fed the same file as RTP by
              `ffmpeg -c copy`, with everything (Janus, ffmpeg, Janus viewers) inside a private network
              namespace made by this script, because Janus never offers 127.0.0.1.

Viewers are aiortc peer connections in separate client processes (this script, hidden `--client`),
recvonly H.264, that never decode: aiortc's receiver decoder thread is replaced by one that only counts
the complete encoded frames its jitter buffer hands over. Server CPU is utime+stime of the measured
processes from /proc/<pid>/stat (all threads) over a fixed window.

Run from the repository root as root (for the namespace):  .venv/bin/python bench/media_cpu.py
(see bench/README.md)
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

from measure import HOST, children, cpu_seconds, fmt, free_port, get_json, machine_busy, percentile

NS_PREFIX = "icey-mcpu-"
NS_ADDR = "10.203.0.1"  # the veth address inside the namespace; Janus offers only this
JANUS_HTTP = "http://127.0.0.1:8088/janus"  # inside the namespace
JANUS_RTP_PORT = 5004
JANUS_LIBDIR = "/usr/lib/x86_64-linux-gnu/janus"
SOURCE_ID = "cam"
FIRST_FRAME_TARGET_SEC = 0.2
CONNECT_TIMEOUT_SEC = 30.0
VIEWERS_PER_CLIENT = 13  # 25 viewers -> 2 client processes
LATE_HOLD_SEC = 0.5  # a late joiner stays this long after its first frame (its frames are counted), then leaves


# ---------------------------------------------------------------------------------------------------------
# client side (its own process): viewers that count encoded frames and never decode


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
    import asyncio

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
    import asyncio

    spec = json.loads(Path(spec_path).read_text())
    import aioice.ice
    import aiortc.rtcrtpreceiver

    addresses = [spec["host"]]
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: addresses
    aiortc.rtcrtpreceiver.decoder_worker = counting_decoder_worker
    asyncio.run(_client(spec))


def _client_classes():
    import asyncio

    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

    def prefer_h264(transceiver) -> None:
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
            prefer_h264(self.pc.addTransceiver("video", direction="recvonly"))
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

    return asyncio, aiohttp, WhepViewer, JanusViewer


def _emit(tag: str, doc: dict) -> None:
    sys.stdout.write(f"{tag} {json.dumps(doc)}\n")
    sys.stdout.flush()


async def _client(spec: dict) -> None:
    asyncio, aiohttp, WhepViewer, JanusViewer = _client_classes()
    deadline = time.monotonic() + spec.get("max_seconds", 600)
    timeout = aiohttp.ClientTimeout(total=40)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        if spec["system"] == "janus":
            end = time.monotonic() + 20  # Janus may still be starting
            while True:
                try:
                    async with http.get(f"{spec['url']}/info") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > end:
                    raise RuntimeError("Janus HTTP API never answered")
                await asyncio.sleep(0.2)

        def new_viewer():
            if spec["system"] == "janus":
                return JanusViewer(http, spec["url"])
            return WhepViewer(http, spec["url"])

        async def keepalives(viewers: list) -> None:
            while True:
                await asyncio.sleep(15)
                await asyncio.gather(*(v.keepalive() for v in list(viewers)), return_exceptions=True)

        async def wait_first(viewers: list, limit: float) -> None:
            end = time.monotonic() + limit
            while time.monotonic() < end and any(v.first() is None for v in viewers):
                await asyncio.sleep(0.02)

        viewers: list = []
        ka = asyncio.ensure_future(keepalives(viewers))
        try:
            if spec["mode"] == "load":
                viewers.extend(new_viewer() for _ in range(spec["n"]))
                sem = asyncio.Semaphore(5)
                errors: list[str] = []

                async def connect(v) -> None:
                    async with sem:
                        try:
                            await v.connect()
                        except Exception as exc:  # noqa: BLE001 - reported, not fatal
                            errors.append(f"{type(exc).__name__}: {exc}")

                await asyncio.gather(*(connect(v) for v in viewers))
                await wait_first(viewers, CONNECT_TIMEOUT_SEC)
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
            else:
                await _late_joiners(spec, new_viewer, wait_first, viewers, asyncio)
        finally:
            ka.cancel()
            await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
    _emit("BYE", {})


async def _late_joiners(spec: dict, new_viewer, wait_first, viewers: list, asyncio) -> None:
    """One viewer stays connected; then `count` viewers join one at a time after random gaps (so they land
    anywhere in the GOP). Each is timed from its stream request to its first IDR frame, kept `hold`
    seconds (to count the frames that follow), then closed."""
    base = new_viewer()
    viewers.append(base)
    await base.connect()
    await wait_first([base], CONNECT_TIMEOUT_SEC)
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
            await wait_first([v], spec["first_timeout"])
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


# ---------------------------------------------------------------------------------------------------------
# baseline A (its own process): aiortc re-encoding per viewer


def serve_reencode(port: int, path: str) -> None:
    import asyncio

    import aioice.ice
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer, MediaRelay

    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: [HOST]
    relay = MediaRelay()
    player = MediaPlayer(path, decode=True, loop=True)  # decodes once; its thread starts with the 1st viewer
    pcs: dict[str, RTCPeerConnection] = {}

    async def whep(request: web.Request) -> web.Response:
        offer = await request.text()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        key = f"{random.getrandbits(32):08x}"
        pcs[key] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                pcs.pop(key, None)
                await pc.close()

        # one RTCRtpSender per viewer, each with its own H264Encoder (libx264): the per-viewer re-encode
        t = pc.addTransceiver(relay.subscribe(player.video, buffered=False), direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        t.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"]
                              + [c for c in codecs if c.mimeType == "video/rtx"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": f"/whep/{key}"})

    async def delete(request: web.Request) -> web.Response:
        pc = pcs.pop(request.match_info["key"], None)
        if pc is not None:
            await pc.close()
        return web.json_response({"status": "ok"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"pcs": len(pcs), "pid": os.getpid()})

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.post("/whep", whep), web.delete("/whep/{key}", delete), web.get("/stats", stats)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await asyncio.gather(*(pc.close() for pc in list(pcs.values())), return_exceptions=True)
        if player.video is not None:
            player.video.stop()
        await runner.cleanup()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------------------
# orchestrator: processes, cleanup, /proc


PROCS: list[subprocess.Popen] = []
NAMESPACES: list[str] = []


def spawn(cmd: list[str], log: Path, stdin=subprocess.DEVNULL, stdout=None, **kw) -> subprocess.Popen:
    """Start a child in a new session (its own process group); stderr (and stdout unless piped) to `log`."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=out if stdout is None else stdout, stderr=out,
                                start_new_session=True, **kw)
    PROCS.append(proc)
    return proc


def stop_proc(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 8.0) -> int | None:
    """Signal our own child by its pid; after the timeout, SIGKILL its process group (it leads a new
    session, so the group holds only what it started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (a supervisor's children, say)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(3)
    if proc in PROCS:
        PROCS.remove(proc)
    return proc.returncode


def netns_delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if name in NAMESPACES:
        NAMESPACES.remove(name)


def cleanup() -> None:
    for proc in list(reversed(PROCS)):
        stop_proc(proc, timeout=5.0)
    for name in list(NAMESPACES):
        netns_delete(name)


def _on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def netns_create(name: str) -> None:
    NAMESPACES.append(name)
    for cmd in (["ip", "netns", "add", name],
                ["ip", "-n", name, "link", "set", "lo", "up"],
                ["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["ip", "-n", name, "link", "set", "d1", "up"],
                ["ip", "-n", name, "addr", "add", f"{NS_ADDR}/24", "dev", "d0"],
                ["ip", "-n", name, "link", "set", "d0", "up"]):
        subprocess.run(cmd, check=True, capture_output=True)


def remove_stale_namespaces() -> None:
    """Namespaces of earlier runs of this script whose process is gone (a SIGKILLed run)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX):
            pid = name[len(NS_PREFIX):]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                netns_delete(name)


def udp_rcvbuf_errors(pid: int) -> int | None:
    """UDP RcvbufErrors of the network namespace `pid` lives in (datagrams dropped because a socket's receive
    buffer was full). Namespace-wide: on the host namespace it includes anything else running."""
    try:
        lines = [ln.split() for ln in Path(f"/proc/{pid}/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


class Client:
    """One viewer client process; its stdout lines are read by a thread into a queue."""

    def __init__(self, spec: dict, tmp: Path, prefix: list[str], tag: str) -> None:
        spec_path = tmp / f"client-{tag}.json"
        spec_path.write_text(json.dumps(spec))
        self.proc = spawn([*prefix, sys.executable, os.path.abspath(__file__), "--client", str(spec_path)],
                          tmp / f"client-{tag}.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, tag: str, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"client {self.proc.pid}: no {tag} within {timeout:.0f}s") from None
            if line is None:
                raise RuntimeError(f"client {self.proc.pid} exited (code {self.proc.poll()}) before {tag}")
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1:])

    def send(self, cmd: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write((cmd + "\n").encode())
            self.proc.stdin.flush()

    def finish(self) -> None:
        self.send("quit")
        with contextlib.suppress(RuntimeError):
            self.expect("BYE", 20)
        stop_proc(self.proc, timeout=5.0)


class Target:
    """A system under test: what to measure (name -> pid; the first is the headline) and how clients reach it."""

    def __init__(self, name: str, pids: dict[str, int], client_spec: dict, prefix: list[str], drain) -> None:
        self.name, self.pids, self.client_spec, self.prefix, self.drain = name, pids, client_spec, prefix, drain

    def cpu(self) -> dict[str, float | None]:
        return {k: cpu_seconds(pid) for k, pid in self.pids.items()}


def measure_counts(target: Target, counts: list[int], args, tmp: Path) -> list[dict]:
    rows = []
    for n in counts:
        print(f"  [{target.name}] {n} viewer(s): ", end="", flush=True)
        if n == 0:
            c0, h0, t0 = target.cpu(), machine_busy(), time.monotonic()
            time.sleep(args.window)
            c1, h1, t1 = target.cpu(), machine_busy(), time.monotonic()
            rows.append({"n": 0, "window": t1 - t0, "cpu": _delta(c0, c1), "client_cpu": 0.0,
                         "host_busy": (h1[0] - h0[0]) / (t1 - t0)})
            print(f"{rows[-1]['cpu'][next(iter(target.pids))] / rows[-1]['window']:.3f} cores", flush=True)
            continue
        per = max(1, math.ceil(n / VIEWERS_PER_CLIENT))
        sizes = [n // per + (1 if i < n % per else 0) for i in range(per)]
        clients = []
        drops0 = udp_rcvbuf_errors(next(iter(target.pids.values())))
        try:
            t_connect, c_spawn = time.monotonic(), target.cpu()
            for i, size in enumerate(sizes):
                spec = {**target.client_spec, "mode": "load", "n": size, "max_seconds": args.window + 120}
                clients.append(Client(spec, tmp, target.prefix, f"{target.name}-{n}-{i}"))
            conn = [c.expect("CONNECTED", CONNECT_TIMEOUT_SEC + 60) for c in clients]
            setup = time.monotonic() - t_connect
            time.sleep(args.settle)
            for c in clients:
                c.send("mark")
            c0, k0, t0 = target.cpu(), [cpu_seconds(c.proc.pid) for c in clients], time.monotonic()
            h0 = machine_busy()
            drops1 = udp_rcvbuf_errors(clients[0].proc.pid)
            m0 = [c.expect("MARK", 10) for c in clients]
            time.sleep(args.window)
            for c in clients:
                c.send("mark")
            c1, k1, t1 = target.cpu(), [cpu_seconds(c.proc.pid) for c in clients], time.monotonic()
            h1 = machine_busy()
            drops2 = udp_rcvbuf_errors(clients[0].proc.pid)
            m1 = [c.expect("MARK", 10) for c in clients]
        finally:
            for c in clients:
                c.finish()
        window = t1 - t0
        per_viewer = []
        for a, b in zip(m0, m1, strict=True):
            wa = b["t"] - a["t"]
            for va, vb in zip(a["viewers"], b["viewers"], strict=True):
                per_viewer.append({"fps": (vb[2] - va[2]) / wa, "mbit": (vb[3] - va[3]) * 8 / wa / 1e6,
                                   "frames": vb[2] - va[2], "all_frames": vb[0] - va[0],
                                   "keyframes": vb[4] - va[4], "squeezed": vb[5] - va[5], "jumps": vb[6] - va[6]})
        row = {"n": n, "window": window, "cpu": _delta(c0, c1), "setup": setup, "clients": len(clients),
               "setup_cpu": _delta(c_spawn, c0), "setup_s": t0 - t_connect,
               "client_cpu": sum((b or 0) - (a or 0) for a, b in zip(k0, k1, strict=True)),
               "with_frames": sum(c["with_frames"] for c in conn),
               "first": sorted(f for c in conn for f in c["first_frame_s"]),
               "errors": [e for c in conn for e in c["errors"]],
               "fps": [p["fps"] for p in per_viewer], "mbit": [p["mbit"] for p in per_viewer],
               "frames": sum(p["frames"] for p in per_viewer),
               "keyframes": [p["keyframes"] for p in per_viewer], "squeezed": [p["squeezed"] for p in per_viewer],
               "jumps": [p["jumps"] for p in per_viewer],
               "drops_setup": _sub(drops1, drops0), "drops_window": _sub(drops2, drops1),
               "host_busy": (h1[0] - h0[0]) / window}
        rows.append(row)
        head = next(iter(target.pids))
        print(f"{row['cpu'][head] / window:.3f} cores, {row['with_frames']}/{n} with frames, "
              f"fps avg {sum(row['fps']) / len(row['fps']):.1f} min {min(row['fps']):.1f}, keyframes "
              f"{sorted(set(row['keyframes']))}, squeezed {sorted(set(row['squeezed']))}, jumps "
              f"{sorted(set(row['jumps']))}, UDP drops setup/window {row['drops_setup']}/{row['drops_window']}",
              flush=True)
        target.drain()
    return rows


def _sub(b: int | None, a: int | None) -> int | None:
    return None if a is None or b is None else b - a


def _delta(a: dict, b: dict) -> dict:
    return {k: (b[k] - a[k]) if a.get(k) is not None and b.get(k) is not None else math.nan for k in a}


def late_joiners(target: Target, args, tmp: Path) -> dict:
    print(f"  [{target.name}] late joiners: {args.late} ...", flush=True)
    spec = {**target.client_spec, "mode": "late", "count": args.late, "gap": [0.4, 2.4], "seed": args.seed,
            "hold": LATE_HOLD_SEC, "first_timeout": 8.0, "max_seconds": 40 + args.late * 12}
    client = Client(spec, tmp, target.prefix, f"{target.name}-late")
    try:
        res = client.expect("LATE", 40 + args.late * 12)
    finally:
        client.finish()
    target.drain()
    return res


# ---------------------------------------------------------------------------------------------------------
# orchestrator: the three systems


def make_source(path: Path, seconds: int) -> None:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
           "-profile:v", "baseline", "-level", "3.1", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M",
           "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
           "-f", "mpegts", str(path) + ".part"]
    subprocess.run(cmd, check=True)
    os.replace(str(path) + ".part", path)


def probe_source(path: Path) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,profile,width,height,r_frame_rate:format=duration,bit_rate",
                          "-of", "json", str(path)], capture_output=True, text=True, check=False).stdout
    try:
        doc = json.loads(out)
        s, f = doc["streams"][0], doc["format"]
        return (f"{s['codec_name']} {s.get('profile')} {s['width']}x{s['height']} @{s['r_frame_rate']}, "
                f"{float(f['duration']):.0f} s, {int(f['bit_rate']) / 1e6:.2f} Mbit/s, GOP 60 (2 s), no B-frames")
    except (ValueError, KeyError, IndexError):
        return "?"


def run_icey(args, src: Path, tmp: Path) -> dict:
    port = free_port()
    cfg = tmp / "icey.json"
    cfg.write_text(json.dumps({"webrtc": {"hostAddresses": [HOST]}}))
    server_bin = str(Path(sys.executable).parent / "icey-server")
    if not os.path.exists(server_bin):
        server_bin = shutil.which("icey-server") or "icey-server"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEY_")}
    cmd = [server_bin, "--source", f"{SOURCE_ID}={src}", "--no-turn", "-c", str(cfg), "--host", HOST,
           "--port", str(port), "--record-dir", str(tmp / "rec"), "--web-root", str(tmp / "web")]
    server = spawn(cmd, tmp / "icey.log", cwd=tmp, env=env)
    base = f"http://{HOST}:{port}"
    try:
        end = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"icey-server exited with code {server.returncode} (log: {tmp / 'icey.log'})")
            doc = get_json(port, f"/api/sources/{SOURCE_ID}")
            if doc and doc.get("state") == "online":
                break
            if time.monotonic() > end:
                raise RuntimeError("icey source never came online")
            time.sleep(0.2)
        kids = children(server.pid)
        worker = next(pid for pid, cmd in kids.items() if f"--source-id {SOURCE_ID}" in cmd)
        api = next(pid for pid, cmd in kids.items() if " -m api " in f"{cmd} ")

        def drain() -> None:
            end = time.monotonic() + 10
            while time.monotonic() < end:
                doc = get_json(port, f"/api/sources/{SOURCE_ID}/sessions")
                if doc is not None and doc.get("itemCount") == 0:
                    break
                time.sleep(0.2)
            time.sleep(0.5)

        time.sleep(1.0)
        target = Target("icey", {"worker": worker, "api": api, "supervisor": server.pid},
                        {"system": "whep", "url": f"{base}/api/sources/{SOURCE_ID}/whep", "host": HOST}, [], drain)
        rows = measure_counts(target, [0, *args.counts], args, tmp)
        late = late_joiners(target, args, tmp) if args.late else None
        status = get_json(port, f"/api/sources/{SOURCE_ID}") or {}
        return {"rows": rows, "late": late, "headline": "worker", "media": status.get("media"),
                "log_errors": _count_errors(tmp / "icey.log")}
    finally:
        code = stop_proc(server, timeout=10.0)
        print(f"  [icey] stopped, exit code {code}", flush=True)


def _count_errors(log: Path) -> dict:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return {"lines": len(lines), "error": sum(" ERROR " in ln or "Traceback" in ln for ln in lines),
            "warning": sum(" WARNING " in ln or " WARN " in ln for ln in lines)}


def run_reencode(args, src: Path, tmp: Path) -> dict:
    port = free_port()
    server = spawn([sys.executable, os.path.abspath(__file__), "--serve-reencode", str(port), str(src)],
                   tmp / "reencode.log", cwd=tmp)
    base = f"http://{HOST}:{port}"
    try:
        end = time.monotonic() + 20
        while get_json(port, "/stats") is None:
            if server.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"re-encode server did not start (log: {tmp / 'reencode.log'})")
            time.sleep(0.2)

        def drain() -> None:
            end = time.monotonic() + 10
            while time.monotonic() < end and (get_json(port, "/stats") or {}).get("pcs", 0) > 0:
                time.sleep(0.2)
            time.sleep(0.5)

        target = Target("reencode", {"server": server.pid},
                        {"system": "whep", "url": f"{base}/whep", "host": HOST}, [], drain)
        rows = measure_counts(target, [0, *args.reencode_counts], args, tmp)
        late = late_joiners(target, args, tmp) if args.late and not args.no_reencode_late else None
        return {"rows": rows, "late": late, "headline": "server", "log_errors": _count_errors(tmp / "reencode.log")}
    finally:
        stop_proc(server, timeout=10.0)
        print("  [reencode] stopped", flush=True)


JANUS_JCFG = """general: {{
\tconfigs_folder = "{conf}"
\tplugins_folder = "{lib}/plugins"
\ttransports_folder = "{lib}/transports"
\tevents_folder = "{lib}/events"
\tloggers_folder = "{lib}/loggers"
\tlog_to_stdout = true
\tdebug_level = 4
\tadmin_secret = "janusoverlord"
}}
media: {{
\trtp_port_range = "20000-20999"
\tipv6 = false
}}
nat: {{
\tnice_debug = false
\tignore_mdns = true
\tice_enforce_list = "{prefix}"
}}
"""


def write_janus_conf(conf: Path) -> None:
    """From notes/examples/janus_conf (copied, the template is not touched): streaming plugin and HTTP only,
    ICE on the namespace's veth address, a mountpoint taking H.264 RTP on 127.0.0.1:5004 that keeps the
    last keyframe for new viewers (videobufferkf)."""
    conf.mkdir(parents=True, exist_ok=True)
    template = Path("/work/shared/notes/examples/janus_conf")
    main = JANUS_JCFG.format(conf=conf, lib=JANUS_LIBDIR, prefix=NS_ADDR.rsplit(".", 1)[0] + ".")
    if (template / "janus.jcfg").exists():  # keep the template's plugins/transports/events/loggers sections
        text = (template / "janus.jcfg").read_text()
        main += text[text.index("plugins: {"):] if "plugins: {" in text else ""
    (conf / "janus.jcfg").write_text(main)
    (conf / "janus.transport.http.jcfg").write_text(
        'general: {\n\tjson = "indented"\n\tbase_path = "/janus"\n\thttp = true\n\tport = 8088\n'
        '\tip = "127.0.0.1"\n\thttps = false\n}\nadmin: {\n\tadmin_http = false\n}\n')
    (conf / "janus.plugin.streaming.jcfg").write_text(
        f'general: {{\n}}\nh264-cam: {{\n\ttype = "rtp"\n\tid = 1\n\tdescription = "H.264 bench source"\n'
        f'\taudio = false\n\tvideo = true\n\tvideoport = {JANUS_RTP_PORT}\n\tvideoiface = "127.0.0.1"\n'
        f'\tvideopt = 96\n\tvideocodec = "h264"\n\tvideofmtp = "profile-level-id=42e01f;packetization-mode=1"\n'
        f'\tvideobufferkf = true\n}}\n')


def run_janus(args, src: Path, tmp: Path) -> dict:
    if shutil.which("janus") is None:
        raise RuntimeError("janus not installed (apt-get install -y janus)")
    ns = f"{NS_PREFIX}{os.getpid()}"
    prefix = ["ip", "netns", "exec", ns]
    netns_create(ns)
    janus = feeder = None
    try:
        conf = tmp / "janus_conf"
        write_janus_conf(conf)
        janus = spawn([*prefix, "janus", "-F", str(conf)], tmp / "janus.log", cwd=tmp)
        # No `-bsf:v h264_mp4toannexb` (infra.md's recipe): the TS is Annex B already, and with -stream_loop
        # ffmpeg 5.1 stops sending at the first loop ("A non-NULL packet sent after an EOF").
        feeder = spawn([*prefix, "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(src),
                        "-an", "-c:v", "copy", "-f", "rtp", "-payload_type", "96",
                        f"rtp://127.0.0.1:{JANUS_RTP_PORT}"], tmp / "janus-ffmpeg.log", cwd=tmp)
        time.sleep(2.0)  # `ip netns exec` execs the command, so these pids are Janus's and ffmpeg's own
        for proc, what in ((janus, "janus"), (feeder, "ffmpeg")):
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with code {proc.returncode} (log in {tmp})")
        target = Target("janus", {"janus": janus.pid, "ffmpeg feeder": feeder.pid},
                        {"system": "janus", "url": JANUS_HTTP, "host": NS_ADDR}, prefix, lambda: time.sleep(1.0))
        rows = measure_counts(target, [0, *args.counts], args, tmp)
        late = late_joiners(target, args, tmp) if args.late else None
        return {"rows": rows, "late": late, "headline": "janus", "log_errors": _count_errors(tmp / "janus.log")}
    finally:
        stop_proc(feeder, timeout=5.0)
        stop_proc(janus, sig=signal.SIGINT, timeout=10.0)
        netns_delete(ns)
        print(f"  [janus] stopped; namespace {ns} deleted", flush=True)


# ---------------------------------------------------------------------------------------------------------
# orchestrator: report


def slope(rows: list[dict], key: str, a: int, b: int) -> float:
    ra = next((r for r in rows if r["n"] == a), None)
    rb = next((r for r in rows if r["n"] == b), None)
    if ra is None or rb is None or a == b:
        return math.nan
    return (rb["cpu"][key] / rb["window"] - ra["cpu"][key] / ra["window"]) / (b - a)


LABELS = {"icey": "icey-server worker", "reencode": "re-encode (aiortc)", "janus": "Janus streaming"}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def print_report(args, res: dict, source_desc: str, t_total: float) -> None:
    w = print
    ok = {s: r for s, r in res.items() if "error" not in r}
    w("")
    w("=" * 120)
    w(f"Media CPU benchmark. Source: {source_desc}. {os.cpu_count()} CPUs.")
    w(f"Window {args.window:.0f} s per point, from {args.settle:.0f} s after every viewer had its first frame.")
    w(f"Viewers: aiortc recvonly H.264, not decoding, in separate client processes (<= {VIEWERS_PER_CLIENT} viewers "
      "each).")
    w("=" * 120)
    head = (f"{'system':<20}{'viewers':>8}{'cores':>7}{'CPU-s/viewer-s':>15}{'ms/frame':>9}{'fps avg':>8}"
            f"{'fps min':>8}{'Mbit/s/v':>9}{'burst fr':>9}{'UDP drops':>10}{'client cores':>13}{'other load':>11}")
    w(head)
    w("-" * len(head))
    for system, r in res.items():
        if system not in ok:
            w(f"{LABELS[system]:<20} FAILED: {r['error']}")
            continue
        key = r["headline"]
        for row in r["rows"]:
            n, win = row["n"], row["window"]
            cores = row["cpu"][key] / win
            own = sum(v for v in row["cpu"].values() if not math.isnan(v)) + row["client_cpu"]
            host = f"{row['host_busy'] - own / win:>11.2f}"
            if n == 0:
                w(f"{LABELS[system]:<20}{n:>8}{fmt(cores, '.3f'):>7}{'':>15}{'':>9}{'':>8}{'':>8}{'':>9}{'':>9}"
                  f"{'':>10}{'':>13}{host}")
                continue
            ms = 1000 * row["cpu"][key] / max(1, row["frames"])
            drops = "-" if row["drops_window"] is None else str(row["drops_window"])
            note = "" if row["with_frames"] == n else f"  only {row['with_frames']}/{n} viewers got a frame"
            w(f"{LABELS[system]:<20}{n:>8}{fmt(cores, '.3f'):>7}{fmt(cores / n, '.4f'):>15}{fmt(ms, '.2f'):>9}"
              f"{_mean(row['fps']):>8.1f}{min(row['fps']):>8.1f}{_mean(row['mbit']):>9.2f}{sum(row['squeezed']):>9}"
              f"{drops:>10}{row['client_cpu'] / win:>13.2f}{host}{note}")
        for key2 in list(r["rows"][0]["cpu"])[1:]:
            vals = " / ".join(fmt(row["cpu"][key2] / row["window"], ".3f") for row in r["rows"])
            counts = "/".join(str(row["n"]) for row in r["rows"])
            w(f"  {key2} process: {vals} cores at {counts} viewers")
        w("")
    w("cores: CPU-s of the process (utime+stime, all threads) / window s; CPU-s/viewer-s = cores / viewers;")
    w("ms/frame: CPU ms per frame delivered (summed over viewers); fps, Mbit/s/v (H.264 payload): the viewers' own")
    w("counters; burst fr: frames that arrived less than half a frame interval (RTP time) after the previous one, i.e.")
    w("replayed catch-up frames, summed over viewers; UDP drops: RcvbufErrors of the viewers' network namespace in the")
    w("window (the host namespace also counts other programs); other load: busy cores of the whole machine in the")
    w("window minus the measured processes and the clients (other programs sharing the 2 cores).")
    w("")

    w("Summary")
    head = (f"{'system':<20}{'fixed, 0 viewers':>18}{'marginal per viewer':>21}{'slope over':>12}"
            f"{'CPU-s/viewer-s at max':>23}{'join CPU per viewer':>22}")
    w(head)
    w("-" * len(head))
    marg: dict[str, float] = {}
    for system, r in ok.items():
        rows, key = r["rows"], r["headline"]
        counts = sorted(row["n"] for row in rows if row["n"] > 0)
        lo, hi = counts[0], counts[-1]
        marg[system] = slope(rows, key, lo, hi)
        fixed = rows[0]["cpu"][key] / rows[0]["window"]
        top = next(row for row in rows if row["n"] == hi)
        joins = [(row["setup_cpu"][key] - fixed * row["setup_s"]) / row["n"] for row in rows if row["n"] > 0]
        w(f"{LABELS[system]:<20}{fmt(fixed, '.3f') + ' cores':>18}{fmt(marg[system], '.4f') + ' cores':>21}"
          f"{f'{lo} -> {hi}':>12}{fmt(top['cpu'][key] / top['window'] / hi, '.4f'):>23}"
          f"{' / '.join(f'{1000 * j:.0f}' for j in joins) + ' ms':>22}")
        steps = [(0, lo)] + list(zip(counts, counts[1:], strict=False))
        w(f"{'':<20}{'':>18}  (per viewer, piecewise: "
          + ", ".join(f"{a} -> {b}: {fmt(slope(rows, key, a, b), '.4f')}" for a, b in steps) + " cores)")
    if "janus" in ok:
        jr = ok["janus"]["rows"]
        w(f"{'Janus ffmpeg feeder':<20}{fmt(jr[0]['cpu']['ffmpeg feeder'] / jr[0]['window'], '.3f') + ' cores':>18}"
          f"   (file demux + RTP packetizing for Janus; icey's worker does this itself)")
    w("join CPU per viewer (at each viewer count): the process's CPU from starting the clients to the window, minus")
    w("the fixed rate, per viewer: signalling, ICE, DTLS handshake and the first frames (icey: the replayed GOP).")
    w("")
    w("Ratios")
    if "icey" in marg and "janus" in marg:
        r = marg["icey"] / marg["janus"] if marg["janus"] > 0 else math.nan
        w(f"  marginal CPU per viewer, icey / Janus:       {fmt(r, '.2f')}x")
    if "icey" in marg and "reencode" in marg:
        r = marg["icey"] / marg["reencode"] if marg["reencode"] > 0 else math.nan
        w(f"  marginal CPU per viewer, icey / re-encode:   {fmt(r, '.4f')}x  "
          f"(re-encode costs {fmt(1 / r, '.0f')}x more)")
    if "icey" in ok and "janus" in ok:
        fi, fj = ok["icey"]["rows"][0], ok["janus"]["rows"][0]
        ci, cj = fi["cpu"]["worker"] / fi["window"], fj["cpu"]["janus"] / fj["window"]
        cf = fj["cpu"]["ffmpeg feeder"] / fj["window"]
        w(f"  fixed CPU per source, icey / Janus:          {fmt(ci / cj if cj else math.nan, '.2f')}x  "
          f"(icey / (Janus + its ffmpeg feeder): {fmt(ci / (cj + cf) if cj + cf else math.nan, '.2f')}x)")
    for system in ("icey", "janus"):
        if system in ok:
            top = max(ok[system]["rows"], key=lambda row: row["n"])
            key = ok[system]["headline"]
            ok[system]["top_per"] = top["cpu"][key] / top["window"] / top["n"]
    if "icey" in ok and "janus" in ok:
        w(f"  CPU-s per viewer-second at {max(args.counts)} viewers, icey / Janus: "
          f"{fmt(ok['icey']['top_per'] / ok['janus']['top_per'], '.2f')}x")
    w("")
    late_rows = {s: r["late"] for s, r in ok.items() if r.get("late")}
    if late_rows:
        w(f"Late joiners: {args.late} viewers join one at a time after random gaps of 0.4-2.4 s (so anywhere in the "
          "2 s GOP) while 1 viewer watches;")
        w("first frame = stream request (WHEP POST / Janus 'watch') -> first IDR frame complete at the receiver.")
        head = (f"{'system':<20}{'got one':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'> 1 s':>6}{'answer p50 s':>13}"
                f"{f'frames in first {LATE_HOLD_SEC} s, p50':>28}")
        w(head)
        w("-" * len(head))
        for system, late in late_rows.items():
            js = late["joiners"]
            firsts = [j["first_key"] for j in js if j.get("first_key") is not None]
            answers = [j["answer"] for j in js if j.get("answer") is not None]
            held = [j["frames_hold"] for j in js if j.get("first_key") is not None]
            w(f"{LABELS[system]:<20}{f'{len(firsts)}/{len(js)}':>8}{fmt(percentile(firsts, 50), '.3f'):>8}"
              f"{fmt(percentile(firsts, 95), '.3f'):>8}{fmt(max(firsts) if firsts else math.nan, '.3f'):>8}"
              f"{sum(f > 1.0 for f in firsts):>6}{fmt(percentile(answers, 50), '.3f'):>13}"
              f"{fmt(percentile(held, 50), '.0f'):>28}")
            w(f"{'':<22}all: {' '.join(f'{f:.2f}' for f in sorted(firsts))}")
            if system == "janus":
                setups = [j["setup"] for j in js if j.get("setup") is not None]
                w(f"{'':<22}(Janus session create + attach before 'watch' add p50 "
                  f"{fmt(percentile(setups, 50), '.3f')} s)")
            errs = [j["error"] for j in js if j.get("error")]
            if errs:
                w(f"{'':<22}errors: {errs[:3]}")
        w(f"  answer: request -> SDP answer (Janus: offer) received; frames in first {LATE_HOLD_SEC} s: frames "
          f"received in the {LATE_HOLD_SEC} s")
        w(f"  from the first IDR on ({30 * LATE_HOLD_SEC:.0f} = live pace; more = a replayed catch-up burst).")
        w("")
    w("Goals")
    if "icey" in marg and "janus" in marg:
        r = marg["icey"] / marg["janus"] if marg["janus"] > 0 else math.nan
        w(f"  marginal cost per viewer at or below Janus's: icey {fmt(marg['icey'], '.4f')} vs Janus "
          f"{fmt(marg['janus'], '.4f')} cores ({fmt(r, '.2f')}x): {'MET' if r <= 1.0 else 'NOT MET'}")
    if "icey" in late_rows:
        firsts = [j["first_key"] for j in late_rows["icey"]["joiners"] if j.get("first_key") is not None]
        n_all = len(late_rows["icey"]["joiners"])
        p50, p95 = percentile(firsts, 50), percentile(firsts, 95)
        verdict = "MET" if len(firsts) == n_all and p95 < FIRST_FRAME_TARGET_SEC else "NOT MET"
        w(f"  late joiner first frame under {FIRST_FRAME_TARGET_SEC} s: icey p50 {fmt(p50, '.3f')} s, "
          f"p95 {fmt(p95, '.3f')} s: {verdict} (at p50: {'MET' if p50 < FIRST_FRAME_TARGET_SEC else 'NOT MET'})")
    w("")
    if "reencode" in ok:
        w(f"note: re-encode measured at {', '.join(map(str, args.reencode_counts))} viewers only (not "
          f"{max(args.counts)}): one libx264 encoder per viewer saturates these 2 cores at about 4-5 viewers. Its "
          "fixed CPU is ~0 because MediaPlayer starts decoding only with the first viewer.")
    for system, r in ok.items():
        le = r.get("log_errors")
        if le:
            w(f"note: {LABELS[system]} log: {le['lines']} lines, {le['error']} with ERROR/Traceback, "
              f"{le['warning']} with WARNING")
        for row in r.get("rows", []):
            if row.get("errors"):
                w(f"note: {LABELS[system]} {row['n']} viewers: connect errors {row['errors'][:2]}")
    w(f"total run {t_total:.0f} s")


# ---------------------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--window", type=float, default=15.0, help="CPU measurement window per point (s)")
    p.add_argument("--settle", type=float, default=2.0, help="wait after every viewer had a frame (s)")
    p.add_argument("--counts", default="1,10,25", help="viewer counts for icey and Janus")
    p.add_argument("--reencode-counts", default="1,2,4", help="viewer counts for the re-encode baseline")
    p.add_argument("--late", type=int, default=20, help="late joiners per system (0: skip)")
    p.add_argument("--no-reencode-late", action="store_true", help="skip the re-encode late joiners")
    p.add_argument("--systems", default="icey,reencode,janus", help="which systems to run, in this order")
    p.add_argument("--source", type=Path, help="an existing H.264 MPEG-TS to serve (default: generate one)")
    p.add_argument("--source-seconds", type=int, default=60, help="length of the generated source")
    p.add_argument("--seed", type=int, default=1, help="seed of the late joiners' random gaps")
    p.add_argument("--quick", action="store_true", help="5 s windows, 1 s settle, 8 late joiners (~2.5 min)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs, source)")
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--serve-reencode", nargs=2, help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:
        p.set_defaults(window=5.0, settle=1.0, late=8)
    args = p.parse_args()
    if args.client:
        client_main(args.client)
        return 0
    if args.serve_reencode:
        serve_reencode(int(args.serve_reencode[0]), args.serve_reencode[1])
        return 0
    args.counts = [int(x) for x in args.counts.split(",") if x.strip() and int(x) > 0]
    args.reencode_counts = [int(x) for x in args.reencode_counts.split(",") if x.strip() and int(x) > 0]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "janus" in systems and os.geteuid() != 0:
        raise SystemExit("the Janus baseline needs root (ip netns); run as root or pass --systems icey,reencode")

    t_begin = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="icey-media-cpu-"))
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    results: dict[str, dict] = {}
    try:
        remove_stale_namespaces()
        src = args.source
        if src is None:
            src = tmp / "src720.ts"
            print(f"generating {src} ({args.source_seconds} s 720p30 H.264 Baseline, ~2 Mbit/s, GOP 60) ...",
                  flush=True)
            make_source(src, args.source_seconds)
        src = src.resolve()
        desc = probe_source(src)
        print(f"source: {desc}", flush=True)
        runners = {"icey": run_icey, "reencode": run_reencode, "janus": run_janus}
        for system in systems:
            print(f"{system}:", flush=True)
            try:
                results[system] = runners[system](args, src, tmp)
            except (RuntimeError, subprocess.CalledProcessError, StopIteration) as exc:
                print(f"  [{system}] FAILED: {exc}", flush=True)
                results[system] = {"error": str(exc)}
        print_report(args, results, desc, time.monotonic() - t_begin)
        return 0 if all("error" not in r for r in results.values()) else 1
    finally:
        cleanup()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
