"""The fan-out pass that sends every viewer's RTP (workers/webrtc/rtp_fanout.py), checked on the wire:
real aiortc viewers of a real server, with what their DTLS transport decrypts recorded packet by packet."""

from __future__ import annotations

import asyncio
import re
from itertools import pairwise

from support.processes import until
from support.rtp_tap import RtpSeen, RtpTap
from support.servers import LOOPBACK
from support.webrtc_client import wait_frames, watch

SOURCE = "demo://testsrc2?size=320x180&rate=15&gop=30"


def _payload_types(sdp: str, encoding: str) -> set[int]:
    return {int(pt) for pt in re.findall(rf"a=rtpmap:(\d+) {encoding}/90000", sdp)}


def _video(tap: RtpTap, sdp: str) -> list[RtpSeen]:
    h264 = _payload_types(sdp, "H264")
    return [p for p in tap.packets if p.payload_type in h264]


async def test_many_viewers_each_get_every_packet_with_their_own_ssrc_and_sequence(icey):
    server = icey(["--source", f"cam={SOURCE}", "--no-turn"], config=LOOPBACK)
    server.wait_source("cam", lambda s: s["state"] == "online")
    viewers, taps = [], []
    try:
        for _ in range(4):
            viewers.append(await watch(server.base, "cam", audio=False))
            taps.append(RtpTap(viewers[-1].pc))
        for viewer in viewers:
            await wait_frames(viewer, 30)
        streams = [_video(tap, v.pc.remoteDescription.sdp) for tap, v in zip(taps, viewers, strict=True)]
        ssrcs = [{p.ssrc for p in stream} for stream in streams]
        assert all(len(s) == 1 for s in ssrcs), ssrcs
        assert len(set.union(*ssrcs)) == len(viewers)  # one SSRC of its own per viewer
        for stream in streams:
            gaps = [(a.sequence, b.sequence) for a, b in pairwise(stream)
                    if b.sequence != (a.sequence + 1) & 0xFFFF]
            assert not gaps, gaps  # loopback loses nothing: every packet, in order, each its own count
            frames = [p.timestamp for p in stream if p.marker]
            assert len(frames) >= 30 and all((b - a) & 0xFFFFFFFF < 1 << 31 for a, b in pairwise(frames))
        # The same frames for all: live frames follow each other by the same RTP durations for every viewer.
        deltas = []
        for stream in streams:
            marked = [p.timestamp for p in stream if p.marker]
            deltas.append([(b - a) & 0xFFFFFFFF for a, b in pairwise(marked)][-20:])
        assert all(d == deltas[0] for d in deltas), deltas
        # Each session's counters (pushed with the worker's state) count what went to that viewer.
        await until(lambda: (items := server.get("/api/sources/cam/sessions").json()["items"]) and len(items) == 4
                    and all(s["packetsSent"] >= 30 and s["bytesSent"] > 10_000 and s["droppedUnits"] == 0
                            for s in items), 5, what="every session's counters")
    finally:
        for viewer in viewers:
            await viewer.close()


async def test_a_nack_gets_the_packet_again_as_rtx(icey):
    server = icey(["--source", f"cam={SOURCE}", "--no-turn"], config=LOOPBACK)
    server.wait_source("cam", lambda s: s["state"] == "online")
    viewer = await watch(server.base, "cam", audio=False)
    tap = RtpTap(viewer.pc)
    try:
        await wait_frames(viewer, 10)
        sdp = viewer.pc.remoteDescription.sdp
        rtx_types = _payload_types(sdp, "rtx")
        assert rtx_types, "the server negotiated no RTX"
        wanted = _video(tap, sdp)[-3]  # recent: well inside the sender's history
        receiver = viewer.pc.getTransceivers()[0].receiver
        await receiver._send_rtcp_nack(wanted.ssrc, [wanted.sequence])

        def resent() -> RtpSeen | None:
            return next((p for p in tap.packets if p.payload_type in rtx_types
                         and p.payload[:2] == wanted.sequence.to_bytes(2, "big")), None)

        rtx = await until(resent, 5, what="an RTX packet for the NACKed sequence")
        assert rtx.payload[2:] == wanted.payload and rtx.timestamp == wanted.timestamp
        assert rtx.ssrc != wanted.ssrc and rtx.marker == wanted.marker
        assert f"a=ssrc-group:FID {wanted.ssrc} {rtx.ssrc}" in sdp  # the RTX SSRC the answer announced
        await wait_frames(viewer, len(viewer.video_frames) + 10)  # and the stream goes on
    finally:
        await viewer.close()


async def test_a_viewer_of_an_idle_camera_gets_a_decodable_first_frame_at_once(icey):
    """Nobody has watched: the worker kept its current GOP unpacketized and packetizes it now."""
    server = icey(["--source", "cam=demo://testsrc2?size=320x180&rate=15&gop=60", "--no-turn"], config=LOOPBACK)
    server.wait_source("cam", lambda s: s["state"] == "online")
    await asyncio.sleep(2.5)  # well into a 4 s GOP
    viewer = await watch(server.base, "cam", audio=False)
    tap = RtpTap(viewer.pc)
    try:
        await wait_frames(viewer, 1, timeout=10)
        assert viewer.video_frames[0][1:3] == (320, 180)
        first = _video(tap, viewer.pc.remoteDescription.sdp)[0]
        nal = first.payload[0] & 0x1F
        if nal == 28:  # FU-A: the fragmented NAL's type is in the second byte
            nal = first.payload[1] & 0x1F
        elif nal == 24:  # STAP-A: the first aggregated NAL
            nal = first.payload[3] & 0x1F
        assert nal in (5, 7)  # it starts with the parameter sets or the IDR
        await wait_frames(viewer, 40)  # the replayed GOP, then the live stream
        frames = [p.timestamp for p in _video(tap, viewer.pc.remoteDescription.sdp) if p.marker]
        assert len(frames) >= 40 and all(0 < (b - a) & 0xFFFFFFFF < 1 << 31 for a, b in pairwise(frames))
    finally:
        await viewer.close()
