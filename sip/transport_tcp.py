"""SIP over TCP: connections, Content-Length framing and reuse (RFC 3261 §18).

Responses go back over the connection the request came in on (§18.2.2). Outbound
requests reuse a connection to the same peer, or open one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sip.errors import RemoteProtocolError
from sip.parser import StreamFramer
from sip.peer import Peer

log = logging.getLogger("hotline.sip.tcp")

Receiver = Callable[[bytes, Peer], None]
IDLE_TIMEOUT_S = 600.0


class _Connection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport) -> None:
        self._owner = owner
        self._framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer("tcp", host, port)
        self._owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self._framer.feed(data)
        assert self.peer is not None
        try:
            while (frame := self._framer.next_frame()) is not None:
                self._owner.receiver(frame, self.peer)
        except RemoteProtocolError as exc:
            # A stream we cannot frame cannot be resynchronised: close it (§18.3).
            log.info("closing TCP connection from %s: %s", self.peer, exc.reason)
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self._owner.connections.get(self.peer) is self:
            del self._owner.connections[self.peer]


class TcpTransport:
    """A TCP listener plus the connections it accepted or opened."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.connections: dict[Peer, _Connection] = {}
        self._server: asyncio.Server | None = None
        self._pending: dict[Peer, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.local_port = 0

    @classmethod
    async def listen(cls, host: str, port: int, receiver: Receiver) -> TcpTransport:
        """Listen on ``host:port`` (port 0 picks a free one)."""
        self = cls(receiver)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True
        )
        self.local_port = self._server.sockets[0].getsockname()[1]
        return self

    def send(self, data: bytes, peer: Peer) -> None:
        """Send on the connection to ``peer``, opening one when there is none."""
        connection = self.connections.get(peer)
        if connection is not None and connection.transport is not None:
            connection.transport.write(data)
            return
        queued = self._pending.setdefault(peer, [])
        queued.append(data)
        if len(queued) == 1:
            task = asyncio.get_running_loop().create_task(self._connect(peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Connection(self), peer.host, peer.port)
        except OSError as exc:
            # The transaction layer times the request out (§17.1.4 transport errors).
            log.info("TCP connect to %s failed: %s", peer, exc)
            self._pending.pop(peer, None)
            return
        connection = self.connections.get(peer)
        for data in self._pending.pop(peer, []):
            if connection is not None and connection.transport is not None:
                connection.transport.write(data)

    def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.close()
