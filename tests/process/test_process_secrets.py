"""Camera passwords never leak: generated passwords (the whole printable range) in every URL
shape cameras use, against a real server with a real RTSP camera. Nothing the server shows, logs
or names may contain one: /api/status, /api/sources, /probe, SSE events, the log, file names."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.processes import RtspCamera, free_port, wait_for
from support.sse import SseClient

PASSWORD = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=20)


def _texts(server, ids: list[str], sse: SseClient) -> dict[str, str]:
    texts = {"status": server.get("/api/status").body.decode(), "sources": server.get("/api/sources").body.decode()}
    for sid in ids:
        texts[f"probe:{sid}"] = server.get(f"/api/sources/{sid}/probe").body.decode()
        texts[f"events:{sid}"] = server.get(f"/api/sources/{sid}/events").body.decode()
    texts["sse"] = repr(sse.events)
    texts["log"] = server.stderr() + server.stdout()
    texts["files"] = "\n".join(str(Path(d, f)) for d, _, files in os.walk(server.workdir) for f in files)
    return texts


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=PASSWORD)
def test_generated_camera_passwords_appear_nowhere(icey, password):
    encoded = quote(password, safe="")
    plain = password.replace("_", "-")  # `_` separates XMEye path fields
    closed = free_port()
    camera = RtspCamera().start()
    try:
        sources = [
            {"id": "live", "source": f"rtsp://admin:{encoded}@127.0.0.1:{camera.port}/cam"},
            {"id": "raw", "source": f"rtsp://admin:{password}@127.0.0.1:{closed}/stream1"},
            {"id": "query", "source": f"rtsp://127.0.0.1:{closed}/live?user=admin&password={encoded}&channel=1"},
            {"id": "xmeye", "source": f"rtsp://127.0.0.1:{closed}/user=admin_password={quote(plain, safe='')}"
                                      f"_channel=1_stream=0.sdp"},
        ]
        config = {"sources": sources, "media": {"record": {"enabled": True, "segmentSeconds": 2}},
                  "supervisor": {"heartbeatMs": 300}}
        server = icey(["--no-turn"], config=config)
        ids = [s["id"] for s in sources]
        server.wait_source("live", lambda s: s["state"] == "online", timeout=30)
        for sid in ids[1:]:
            server.wait_source(sid, lambda s: s["lastError"] is not None, timeout=20)
        sse = SseClient(server.base + "/api/events")
        sse.start()
        time.sleep(0.5)
        camera.stop()  # the live source drops: source.offline carries its error
        server.wait_source("live", lambda s: s["state"] != "online" and s["lastError"], timeout=20)
        wait_for(lambda: any(e.get("event") == "source.offline" for e in sse.events), 10, what="source.offline")
        texts = _texts(server, ids, sse)
        assert "127.0.0.1" in texts["status"]  # the sources are shown, only without their secrets
        forbidden = {password, encoded, plain, quote(plain, safe="")}
        for where, text in texts.items():
            for secret in forbidden:
                assert secret not in text, f"{secret!r} leaked in {where}"
    finally:
        camera.stop()
