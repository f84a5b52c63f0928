"""What a source delivers to its viewers: one access unit, already RTP-packetized.

Packetizing happens once per source, in the reader thread, so each viewer's sender only adds
its RTP header and SRTP (see viewer_track.py for how that bypasses aiortc's per-sender pack).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.codecs.h264 import H264Encoder

from workers.source.h264 import NAL_AUD, NAL_IDR, NAL_SPS, MalformedUnit, nal_type, nal_units

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000  # Opus RTP clock, whatever the sample rate


@dataclass(frozen=True, slots=True)
class MediaUnit:
    kind: str  # video | audio
    timestamp: int  # in the RTP clock of its kind, continuous over loops and reconnects
    keyframe: bool
    payloads: tuple[bytes, ...]
    size: int


def h264_unit(annexb: bytes, timestamp: int, keyframe: bool, parameter_sets: bytes) -> MediaUnit:
    """Parameter sets go in band before every keyframe that lacks them, so any viewer can
    start decoding at any keyframe; access unit delimiters are dropped (browsers don't need them).
    An IDR is a keyframe whatever the demuxer said (FFmpeg flags none when a file's avcC record
    is broken). A unit with nothing left to send raises MalformedUnit."""
    nals = [n for n in nal_units(annexb) if nal_type(n) != NAL_AUD]
    if not nals:
        raise MalformedUnit("access unit holds no NAL unit to send")
    keyframe = keyframe or any(nal_type(n) == NAL_IDR for n in nals)
    if keyframe and parameter_sets and not any(nal_type(n) == NAL_SPS for n in nals):
        nals = nal_units(parameter_sets) + nals
    payloads = tuple(H264Encoder._packetize(nals))
    return MediaUnit("video", timestamp, keyframe, payloads, sum(len(n) for n in nals))


def opus_unit(data: bytes, timestamp: int) -> MediaUnit:
    return MediaUnit("audio", timestamp, False, (data,), len(data))
