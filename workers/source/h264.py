"""H.264 bitstream helpers: NAL units of an Annex B access unit, avcC parameter sets, MP4/MKV
length-prefixed samples as Annex B.

Used wherever a source's own H.264 is handled without decoding it: viewer packetization, the
WHIP publisher's recorder and relay, continuous recording and clips. Sources get bitstreams
wrong (two start codes in a row, a cut avcC record): these helpers never index past what is
there; a unit with nothing usable in it raises MalformedUnit, which callers drop and count.
"""

from __future__ import annotations

from aiortc.codecs.h264 import H264Encoder

NAL_SPS, NAL_PPS, NAL_IDR, NAL_AUD = 7, 8, 5, 9
START_CODE = b"\x00\x00\x00\x01"


class MalformedUnit(ValueError):
    """An access unit whose framing cannot be read: drop it, keep the stream."""


def nal_units(annexb: bytes) -> list[bytes]:
    """The non-empty NAL units (two start codes in a row make an empty one, which nothing can send)."""
    return [nal for nal in H264Encoder._split_bitstream(annexb) if nal]


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else -1


def _parameter_set_list(record: bytes, pos: int, count: int, out: list[bytes]) -> int | None:
    """Appends up to `count` length-prefixed NALs from `record[pos:]`; the position after them,
    or None where the record ends before a declared set does."""
    for _ in range(count):
        if pos + 2 > len(record):
            return None
        size = int.from_bytes(record[pos:pos + 2], "big")
        if size == 0 or pos + 2 + size > len(record):
            return None
        out.append(record[pos + 2:pos + 2 + size])
        pos += 2 + size
    return pos


def avcc_to_annexb_parameter_sets(extradata: bytes) -> bytes:
    """SPS/PPS from an avcC record (MP4/MKV extradata) as Annex B; a record cut short gives the
    sets that are whole in it (the stream may carry its own in band)."""
    if not extradata or extradata[0] != 1:
        return extradata if extradata.startswith((b"\x00\x00\x01", START_CODE)) else b""
    out: list[bytes] = []
    if len(extradata) > 5:
        pos = _parameter_set_list(extradata, 6, extradata[5] & 0x1F, out)
        if pos is not None and pos < len(extradata):
            _parameter_set_list(extradata, pos + 1, extradata[pos], out)
    return b"".join(START_CODE + nal for nal in out)


def avcc_length_size(extradata: bytes) -> int:
    """Bytes of each NAL's length prefix in the samples (lengthSizeMinusOne + 1; 4 if unreadable)."""
    return (extradata[4] & 0x03) + 1 if len(extradata) > 4 and extradata[0] == 1 else 4


def length_prefixed_to_annexb(sample: bytes, length_size: int = 4) -> bytes:
    """An MP4/MKV sample (NALs each preceded by its length) as Annex B. A length that runs past
    the sample means the framing is broken: the whole unit is refused rather than half-sent."""
    out, pos = [], 0
    while pos < len(sample):
        if pos + length_size > len(sample):
            raise MalformedUnit(f"truncated NAL length at byte {pos} of {len(sample)}")
        size = int.from_bytes(sample[pos:pos + length_size], "big")
        pos += length_size
        if pos + size > len(sample):
            raise MalformedUnit(f"NAL of {size} bytes at byte {pos} runs past the {len(sample)}-byte sample")
        if size:
            out.append(START_CODE + sample[pos:pos + size])
        pos += size
    if not out:
        raise MalformedUnit("sample holds no NAL unit")
    return b"".join(out)


def is_h264_keyframe(annexb: bytes) -> bool:
    return any(nal_type(n) == NAL_IDR for n in nal_units(annexb))
