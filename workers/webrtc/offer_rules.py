"""What an SDP offer may ask of this server, checked before any peer connection exists.

aiortc answers every m-line of an offer: for an m-line that *sends* to us it creates a receiver
with a decoder thread that feeds an unbounded queue. A WHEP viewer with extra sendonly video
m-lines would make the worker decode and keep every frame it sends. So an offer is refused (400)
unless it is what its role needs: at most one video and one audio m-line, each in a direction
that never makes us receive on WHEP (recvonly, or sendrecv answered as sendonly) and never makes
us send on WHIP. Refusing beats answering the extras `inactive`: a real WHEP/WHIP client never
offers them, and a clear 400 tells a buggy one what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.vocabulary import SessionKind
from workers.webrtc.session_error import SessionError

MAX_SDP_BYTES = 64 * 1024
MEDIA_KINDS = ("video", "audio")
# Directions as the offerer states them; "inactive" asks nothing of either side.
ALLOWED_DIRECTIONS: dict[SessionKind, tuple[str, ...]] = {
    "whep": ("recvonly", "sendrecv", "inactive"),
    "whip": ("sendonly", "sendrecv", "inactive"),
}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True)
class MediaLine:
    kind: str
    direction: str
    codecs: frozenset[str]  # lower-case "name/clock", e.g. "h264/90000"


def media_lines(sdp: str) -> list[MediaLine]:
    """The offer's m-lines with their direction (session-level default sendrecv, as RFC 3264)."""
    session_direction = "sendrecv"
    sections: list[tuple[str, list[str]]] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append((line[2:].split(" ", 1)[0].lower(), []))
        elif sections:
            sections[-1][1].append(line)
        elif line[2:] in _DIRECTIONS and line.startswith("a="):
            session_direction = line[2:]
    found = []
    for kind, attributes in sections:
        direction = next((a[2:] for a in attributes if a.startswith("a=") and a[2:] in _DIRECTIONS),
                         session_direction)
        codecs = frozenset(a.split(" ", 1)[1].lower() for a in attributes
                           if a.startswith("a=rtpmap:") and " " in a)
        found.append(MediaLine(kind, direction, codecs))
    return found


def check_offer(sdp: str, role: SessionKind) -> list[MediaLine]:
    """The offer's m-lines, or SessionError("bad_request") saying what is wrong with it."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise SessionError("bad_request", "SDP offer too large")
    if not sdp.lstrip().startswith("v=0") or "\nm=" not in sdp:
        raise SessionError("bad_request", "body is not an SDP offer (expected v=0 and at least one m= line)")
    lines = media_lines(sdp)
    allowed = ALLOWED_DIRECTIONS[role]
    described = ", ".join(f"{m.kind} {m.direction}" for m in lines)
    for kind in MEDIA_KINDS:
        if sum(1 for m in lines if m.kind == kind) > 1:
            raise SessionError("bad_request", f"a {role.upper()} offer may have one {kind} m-line at most "
                                f"(got: {described})")
    for line in lines:
        if line.kind not in MEDIA_KINDS:
            raise SessionError("bad_request", f"a {role.upper()} offer may only have video and audio m-lines "
                                f"(got: {described})")
        if line.direction not in allowed:
            raise SessionError("bad_request", f"a {role.upper()} offer's m-lines must be {' or '.join(allowed)} "
                                f"(got: {described})")
    video = next((m for m in lines if m.kind == "video"), None)
    if video is None or "h264/90000" not in video.codecs:
        need = "the only video codec served" if role == "whep" else "it is recorded and relayed as is"
        raise SessionError("bad_request", f"the offer's video m-line must accept H.264, {need}")
    return lines
