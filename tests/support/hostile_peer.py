"""aiortc peers that ask a server for more than a WHEP viewer should, for the fault tests."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

from support.webrtc_client import PatternTrack


def _h264_only(transceiver: RTCRtpTransceiver) -> None:
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                     if c.mimeType == "video/H264"])


async def viewer_offer() -> RTCPeerConnection:
    """An ordinary recvonly video viewer, offer made (a test adds to it before posting)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _h264_only(pc.addTransceiver("video", direction="recvonly"))
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def extra_video_offer(senders: int = 2) -> RTCPeerConnection:
    """One recvonly video m-line, as a viewer, plus `senders` sendonly video m-lines that push a
    moving picture at the server (which, answered recvonly, the server would decode)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _h264_only(pc.addTransceiver("video", direction="recvonly"))
    for _ in range(senders):
        _h264_only(pc.addTransceiver(PatternTrack.make(), direction="sendonly"))
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def sendrecv_viewer_offer() -> tuple[RTCPeerConnection, RTCRtpTransceiver]:
    """A viewer whose video m-line is sendrecv with a real track behind it (what a browser's
    `addTransceiver("video")` offers): the server must answer it sendonly."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(PatternTrack.make(), direction="sendrecv")
    _h264_only(transceiver)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, transceiver


async def send_anyway(pc: RTCPeerConnection, transceiver: RTCRtpTransceiver) -> None:
    """Start the sender although the answer did not let it send: a client that ignores the
    answer and pushes RTP at the server regardless. Call once the connection is up."""
    params = pc._RTCPeerConnection__localRtp(transceiver)  # type: ignore[attr-defined]
    transceiver.sender._enabled = True  # aiortc drops frames of a sender the answer disabled
    await transceiver.sender.send(params)


async def silent_offer(kind: str = "whep") -> str:
    """A valid offer that lists no ICE candidate and whose peer is gone: the session it opens
    can never connect (no trickle ICE here), so only the server's connect timeout ends it."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if kind == "whep":
        _h264_only(pc.addTransceiver("video", direction="recvonly"))
    else:
        _h264_only(pc.addTransceiver(PatternTrack.make(), direction="sendonly"))
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return "".join(line + "\r\n" for line in sdp.splitlines()
                   if not line.startswith(("a=candidate:", "a=end-of-candidates")))


def vanish(pc: RTCPeerConnection) -> None:
    """The peer's network goes away: from now on nothing it sends leaves and nothing reaches it
    (no DELETE, no DTLS close, no RTCP BYE get through), as when a laptop lid closes. Close `pc`
    afterwards to free it here."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection  # aioice's ICE agent
        for protocol in connection._protocols:
            protocol.transport.sendto = lambda data, addr=None: None
            protocol.datagram_received = lambda data, addr: None
