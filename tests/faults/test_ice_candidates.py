"""Issue 8, item 8: an offer cannot aim the server's connectivity checks at other hosts.

Every remote candidate in an offer made the server send STUN to that address and port. Now the
server checks only the HTTP client's own address, global addresses and addresses on its own
host networks (loopback: the client's own address only), never resolves names, and refuses an
offer that lists more than 64 candidates."""

from __future__ import annotations

import asyncio
import socket
import time

from aiortc import RTCSessionDescription
from support.hostile_peer import viewer_offer
from support.processes import until

SDP = {"Content-Type": "application/sdp"}
CONFIG = {"webrtc": {"hostAddresses": ["127.0.0.1"]},
          "sources": [{"id": "cam", "source": "demo://testsrc2?size=160x90&rate=10"}]}
TRAP = "127.0.0.2"  # loopback, but not the client: stands for a host on the server's side
LISTEN_SEC = 5.0


def _with_candidates(sdp: str, extra: list[str]) -> str:
    """The offer with `extra` candidate lines added to its first m-line (before its own)."""
    lines = sdp.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("a=candidate:"))
    return "\r\n".join(lines[:at] + extra + lines[at:]) + "\r\n"


def _candidate(n: int, address: str, port: int) -> str:
    return f"a=candidate:x{n} 1 udp 2130706431 {address} {port} typ host"


async def test_candidates_aimed_elsewhere_get_no_checks(icey):
    server = icey(["--no-turn"], config=CONFIG)
    server.wait_source("cam", lambda s: s["state"] == "online")
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trap.bind((TRAP, 0))
    trap.setblocking(False)
    port = trap.getsockname()[1]
    pc = await viewer_offer()
    frames = []

    @pc.on("track")
    def on_track(track) -> None:
        async def consume() -> None:
            while True:
                frames.append(await track.recv())

        asyncio.ensure_future(consume())

    try:
        offer = _with_candidates(pc.localDescription.sdp, [
            _candidate(1, TRAP, port), _candidate(2, "10.0.0.1", 3478), _candidate(3, "192.168.77.1", 53),
            _candidate(4, "169.254.169.254", 80), _candidate(5, "0.0.0.0", 9), _candidate(6, "224.0.0.251", 5353),
            _candidate(7, "b1f6a3c4-7e0d-4c1e-9d8a-2f3b4c5d6e7f.local", 9)])
        r = await asyncio.to_thread(server.request, "POST", "/api/sources/cam/whep", SDP, offer.encode())
        assert r.status == 201, r.body
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.body.decode(), type="answer"))
        checks = 0
        deadline = time.monotonic() + LISTEN_SEC
        while time.monotonic() < deadline:
            try:
                while trap.recv(2048):
                    checks += 1
            except BlockingIOError:
                pass
            await asyncio.sleep(0.05)
        assert checks == 0, f"the server sent {checks} packets to {TRAP}:{port}"
        # The client's own candidate was kept: the viewer connected and watches.
        assert pc.connectionState == "connected"
        await until(lambda: len(frames) >= 5, 10, what="frames")
    finally:
        trap.close()
        await pc.close()


async def test_an_offer_with_a_thousand_candidates_is_refused(icey):
    server = icey(["--no-turn"], config=CONFIG)
    server.wait_source("cam", lambda s: s["state"] == "online")
    pc = await viewer_offer()
    await pc.close()
    offer = _with_candidates(pc.localDescription.sdp,
                             [_candidate(n, f"10.{n // 250}.{n % 250}.1", 9) for n in range(1000)])
    assert len(offer.encode()) < 64 * 1024  # small enough for the size limit: the count is what refuses it
    r = await asyncio.to_thread(server.request, "POST", "/api/sources/cam/whep", SDP, offer.encode())
    assert r.status == 400 and "ICE candidates; at most 64" in r.json()["detail"], (r.status, r.body)
    assert server.get("/api/sources/cam/sessions").json()["itemCount"] == 0
