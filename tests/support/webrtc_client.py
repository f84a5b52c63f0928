"""A real aiortc WHEP viewer for tests: posts an offer over HTTP, receives and decodes frames."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

# aioice never offers 127.0.0.1 by default; tests stay on loopback.
CLOSE_TIMEOUT_SEC = 10.0
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]


@dataclass
class Viewer:
    pc: RTCPeerConnection
    location: str
    status: int
    started: float
    video_frames: list = field(default_factory=list)  # (arrival monotonic, width, height, pts)
    audio_frames: int = 0
    first_frame_at: float | None = None
    tasks: list = field(default_factory=list)
    body: bytes = b""  # the error body when the POST failed

    @property
    def first_frame_delay(self) -> float | None:
        return None if self.first_frame_at is None else self.first_frame_at - self.started

    async def close(self) -> None:
        """Bounded: aiortc's close can wait forever on a transport whose network is gone (a
        vanished peer), and a test must end by itself."""
        for task in self.tasks:
            task.cancel()
        try:
            await asyncio.wait_for(self.pc.close(), CLOSE_TIMEOUT_SEC)
        except TimeoutError:
            pass


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


async def _consume(viewer: Viewer, track) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.monotonic()
        if track.kind == "video":
            if viewer.first_frame_at is None:
                viewer.first_frame_at = now
            viewer.video_frames.append((now, frame.width, frame.height, frame.pts))
        else:
            viewer.audio_frames += 1


async def watch(base: str, source_id: str, audio: bool = True, headers: dict[str, str] | None = None,
                decode: bool = True) -> Viewer:
    """Open a WHEP session. The returned viewer's status is the HTTP status of the POST."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    started = time.monotonic()
    viewer = Viewer(pc=pc, location="", status=0, started=started)

    @pc.on("track")
    def on_track(track) -> None:
        if decode:
            viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))

    status, resp_headers, body = await asyncio.to_thread(
        _post, f"{base}/api/sources/{source_id}/whep", pc.localDescription.sdp.encode(),
        {"Content-Type": "application/sdp", **(headers or {})})
    viewer.status = status
    viewer.location = resp_headers.get("location", "")
    if status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="answer"))
    else:
        viewer.body = body
        await pc.close()
    return viewer


async def wait_frames(viewer: Viewer, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(viewer.video_frames) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(viewer.video_frames)} video frames after {timeout}s")
        await asyncio.sleep(0.05)


class PatternTrack:
    """A moving test picture for a publisher (aiortc encodes it to H.264 itself)."""

    @staticmethod
    def make(width: int = 320, height: int = 240):
        import fractions

        import av
        import numpy as np
        from aiortc.mediastreams import VideoStreamTrack

        class _Track(VideoStreamTrack):
            async def recv(self):
                pts, time_base = await self.next_timestamp()
                img = np.zeros((height, width, 3), dtype=np.uint8)
                x = (pts // 3000) % (width - 40)
                img[100:140, x:x + 40] = (255, 255, 255)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
                return frame

        return _Track()


async def publish(base: str, source_id: str, headers: dict[str, str] | None = None,
                  audio: bool = True) -> Viewer:
    """Open a WHIP session that sends a moving picture (H.264) and a tone-less Opus track."""
    from aiortc import RTCRtpSender
    from aiortc.mediastreams import AudioStreamTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = pc.addTransceiver(PatternTrack.make(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"])
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    started = time.monotonic()
    status, resp_headers, body = await asyncio.to_thread(
        _post, f"{base}/api/sources/{source_id}/whip", pc.localDescription.sdp.encode(),
        {"Content-Type": "application/sdp", **(headers or {})})
    publisher = Viewer(pc=pc, location=resp_headers.get("location", ""), status=status, started=started)
    if status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="answer"))
    else:
        publisher.body = body
        await pc.close()
    return publisher
