"""WebRTC peers of one source: viewer delivery and fan-out, WHEP/WHIP sessions, the WHIP publisher's media."""
