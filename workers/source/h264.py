"""H.264 bitstream helpers: NAL units of an Annex B access unit, avcC parameter sets.

Used wherever a source's own H.264 is handled without decoding it: viewer packetization, the
WHIP publisher's recorder and relay, continuous recording and clips.
"""

from __future__ import annotations

from aiortc.codecs.h264 import H264Encoder

NAL_SPS, NAL_PPS, NAL_IDR, NAL_AUD = 7, 8, 5, 9


def nal_units(annexb: bytes) -> list[bytes]:
    return list(H264Encoder._split_bitstream(annexb))


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else -1


def avcc_to_annexb_parameter_sets(extradata: bytes) -> bytes:
    """SPS/PPS from an avcC record (MP4/MKV extradata) as Annex B."""
    if not extradata or extradata[0] != 1 or len(extradata) < 7:
        return extradata if extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) else b""
    out, pos = [], 5
    count = extradata[pos] & 0x1F
    pos += 1
    for _ in range(count):
        size = int.from_bytes(extradata[pos:pos + 2], "big")
        out.append(extradata[pos + 2:pos + 2 + size])
        pos += 2 + size
    count = extradata[pos]
    pos += 1
    for _ in range(count):
        size = int.from_bytes(extradata[pos:pos + 2], "big")
        out.append(extradata[pos + 2:pos + 2 + size])
        pos += 2 + size
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in out)


def is_h264_keyframe(annexb: bytes) -> bool:
    return any(nal_type(n) == NAL_IDR for n in nal_units(annexb))
