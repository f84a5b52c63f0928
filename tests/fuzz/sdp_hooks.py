"""schemathesis hooks for the fuzz run: how to make an `application/sdp` body. Offers that look
like a browser's, with lines dropped, repeated, swapped or garbled, plus any text and any bytes,
so the fuzzer reaches the worker's SDP handling and not only the API's checks."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

OFFER_LINES = (
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "a=msid-semantic: WMS", "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0", "a=recvonly", "a=rtcp-mux",
    "a=rtpmap:96 H264/90000", "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0",
    "a=mid:1", "a=recvonly", "a=rtpmap:111 opus/48000/2", "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
)


@st.composite
def mangled_offer(draw: st.DrawFn) -> bytes:
    lines = list(OFFER_LINES)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "repeat", "garble", "swap"]))
        if action == "drop" and len(lines) > 1:
            lines.pop(i)
        elif action == "repeat":
            lines.insert(i, lines[i])
        elif action == "garble":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))] + draw(st.text(max_size=20))
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogatepass")


schemathesis.openapi.media_type("application/sdp", st.one_of(
    mangled_offer(), st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=500)))
