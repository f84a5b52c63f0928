"""Raw TURN requests against a real coturn, through aioice's TURN client protocols: an
allocation of the transport we choose, and CreatePermission for a peer. Each answers the relayed
address / "ok", or coturn's (code, reason) error."""

from __future__ import annotations

import asyncio

from aioice import stun, turn

UDP = turn.UDP_TRANSPORT
TCP = 0x06000000  # REQUESTED-TRANSPORT for RFC 6062 TCP relays: protocol number 6 in the top byte
Answer = tuple[int, str] | tuple[str, int] | str


class TurnClient:
    def __init__(self, port: int, username: str, password: str, transport: str = "udp") -> None:
        self.server = ("127.0.0.1", port)
        self.username, self.password, self.transport = username, password, transport
        self.protocol: turn.TurnClientMixin | None = None
        self._closer: asyncio.BaseTransport | None = None

    async def open(self) -> TurnClient:
        loop = asyncio.get_running_loop()

        def make(cls):
            return lambda: cls(self.server, self.username, self.password, 600, 300)

        if self.transport == "udp":
            self._closer, self.protocol = await loop.create_datagram_endpoint(
                make(turn.TurnClientUdpProtocol), remote_addr=self.server)
        else:
            self._closer, self.protocol = await loop.create_connection(make(turn.TurnClientTcpProtocol), *self.server)
        return self

    async def _ask(self, request: stun.Message) -> stun.Message | tuple[int, str]:
        assert self.protocol is not None
        try:
            response, _ = await asyncio.wait_for(self.protocol.request_with_retry(request), 10)
        except stun.TransactionFailed as exc:
            code, reason = exc.response.attributes["ERROR-CODE"]
            return code, reason.rstrip("\0")
        return response

    async def allocate(self, requested: int = UDP) -> Answer:
        request = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
        request.attributes["LIFETIME"] = 600
        request.attributes["REQUESTED-TRANSPORT"] = requested
        answer = await self._ask(request)
        return answer if isinstance(answer, tuple) else answer.attributes["XOR-RELAYED-ADDRESS"]

    async def permit(self, peer_ip: str) -> Answer:
        request = stun.Message(message_method=stun.Method.CREATE_PERMISSION, message_class=stun.Class.REQUEST)
        request.attributes["XOR-PEER-ADDRESS"] = (peer_ip, 9)
        answer = await self._ask(request)
        return answer if isinstance(answer, tuple) else "ok"

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()
