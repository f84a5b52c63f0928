"""What a source delivers to its viewers: one access unit, already RTP-packetized.

Packetizing happens once per source, in the reader thread, so each viewer's sender only adds
its RTP header and SRTP (see viewer_track.py for how that bypasses aiortc's per-sender pack).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.codecs.h264 import H264Encoder

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000  # Opus RTP clock, whatever the sample rate
NAL_SPS, NAL_PPS, NAL_IDR, NAL_AUD = 7, 8, 5, 9


@dataclass(frozen=True, slots=True)
class MediaUnit:
    kind: str  # video | audio
    timestamp: int  # in the RTP clock of its kind, continuous over loops and reconnects
    keyframe: bool
    payloads: tuple[bytes, ...]
    size: int


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


def h264_unit(annexb: bytes, timestamp: int, keyframe: bool, parameter_sets: bytes) -> MediaUnit:
    """Parameter sets go in band before every keyframe that lacks them, so any viewer can
    start decoding at any keyframe; access unit delimiters are dropped (browsers don't need them)."""
    nals = [n for n in nal_units(annexb) if nal_type(n) != NAL_AUD]
    if keyframe and parameter_sets and not any(nal_type(n) == NAL_SPS for n in nals):
        nals = nal_units(parameter_sets) + nals
    payloads = tuple(H264Encoder._packetize(nals))
    return MediaUnit("video", timestamp, keyframe, payloads, sum(len(n) for n in nals))


def opus_unit(data: bytes, timestamp: int) -> MediaUnit:
    return MediaUnit("audio", timestamp, False, (data,), len(data))


class Timeline:
    """Maps source timestamps (seconds) onto one continuous output timeline: a file that loops,
    a camera that reconnects, or a stream whose clock jumps (a shared RTSP mount re-bases each
    stream, one after the other, when a second client joins) keeps the RTP timestamps increasing.

    An epoch (open, loop, reconnect) gives every stream the same offset, which keeps the source's
    own audio/video alignment. A jump of one stream's clock re-bases only that stream, right
    after its own last timestamp, so the stream that has not jumped yet is left alone."""

    GAP_SEC = 1 / 30
    # Within one stream, a step back larger than this is a jump (B-frame reordering never comes
    # close). Across streams it is only interleaving (a file may store seconds of video ahead of
    # its audio), so each stream is judged against itself.
    MAX_STEP_BACK_SEC = 1.0

    def __init__(self) -> None:
        self._epoch_offset: float | None = None
        self._offsets: dict[str, float] = {}
        self._last = 0.0
        self._last_of: dict[str, float] = {}
        self._step_of: dict[str, float] = {}  # a stream's last frame interval: the gap to leave at a seam
        self._jumped: set[str] = set()

    def new_epoch(self) -> None:
        self._epoch_offset = None
        self._offsets.clear()
        self._jumped.clear()

    def jumped(self, kind: str) -> None:
        """The reader saw this stream's clock leap ahead of real time: re-base its next packet."""
        self._jumped.add(kind)

    def map(self, seconds: float, kind: str = "video") -> float:
        offset = self._offsets.get(kind)
        last = self._last_of.get(kind)
        step = self._step_of.get(kind, self.GAP_SEC)
        if offset is not None and last is not None and (
                kind in self._jumped or seconds + offset < last - self.MAX_STEP_BACK_SEC):
            offset = self._offsets[kind] = last + step - seconds
            self._jumped.discard(kind)
        if offset is None:
            if self._epoch_offset is None:
                self._epoch_offset = self._last + step - seconds if self._last else -seconds
            offset = self._offsets[kind] = self._epoch_offset
        out = seconds + offset
        if last is not None and 0 < out - last < 1.0:
            self._step_of[kind] = out - last
        self._last = max(self._last, out)
        self._last_of[kind] = max(self._last_of.get(kind, out), out)
        return out
