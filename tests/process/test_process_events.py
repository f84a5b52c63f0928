"""Events over SSE from the real server: live delivery, filters, resume, slow clients, auth."""

from __future__ import annotations

import socket
import time

from support.processes import until, wait_for
from support.servers import LOOPBACK
from support.sse import SseClient
from support.webrtc_client import watch


def _server(icey):
    server = icey(["--demo", "--no-turn"], config=LOOPBACK)
    wait_for(lambda: all(s["state"] == "online" for s in server.status()["sources"]), 20, what="online")
    return server


async def _session(server, source_id):
    viewer = await watch(server.base, source_id, audio=False, decode=False)
    assert viewer.status == 201
    await until(lambda: [s["state"] for s in server.get(f"/api/sources/{source_id}/sessions").json()["items"]]
                == ["active"], 5, what="session active")
    await viewer.close()
    await until(lambda: server.get(f"/api/sources/{source_id}/sessions").json()["itemCount"] == 0, 5)


async def test_live_events_with_filters(icey):
    server = _server(icey)
    everything = SseClient(server.base + "/api/events")
    filtered = SseClient(server.base + "/api/events?source=demo-1&type=session")
    everything.start()
    filtered.start()
    await until(lambda: everything.status == 200 and filtered.status == 200, 5)
    await _session(server, "demo-2")
    await _session(server, "demo-1")
    got = filtered.wait_for(lambda e: e["event"] == "session.closed")
    assert {(e["data"]["sourceId"], e["event"]) for e in filtered.events} == {("demo-1", "session.opened"),
                                                                              ("demo-1", "session.closed")}
    assert got[0]["data"]["schema"] == 1 and got[0]["data"]["data"]["kind"] == "whep"
    everything.wait_for(lambda e: e["data"]["sourceId"] == "demo-1" and e["event"] == "session.closed")
    sources = {e["data"]["sourceId"] for e in everything.events}
    assert {"demo-1", "demo-2"} <= sources
    ids = [int(e["id"]) for e in everything.events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    history = server.get("/api/sources/demo-1/events?type=session").json()
    assert [i["type"] for i in history["items"]][-2:] == ["session.opened", "session.closed"]
    assert server.get("/api/events?source=nope").status == 404
    for client in (everything, filtered):
        client.close()


async def test_resume_with_last_event_id(icey):
    server = _server(icey)
    first = SseClient(server.base + "/api/events?type=session")
    first.start()
    await until(lambda: first.status == 200, 5)
    await _session(server, "demo-1")
    first.wait_for(lambda e: e["event"] == "session.closed")
    last_id = first.events[-1]["id"]
    first.close()
    await _session(server, "demo-2")  # missed while disconnected
    await _session(server, "demo-3")
    resumed = SseClient(server.base + "/api/events?type=session", headers={"Last-Event-ID": last_id})
    resumed.start()
    resumed.wait_for(lambda e: e["data"]["sourceId"] == "demo-3" and e["event"] == "session.closed")
    replayed = [(e["data"]["sourceId"], e["event"]) for e in resumed.events]
    assert replayed == [("demo-2", "session.opened"), ("demo-2", "session.closed"),
                        ("demo-3", "session.opened"), ("demo-3", "session.closed")]
    assert all(int(e["id"]) > int(last_id) for e in resumed.events)
    assert server.get("/api/events", {"Last-Event-ID": "nope"}).status == 400
    resumed.close()


async def test_a_client_that_never_reads_slows_no_one(icey):
    server = _server(icey)
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
    reader = SseClient(server.base + "/api/events?type=session")
    reader.start()
    await until(lambda: reader.status == 200, 5)
    for source_id in ("demo-1", "demo-2", "demo-3", "demo-1"):
        await _session(server, source_id)
    reader.wait_for(lambda e: len([x for x in reader.events if x["event"] == "session.closed"]) == 4)
    started = time.monotonic()
    assert server.get("/api/health").status == 200
    assert time.monotonic() - started < 1.0
    stalled.close()
    reader.close()


def test_events_need_the_token(icey):
    server = icey(["--demo", "--no-turn"], env={"ICEY_AUTH_TOKEN": "tok-1234567890abcdef"})
    assert server.get("/api/events").status == 401
    assert server.get("/api/sources/demo-1/events").status == 401
    client = SseClient(server.base + "/api/events?token=tok-1234567890abcdef")
    client.start()
    wait_for(lambda: client.status == 200, 5, what="authorized stream")
    client.close()
