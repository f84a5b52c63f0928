"""What a test viewer's DTLS transport decrypts, packet by packet: the RTP the server really sent
(header fields and payload), below what aiortc's jitter buffer and decoder make of it."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aiortc import RTCPeerConnection


@dataclass(frozen=True)
class RtpSeen:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpSeen:
    first, second, sequence, timestamp, ssrc = struct.unpack_from("!BBHLL", data)
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: profile, length in 32-bit words
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data) - (data[-1] if first & 0x20 else 0)
    return RtpSeen(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, data[offset:end])


class RtpTap:
    """Install right after `watch()` returns: aiortc connects in a task that has not run yet."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.packets: list[RtpSeen] = []
        transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
        for transport in transports.values():
            original = transport._handle_rtp_data

            async def tap(data: bytes, arrival_time_ms: int, original=original) -> None:
                self.packets.append(parse_rtp(data))
                await original(data, arrival_time_ms)

            transport._handle_rtp_data = tap

    def of(self, payload_type: int) -> list[RtpSeen]:
        return [p for p in self.packets if p.payload_type == payload_type]
