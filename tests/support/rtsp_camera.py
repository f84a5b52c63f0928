#!/usr/bin/python3
"""A real RTSP camera stand-in: GStreamer's RTSP server (Debian's python3-gi, so it runs under
/usr/bin/python3, not the venv). H.264 baseline with SPS/PPS in band, optional Opus or AAC.

usage: rtsp_camera.py --port N [--path /cam] [--audio opus|aac|none] [--width W --height H --fps F --kbps K]
Prints "READY rtsp://127.0.0.1:N/path" when serving; stops on SIGTERM.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def pipeline(a: argparse.Namespace) -> str:
    launch = (
        f"( videotestsrc is-live=true pattern={a.pattern} ! "
        f"video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={a.kbps} key-int-max={a.gop} ! "
        "video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 "
    )
    if a.audio == "opus":
        launch += ("audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! opusenc ! "
                   "rtpopuspay name=pay1 pt=97 ")
    elif a.audio == "aac":
        launch += ("audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! avenc_aac ! "
                   "rtpmp4gpay name=pay1 pt=97 ")
    return launch + ")"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", required=True)
    p.add_argument("--path", default="/cam")
    p.add_argument("--audio", default="opus", choices=["opus", "aac", "none"])
    p.add_argument("--pattern", default="ball")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--gop", type=int, default=15)
    p.add_argument("--kbps", type=int, default=300)
    a = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(a))
    factory.set_shared(True)  # one encoder for every client, like a camera
    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        print("attach failed (port in use?)", file=sys.stderr, flush=True)
        sys.exit(2)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{a.port}{a.path}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
