"""SIP over UDP: a thin asyncio DatagramProtocol (RFC 3261 §18.1.1, §18.2.1)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from sip.peer import Peer

log = logging.getLogger("hotline.sip.udp")

Receiver = Callable[[bytes, Peer], None]


class UdpTransport(asyncio.DatagramProtocol):
    """Receives datagrams into ``receiver`` and sends bytes to peers."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._transport: asyncio.DatagramTransport | None = None
        self.local_port = 0

    @classmethod
    async def listen(cls, host: str, port: int, receiver: Receiver) -> UdpTransport:
        """Bind ``host:port`` (port 0 picks a free one) and start receiving."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Bursts of 500 calls/s arrive faster than one loop iteration drains them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind((host, port))
        sock.setblocking(False)
        _, protocol = await loop.create_datagram_endpoint(lambda: cls(receiver), sock=sock)
        protocol.local_port = sock.getsockname()[1]
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        # uvloop's UDP transport is not a subclass of asyncio.DatagramTransport.
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # noqa: D102
        self._receiver(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # noqa: D102
        # ICMP port unreachable and the like: the transaction timers handle the loss.
        log.debug("UDP error: %s", exc)

    def send(self, data: bytes, peer: Peer) -> None:
        """Send one datagram."""
        if self._transport is not None:
            self._transport.sendto(data, (peer.host, peer.port))

    def close(self) -> None:
        """Stop receiving."""
        if self._transport is not None:
            self._transport.close()
