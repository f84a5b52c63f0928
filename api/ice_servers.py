"""The ICE servers handed to browsers, one definition for `/api/config` and for the WHEP/WHIP
`Link` headers: the configured STUN servers, and the TURN relay with fresh credentials only
while the supervisor reports it running (never credentials for a relay that is not there)."""

from __future__ import annotations

from quart import request

from api.documents import Documents
from api.turn_credentials import mint
from protocol.config import WILDCARD_HOSTS, Settings


def public_host(settings: Settings) -> str:
    """What a browser can reach: externalIp, else the bind host, else the host it used for us."""
    if settings.turn.external_ip:
        return settings.turn.external_ip
    if settings.http.host not in WILDCARD_HOSTS:
        return settings.http.host
    return request.host.rsplit(":", 1)[0].strip("[]") if request.host else "127.0.0.1"


def relay_credentials(settings: Settings, docs: Documents) -> tuple[str, str] | None:
    """Fresh TURN credentials while coturn runs, else None."""
    if settings.turn.active and docs.turn_running():
        return mint(settings.turn)
    return None


def ice_servers(settings: Settings, credentials: tuple[str, str] | None) -> list[dict]:
    servers: list[dict] = []
    if settings.stun.urls:
        servers.append({"urls": list(settings.stun.urls)})
    if credentials is not None:
        host, port = public_host(settings), settings.turn.port
        servers.append({"urls": [f"turn:{host}:{port}?transport=udp", f"turn:{host}:{port}?transport=tcp"],
                        "username": credentials[0], "credential": credentials[1]})
    return servers


def link_headers(settings: Settings, docs: Documents) -> list[str]:
    """RFC 9725 section 4.6: the same servers as `Link: <url>; rel="ice-server"` values."""
    links = []
    for server in ice_servers(settings, relay_credentials(settings, docs)):
        extra = ""
        if "username" in server:
            extra = (f'; username="{server["username"]}"; credential="{server["credential"]}"; '
                     'credential-type="password"')
        links += [f'<{url}>; rel="ice-server"{extra}' for url in server["urls"]]
    return links
