"""What a source delivers to its viewers: one access unit, RTP-packetized once for all of them.

The unit is made on the reader thread with what the fan-out needs to keep it (its kind, timestamp,
whether it starts a GOP, its size); its RTP payloads are made on first use, on the event loop, by
the first viewer it is sent to, and shared by the others (rtp_fanout.py adds each viewer's header
and SRTP). A camera nobody watches therefore never packetizes: its current GOP waits as NAL units.
"""

from __future__ import annotations

from aiortc.codecs.h264 import H264Encoder

from workers.source.h264 import NAL_AUD, NAL_IDR, NAL_SPS, MalformedUnit, nal_type, nal_units

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000  # Opus RTP clock, whatever the sample rate


class MediaUnit:
    __slots__ = ("kind", "timestamp", "keyframe", "size", "_nals", "_payloads")

    def __init__(self, kind: str, timestamp: int, keyframe: bool, size: int, *,
                 nals: list[bytes] | None = None, payloads: tuple[bytes, ...] | None = None) -> None:
        self.kind = kind  # video | audio
        self.timestamp = timestamp  # in the RTP clock of its kind, continuous over loops and reconnects
        self.keyframe = keyframe
        self.size = size
        self._nals = nals
        self._payloads = payloads

    @property
    def payloads(self) -> tuple[bytes, ...]:
        """Packetized on first use (the event loop only, so no lock); the NAL list is let go then."""
        if self._payloads is None:
            self._payloads = tuple(H264Encoder._packetize(self._nals or ()))
            self._nals = None
        return self._payloads


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
    return MediaUnit("video", timestamp, keyframe, sum(len(n) for n in nals), nals=nals)


def opus_unit(data: bytes, timestamp: int) -> MediaUnit:
    return MediaUnit("audio", timestamp, False, len(data), payloads=(data,))
