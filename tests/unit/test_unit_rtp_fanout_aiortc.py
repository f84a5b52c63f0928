"""What workers/webrtc/rtp_fanout.py takes from aiortc and aioice below their public API (written for
aiortc 1.16.0, aioice 0.13.0). When an upgrade renames or reshapes any of it, this fails and says
what: the fan-out would otherwise send nothing, count nothing or never retransmit."""

from __future__ import annotations

import inspect

import aioice.ice
import aiortc.rtcrtpsender
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import State
from aiortc.rtp import RTP_HISTORY_SIZE, pack_header_extensions

from workers.webrtc.rtp_fanout import RtpStream


def _params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def _source(function) -> str:
    return inspect.getsource(function)


async def test_the_sender_internals_the_fanout_replaces_or_feeds():
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    sender = RTCRtpSender("video", transport)
    # Replaced per sender (instance attributes win over these methods only while aiortc calls them via self).
    assert _params(RTCRtpSender._next_encoded_frame) == ["self", "codec"]
    assert "await self._next_encoded_frame(codec)" in _source(RTCRtpSender._run_rtp)
    assert _params(RTCRtpSender._retransmit) == ["self", "sequence_number"]
    assert "await self._retransmit(seq)" in _source(RTCRtpSender._handle_rtcp_packet)
    assert _params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    assert _params(RTCRtpSender.send) == ["self", "parameters"]
    # The counters its sender reports and getStats() read, kept by the fan-out.
    for name in ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count"):
        assert isinstance(getattr(sender, f"_RTCRtpSender__{name}"), int), name
        assert f"self.__{name}" in _source(RTCRtpSender._run_rtcp), name
    assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
    assert _params(aiortc.rtcrtpsender.random_sequence_number) == []
    assert RTP_HISTORY_SIZE == 128 and callable(is_rtx)
    assert pack_header_extensions([(1, b"0"), (3, b"\x00\x00\x01")]) == (0xBEDE, b"\x10\x30\x32\x00\x00\x01\x00\x00")
    RtpStream(sender)  # reads what it needs at construction


def test_the_transport_path_to_sendto():
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    assert transport._state == State.NEW and State.CONNECTED.name == "CONNECTED"
    assert "self._tx_srtp = Session(tx_policy)" in _source(RTCDtlsTransport._setup_srtp)
    assert "self._tx_srtp.protect(data)" in _source(RTCDtlsTransport._send_rtp)
    connection = transport.transport._connection
    assert isinstance(connection, aioice.ice.Connection) and connection._nominated == {}
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in _source(aioice.ice.Connection.sendto)
    assert "self.transport.sendto(data, addr)" in _source(aioice.ice.StunProtocol.send_data)
    assert "self.protocol = protocol" in _source(aioice.ice.CandidatePair.__init__)
    assert isinstance(aioice.ice.CandidatePair.remote_addr, property)
