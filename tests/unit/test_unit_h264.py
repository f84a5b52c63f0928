"""The H.264 helpers on the bitstreams sources really send: empty NALs, cut avcC records, samples
whose NAL lengths lie. Parameter sets are real libx264 output."""

from __future__ import annotations

import pytest
from support.media import h264_access_units

from workers.source.h264 import (
    START_CODE,
    MalformedUnit,
    avcc_length_size,
    avcc_to_annexb_parameter_sets,
    length_prefixed_to_annexb,
    nal_type,
    nal_units,
)
from workers.webrtc.media_unit import h264_unit


@pytest.fixture(scope="module")
def keyframe() -> bytes:
    return bytes(h264_access_units(0.2, 15, (160, 90))[0])


def _avcc(sps: bytes, pps: bytes) -> bytes:
    return (bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps + b"\x01"
            + len(pps).to_bytes(2, "big") + pps)


def test_empty_nals_are_skipped_and_the_unit_still_packetizes(keyframe):
    doubled = START_CODE + keyframe  # two start codes in a row, as some MPEG-TS carry
    assert [nal_type(n) for n in nal_units(doubled)] == [nal_type(n) for n in nal_units(keyframe)]
    unit = h264_unit(doubled, 9000, False, b"")
    assert unit.keyframe  # an IDR is a keyframe even when the demuxer did not say so
    assert unit.payloads == h264_unit(keyframe, 9000, True, b"").payloads


def test_a_unit_of_start_codes_only_is_malformed():
    with pytest.raises(MalformedUnit):
        h264_unit(START_CODE * 3, 0, False, b"")


def test_a_cut_avcc_record_gives_the_sets_that_are_whole(keyframe):
    sps, pps = (n for n in nal_units(keyframe) if nal_type(n) in (7, 8))
    record = _avcc(sps, pps)
    whole = avcc_to_annexb_parameter_sets(record)
    assert whole == START_CODE + sps + START_CODE + pps
    sps_end = 6 + 2 + len(sps)
    for cut in range(len(record)):
        got = avcc_to_annexb_parameter_sets(record[:cut])  # never raises
        assert got == (START_CODE + sps if cut >= sps_end else b""), cut
    assert avcc_length_size(record) == 4 and avcc_length_size(record[:4]) == 4


def test_length_prefixed_samples(keyframe):
    nals = nal_units(keyframe)
    sample = b"".join(len(n).to_bytes(4, "big") + n for n in nals)
    assert length_prefixed_to_annexb(sample) == b"".join(START_CODE + n for n in nals)
    two_byte = b"".join(len(n).to_bytes(2, "big") + n for n in nals)
    assert length_prefixed_to_annexb(two_byte, 2) == b"".join(START_CODE + n for n in nals)
    for broken in ((len(sample) + 1).to_bytes(4, "big") + sample[4:],  # a length past the end
                   sample + b"\x00\x00",  # a length prefix cut short
                   b"\x00\x00\x00\x00",  # nothing in it
                   b""):
        with pytest.raises(MalformedUnit):
            length_prefixed_to_annexb(broken)
