"""A transcode (decode + x264 per frame) runs only while someone watches (issue 13): with nobody
watching, the transcoded kind is skipped and the fan-out's stale GOP dropped; a viewer makes it
start afresh at the camera's next keyframe, with an IDR that decodes on its own. Real PyAV."""

from __future__ import annotations

import av
from aiortc.codecs.h264 import H264PayloadDescriptor
from support.media import make_b_frame_file

from protocol.config import VideoConfig
from workers.source.taps import SourceStreams
from workers.webrtc.delivery import Delivery
from workers.webrtc.media_unit import MediaUnit


def test_a_transcode_runs_only_while_watched_and_resumes_at_a_keyframe(tmp_path):
    path = make_b_frame_file(tmp_path / "bframes.ts", frames=60, gop=10)
    units: list[MediaUnit] = []
    dropped = []
    watching = False
    delivery = Delivery(units.append, VideoConfig(), lambda: watching, lambda: dropped.append(True))
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        delivery.on_open(SourceStreams(video, None, video.codec_context, None))
        assert delivery.video_mode == "transcode"
        packets = [p for p in container.demux(video) if p.pts is not None]
        keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
        resume_at = next(i for i in keyframes if i > 12) - 3  # a viewer arrives 3 packets before a keyframe
        for i, packet in enumerate(packets):
            watching = i >= resume_at
            delivery.on_packet("video", packet, float(packet.pts * packet.time_base))
            if i == resume_at - 1:
                assert units == [] and dropped == [True]  # nothing encoded for nobody; the GOP dropped once
    assert units, "nothing encoded once a viewer watched"
    assert units[0].keyframe
    # What a viewer's browser gets: the RTP payloads, depacketized as aiortc's receiver does.
    decoder = av.CodecContext.create("h264", "r")
    first = b"".join(H264PayloadDescriptor.parse(payload)[1] for payload in units[0].payloads)
    packets = decoder.parse(first) + decoder.parse(None)  # None: the parser's last NAL too
    pictures = [frame for packet in [*packets, None] for frame in decoder.decode(packet)]
    assert pictures and (pictures[0].width, pictures[0].height) == (320, 180)  # the IDR decodes on its own
