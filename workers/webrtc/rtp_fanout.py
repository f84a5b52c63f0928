"""A viewer's RTP, sent by the fan-out's pass instead of by aiortc's per-sender `_run_rtp`.

ALL of this project's use of aiortc (and aioice) below their public API is in this module.
Written for aiortc 1.16.0 / aioice 0.13.0 / pylibsrtp 1.0.0; tests/unit/test_unit_rtp_fanout_aiortc.py
fails when one of the private names used here changes. Why: with aiortc, every viewer's sender runs
its own coroutine that wakes per frame, builds an RtpPacket object per packet, serializes it and
awaits four coroutines down to `sendto`. Here the fan-out calls `send_frame` for every viewer in
one pass: per packet an RTP header from struct.pack, SRTP protect (C) and a datagram sendto.

What aiortc still does per viewer, unchanged: RTCP (its `_run_rtcp` sends sender reports from the
counters kept here as aiortc keeps them; receiver reports, PLI and REMB are handled by its
`_handle_rtcp_packet`). NACKs reach `retransmit` (replacing `_retransmit`), which resends from
this stream's history of the last RTP_HISTORY_SIZE packets, wrapped as RTX when negotiated.
aiortc's `_run_rtp` is parked on `_next_encoded_frame` until the track ends, so `stop()` and
the track's end work as aiortc expects.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, pack_header_extensions
from aiortc.utils import random32

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
NTP_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
_HEAD = struct.Struct("!BBH")  # V/P/X/CC, M/PT, sequence number
_TAIL = struct.Struct("!LL")  # timestamp, SSRC


def _ntp_now() -> int:
    """64-bit NTP time, as aiortc's clock.current_ntp_time() but without a datetime per call."""
    return int((time.time() + NTP_OFFSET) * 4294967296.0)


class RtpStream:
    """One sender's RTP state: SSRC, sequence, timestamp origin, header extensions, history."""

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.sequence = random_sequence_number()
        self.rtx_sequence = random_sequence_number()
        self.timestamp_origin = random32()
        self.payload_type = 0
        self.rtx_payload_type: int | None = None
        self.started = False
        # By seq % size, each packet's (sequence, header, payload): the payload is the one shared by
        # every viewer, so a viewer's history costs its headers only.
        self.history: list[tuple[int, bytes, bytes] | None] = [None] * RTP_HISTORY_SIZE
        self._ext_head = self._ext_tail = b""  # header extension block around abs-send-time's 3 bytes
        self._abs_send_time = False
        self._first_byte = 0x80  # version 2, no padding, no CSRC; X set once extensions are known

    def configure(self, parameters: RTCRtpSendParameters) -> None:
        """What aiortc's send() learns from the negotiated parameters, read the same way."""
        codec = parameters.codecs[0]
        assert codec.payloadType is not None  # aiortc assigns one to every negotiated codec
        self.payload_type = codec.payloadType
        for other in parameters.codecs:
            if is_rtx(other) and other.parameters.get("apt") == codec.payloadType:
                self.rtx_payload_type = other.payloadType
                break
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        extensions: list[tuple[int, bytes]] = []
        if parameters.muxId and ids.get(MID_URI):
            extensions.append((ids[MID_URI], parameters.muxId.encode("utf8")))
        if ids.get(ABS_SEND_TIME_URI):
            extensions.append((ids[ABS_SEND_TIME_URI], b"\xa5\xa5\xa5"))  # a marker, replaced per frame
            self._abs_send_time = True
        if extensions:
            profile, value = pack_header_extensions(extensions)
            block = struct.pack("!HH", profile, len(value) >> 2) + value
            if self._abs_send_time:
                at = block.rindex(b"\xa5\xa5\xa5")
                self._ext_head, self._ext_tail = block[:at], block[at + 3:]
            else:
                self._ext_head = block
            self._first_byte = 0x90
        self.started = True

    def _route(self) -> tuple[Any, Callable[[bytes, Any], None], Any] | None:
        """The sender's SRTP session and the nominated ICE pair's sendto, or None when not connected."""
        dtls: RTCDtlsTransport = self.sender.transport
        if dtls._state != DtlsState.CONNECTED:
            return None
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return None
        return dtls._tx_srtp.protect, pair.protocol.transport.sendto, pair.remote_addr

    def send_frame(self, payloads: tuple[bytes, ...], timestamp: int) -> bool:
        """Sends one access unit (the marker on its last packet, as aiortc does); False when the
        transport is not connected (nothing sent, nothing counted)."""
        route = self._route()
        if route is None:
            return False
        protect, sendto, addr = route
        ntp = _ntp_now()
        rtp_timestamp = (self.timestamp_origin + timestamp) & 0xFFFFFFFF
        if self._abs_send_time:
            ext = self._ext_head + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + self._ext_tail
        else:
            ext = self._ext_head
        tail = _TAIL.pack(rtp_timestamp, self.ssrc) + ext
        first, pt, seq, history = self._first_byte, self.payload_type, self.sequence, self.history
        last = len(payloads) - 1
        octets = 0
        for i, payload in enumerate(payloads):
            header = _HEAD.pack(first, pt | 0x80 if i == last else pt, seq) + tail
            history[seq % RTP_HISTORY_SIZE] = (seq, header, payload)
            sendto(protect(header + payload), addr)
            octets += len(payload)
            seq = (seq + 1) & 0xFFFF
        self.sequence = seq
        self._count(len(payloads), octets, ntp, rtp_timestamp)
        return True

    def _count(self, packets: int, octets: int, ntp: int, rtp_timestamp: int) -> None:
        """The counters aiortc's sender reports (SR) and getStats() read, kept as its _run_rtp keeps them."""
        sender = self.sender
        sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count += octets  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += packets  # type: ignore[attr-defined]

    async def retransmit(self, sequence_number: int) -> None:
        """A NACKed packet again, from the history; as RTX (its own SSRC and sequence, the
        original sequence number first in the payload) when the viewer negotiated it."""
        kept = self.history[sequence_number % RTP_HISTORY_SIZE]
        if kept is None or kept[0] != sequence_number:
            return
        route = self._route()
        if route is None:
            return
        protect, sendto, addr = route
        _, header, payload = kept
        if self.rtx_payload_type is None:
            packet = header + payload
        else:
            packet = b"".join((
                _HEAD.pack(header[0], (header[1] & 0x80) | self.rtx_payload_type, self.rtx_sequence),
                header[4:8], self.rtx_ssrc.to_bytes(4, "big"), header[12:], header[2:4], payload))
            self.rtx_sequence = (self.rtx_sequence + 1) & 0xFFFF
        sendto(protect(packet), addr)


def attach(sender: RTCRtpSender, track: MediaStreamTrack, on_start: Callable[[RtpStream], None],
           on_heard: Callable[[], None]) -> RtpStream:
    """Takes over `sender`'s RTP: `on_start` runs once aiortc's send() has the negotiated
    parameters (DTLS is up); `on_heard` on every RTCP packet from the viewer (its receiver
    reports are how we know it is still there: aiortc has no ICE `disconnected` state)."""
    stream = RtpStream(sender)
    ended = asyncio.Event()
    track.on("ended", ended.set)
    send = sender.send
    handle_rtcp = sender._handle_rtcp_packet

    async def send_and_start(parameters: RTCRtpSendParameters) -> None:
        await send(parameters)
        if not stream.started:
            stream.configure(parameters)
            on_start(stream)

    async def parked(codec) -> None:
        """aiortc's _run_rtp waits here until the track ends, then exits as aiortc's own would."""
        await ended.wait()
        raise MediaStreamError

    async def heard(packet) -> None:
        on_heard()
        await handle_rtcp(packet)

    sender.send = send_and_start  # type: ignore[method-assign]
    sender._next_encoded_frame = parked  # type: ignore[method-assign]
    sender._handle_rtcp_packet = heard  # type: ignore[method-assign]
    sender._retransmit = stream.retransmit  # type: ignore[method-assign]
    return stream
