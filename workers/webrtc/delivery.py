"""Turns the source's packets into MediaUnits for viewers: passthrough where the browser can take
the source as is (Annex B conversion and in-band parameter sets only), else one shared
transcode. A reader tap, on the reader thread, so packetizing happens once per source whatever
the number of viewers. A unit it cannot read raises (MalformedUnit): the reader drops and counts it.

MP4/MKV samples are converted to Annex B here rather than by FFmpeg's h264_mp4toannexb filter,
which refuses to start on an avcC record cut short even when the samples are fine."""

from __future__ import annotations

from collections.abc import Callable

import av

from protocol.config import VideoConfig
from protocol.vocabulary import DeliveryMode
from workers.source.h264 import avcc_length_size, avcc_to_annexb_parameter_sets, length_prefixed_to_annexb
from workers.source.taps import SourceStreams
from workers.source.transcode import AudioTranscoder, VideoTranscoder, needs_video_transcode
from workers.webrtc.media_unit import AUDIO_CLOCK, VIDEO_CLOCK, MediaUnit, h264_unit, opus_unit


class Delivery:
    """`watched()` says whether anyone watches (or is negotiating): a transcode runs only then. It
    is the costliest thing a camera does (a decode and an x264 encode per frame), so with nobody
    watching it pauses, the fan-out's cached GOP (now stale) is dropped through `drop_cached`, and
    the next viewer makes it start afresh: video at the camera's next keyframe, with a new encoder
    whose first frame is an IDR."""

    def __init__(self, sink: Callable[[MediaUnit], None], video_cfg: VideoConfig,
                 watched: Callable[[], bool] = lambda: True, drop_cached: Callable[[], None] = lambda: None) -> None:
        self.sink = sink
        self.video_cfg = video_cfg
        self.watched = watched
        self.drop_cached = drop_cached
        self.video_mode: DeliveryMode | None = None  # while the source is open
        self.audio_mode: DeliveryMode | None = None
        self._length_size: int | None = None  # avcC samples: bytes of each NAL's length prefix
        self._vtx: VideoTranscoder | None = None
        self._atx: AudioTranscoder | None = None
        self._paused: set[str] = set()  # the kinds whose transcoder waits for a viewer
        self._streams: SourceStreams | None = None
        self._parameter_sets = b""

    def on_open(self, streams: SourceStreams) -> None:
        self._length_size = self._vtx = self._atx = None
        self._paused = set()
        self._streams = streams
        self._parameter_sets = b""
        self.video_mode = "passthrough" if streams.video_codec is not None else None
        self.audio_mode = "passthrough" if streams.audio_codec is not None else None
        if streams.encoded_here:
            return
        video, audio = streams.video_stream, streams.audio_stream
        if video is not None:
            if needs_video_transcode(video):
                self.video_mode, self._vtx = "transcode", VideoTranscoder(video, self.video_cfg)
            else:
                extradata = video.codec_context.extradata or b""
                self._parameter_sets = avcc_to_annexb_parameter_sets(extradata)
                if extradata[:1] == b"\x01":  # avcC (MP4/MKV): length-prefixed NALs, browsers need Annex B
                    self._length_size = avcc_length_size(extradata)
        if audio is not None and audio.codec_context.name != "opus":
            self.audio_mode, self._atx = "transcode", AudioTranscoder(audio)

    def on_close(self, reason: str) -> None:
        self.video_mode = self.audio_mode = None

    def on_packet(self, kind: str, packet: av.Packet, seconds: float) -> None:
        """`seconds - raw` maps the source's timestamps onto the continuous timeline; a
        transcoder's output keeps the input's clock, so the same offset applies to it."""
        if packet.pts is None or packet.time_base is None:
            return  # the reader passes only stamped packets
        raw = float(packet.pts * packet.time_base)
        if kind == "video":
            self._video(packet, seconds - raw, seconds)
        else:
            self._audio(packet, seconds - raw, raw)

    def _idle(self, kind: str, keyframe: bool) -> bool:
        """Whether this packet of a transcoded kind is skipped: nobody watches, or video resuming
        waits for a keyframe (a fresh decoder starts there)."""
        if not self.watched():
            if kind not in self._paused:
                self._paused.add(kind)
                if kind == "video":
                    self.drop_cached()
            return True
        if kind not in self._paused:
            return False
        if kind == "video" and not keyframe:
            return True
        self._paused.discard(kind)
        streams = self._streams
        assert streams is not None  # set by on_open, which made the transcoder being resumed
        if kind == "video" and streams.video_stream is not None:
            self._vtx = VideoTranscoder(streams.video_stream, self.video_cfg)
        elif kind == "audio" and streams.audio_stream is not None:
            self._atx = AudioTranscoder(streams.audio_stream)
        return False

    def _video(self, pkt: av.Packet, offset: float, now: float) -> None:
        if self._vtx is not None:
            if self._idle("video", pkt.is_keyframe):
                return
            for data, seconds, key in self._vtx.encode(pkt):
                self.sink(h264_unit(data, round((seconds + offset) * VIDEO_CLOCK), key, b""))
            return
        data = bytes(pkt)
        if self._length_size is not None:
            data = length_prefixed_to_annexb(data, self._length_size)
        self.sink(h264_unit(data, round(now * VIDEO_CLOCK), pkt.is_keyframe, self._parameter_sets))

    def _audio(self, pkt: av.Packet, offset: float, now: float) -> None:
        if self._atx is not None:
            if self._idle("audio", True):
                return
            for data, seconds in self._atx.encode(pkt):
                if abs(seconds - now) < 1.0:  # else it is the encoder's tail from before a loop/reconnect
                    self.sink(opus_unit(data, round((seconds + offset) * AUDIO_CLOCK)))
            return
        self.sink(opus_unit(bytes(pkt), round((now + offset) * AUDIO_CLOCK)))
