"""Issue 8, item 4: an offer cannot make the worker receive, decode and keep media nobody reads.

aiortc answers every m-line; one that sends to us gets a receiver whose decoder thread queues
every decoded frame without bound. WHEP offers may only receive (at most one video and one
audio m-line), WHIP offers only send; anything else is refused with 400."""

from __future__ import annotations

import asyncio
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from support.hostile_peer import extra_video_offer, send_anyway, sendrecv_viewer_offer
from support.proc_stats import footprint
from support.processes import until
from support.webrtc_client import PatternTrack

SDP = {"Content-Type": "application/sdp"}
CONFIG = {"webrtc": {"hostAddresses": ["127.0.0.1"]},
          "sources": [{"id": "cam", "source": "demo://testsrc2?size=320x180&rate=15"},
                      {"id": "rec", "mode": "record"}]}
ATTACK_SEC = 20.0
MAX_RSS_GROWTH_KB = 8 * 1024


async def _post(server, path: str, pc: RTCPeerConnection):
    return await asyncio.to_thread(server.request, "POST", path, SDP, pc.localDescription.sdp.encode())


async def _refused(server, path: str, pc: RTCPeerConnection, why: str) -> None:
    try:
        r = await _post(server, path, pc)
    finally:
        await pc.close()
    assert r.status == 400, (r.status, r.body)
    assert r.json()["error"] == "bad_request" and why in r.json()["detail"], r.json()


def _video_section(sdp: str) -> str:
    return sdp[sdp.index("m=video"):].split("\nm=", 1)[0]


async def test_offers_asking_the_server_to_receive_are_refused(icey):
    server = icey(["--no-turn"], config=CONFIG)
    server.wait_source("cam", lambda s: s["state"] == "online")

    # The attack of the issue: one recvonly m-line to watch, two sendonly ones pushing video.
    await _refused(server, "/api/sources/cam/whep", await extra_video_offer(senders=2), "one video m-line")
    # A WHEP offer whose only video m-line sends to us.
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender.addTransceiver(PatternTrack.make(), direction="sendonly")
    await sender.setLocalDescription(await sender.createOffer())
    await _refused(server, "/api/sources/cam/whep", sender, "recvonly or sendrecv")
    # A data channel (an SCTP association per viewer) is not part of WHEP either.
    channel = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel.addTransceiver("video", direction="recvonly")
    channel.createDataChannel("x")
    await channel.setLocalDescription(await channel.createOffer())
    await _refused(server, "/api/sources/cam/whep", channel, "only have video and audio")
    # WHIP: one video and one audio m-line at most (a second video would be recorded interleaved).
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for _ in range(2):
        publisher.addTransceiver(PatternTrack.make(), direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    await _refused(server, "/api/sources/rec/whip", publisher, "one video m-line")
    assert server.get("/api/sources/cam/sessions").json()["itemCount"] == 0
    assert server.get("/api/sources/rec/sessions").json()["itemCount"] == 0


async def test_a_viewer_pushing_video_anyway_costs_the_worker_nothing(icey):
    """A sendrecv viewer is answered sendonly; it then sends video regardless for ATTACK_SEC. The
    worker must not receive it: no decoder thread, RSS flat."""
    server = icey(["--no-turn"], config=CONFIG)
    server.wait_source("cam", lambda s: s["state"] == "online")
    pid = server.source("cam")["worker"]["pid"]
    pc, transceiver = await sendrecv_viewer_offer()
    frames = [0]

    @pc.on("track")
    def on_track(track) -> None:
        async def consume() -> None:
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return
                frames[0] += 1

        asyncio.ensure_future(consume())

    try:
        r = await _post(server, "/api/sources/cam/whep", pc)
        assert r.status == 201, r.body
        answer = r.body.decode()
        assert "a=sendonly" in _video_section(answer) and "a=recvonly" not in answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await until(lambda: frames[0] >= 10, 15, what="the viewer's first frames")
        before = footprint(pid)
        await send_anyway(pc, transceiver)
        started = time.monotonic()
        peak = before.rss_kb
        while time.monotonic() - started < ATTACK_SEC:
            await asyncio.sleep(1.0)
            now = footprint(pid)
            peak = max(peak, now.rss_kb)
            assert now.threads == before.threads, f"the worker started a thread: {before} -> {now}"
        after = footprint(pid)
        stats = await transceiver.sender.getStats()
        sent = sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")
        print(f"\nworker under attack ({ATTACK_SEC:.0f} s, {sent} RTP packets pushed): before {before}; "
              f"after {after}; peak RSS {peak / 1024:.1f} MB; CPU {(after.cpu_sec - before.cpu_sec) / ATTACK_SEC:.3f}")
        assert sent > ATTACK_SEC * 15, "the client did not push video"
        assert peak - before.rss_kb < MAX_RSS_GROWTH_KB, (before, after, peak)
        assert frames[0] > ATTACK_SEC * 10  # and the viewer kept watching throughout
    finally:
        await pc.close()
