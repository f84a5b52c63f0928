"""The re-encode baseline server (the driver runs it with the hidden `--serve-reencode <port> <file>`): a small
aiortc WHEP server as a naive one is written, `MediaPlayer(decode=True)` + `MediaRelay`, so every viewer's
sender runs its own libx264 encoder.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import aioice.ice
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRelay
from measure import HOST


def serve_reencode(port: int, path: str) -> None:
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: [HOST]
    relay = MediaRelay()
    player = MediaPlayer(path, decode=True, loop=True)  # decodes once; its thread starts with the 1st viewer
    pcs: dict[str, RTCPeerConnection] = {}

    async def whep(request: web.Request) -> web.Response:
        offer = await request.text()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        key = f"{random.getrandbits(32):08x}"
        pcs[key] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                pcs.pop(key, None)
                await pc.close()

        # one RTCRtpSender per viewer, each with its own H264Encoder (libx264): the per-viewer re-encode
        t = pc.addTransceiver(relay.subscribe(player.video, buffered=False), direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        t.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"]
                              + [c for c in codecs if c.mimeType == "video/rtx"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": f"/whep/{key}"})

    async def delete(request: web.Request) -> web.Response:
        pc = pcs.pop(request.match_info["key"], None)
        if pc is not None:
            await pc.close()
        return web.json_response({"status": "ok"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"pcs": len(pcs), "pid": os.getpid()})

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.post("/whep", whep), web.delete("/whep/{key}", delete), web.get("/stats", stats)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await asyncio.gather(*(pc.close() for pc in list(pcs.values())), return_exceptions=True)
        if player.video is not None:
            player.video.stop()
        await runner.cleanup()

    asyncio.run(main())
