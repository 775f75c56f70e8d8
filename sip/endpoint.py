"""The asyncio shell around the sans-IO user agent: sockets in, one timer, bytes out.

Datagrams and TCP frames are parsed here. A message that does not parse gets a
400 (or the status its error names) when it can be addressed, and is otherwise
dropped and logged (RFC 3261 §8.2, §16.3); nothing the peer sends can raise out
of this module. The UA's events go to the application's ``on_event`` callback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Iterable

from sip.errors import RemoteProtocolError
from sip.message import Request, make_response
from sip.parser import ParseError, parse_message
from sip.peer import Peer
from sip.transaction_events import Transmit
from sip.transport_tcp import TcpTransport
from sip.transport_udp import UdpTransport
from sip.ua_events import UaEvent
from sip.user_agent import Output, UserAgent

_EPHEMERAL_ATTEMPTS = 8

log = logging.getLogger("hotline.sip")


class SipEndpoint:
    """Owns the transports and drives one ``UserAgent`` on the running loop."""

    def __init__(self, ua: UserAgent, on_event: Callable[[UaEvent], None]) -> None:
        self.ua = ua
        self.on_event = on_event
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"parse_errors": 0, "dropped": 0, "received": 0}

    async def start(self, host: str, port: int, *, udp: bool = True, tcp: bool = True) -> None:
        """Listen on ``host:port`` over UDP and/or TCP."""
        self._loop = asyncio.get_running_loop()
        # An ephemeral port (0) is picked by the UDP bind and then reused for TCP,
        # where another socket may already hold it: pick again, a few times.
        attempts = _EPHEMERAL_ATTEMPTS if port == 0 and udp and tcp else 1
        for attempt in range(1, attempts + 1):
            if udp:
                self.udp = await UdpTransport.listen(host, port, self.datagram_received)
            if not tcp:
                return
            tcp_port = port or (self.udp.local_port if self.udp is not None else 0)
            try:
                self.tcp = await TcpTransport.listen(host, tcp_port, self.datagram_received)
                return
            except OSError as exc:
                if attempt == attempts or exc.errno != errno.EADDRINUSE:
                    raise
                assert self.udp is not None
                self.udp.close()
                self.udp = None

    @property
    def now(self) -> float:
        """The loop's monotonic clock, which every sans-IO core here is fed."""
        assert self._loop is not None
        return self._loop.time()

    def datagram_received(self, data: bytes, source: Peer) -> None:
        """Handle one datagram or one framed TCP message."""
        self.stats["received"] += 1
        if not data.strip(b"\r\n\x00 "):
            return  # RFC 5626 §4.4.1 keep-alive CRLFs
        try:
            message = parse_message(data)
        except ParseError as exc:
            self.stats["parse_errors"] += 1
            self._answer_bad_message(exc, source)
            return
        try:
            self.apply(self.ua.receive(message, source, self.now))
        except RemoteProtocolError as exc:
            self.stats["parse_errors"] += 1
            log.info("%s from %s rejected: %s", _call_id(message), source, exc.reason)
            if isinstance(message, Request) and message.method != "ACK":
                self._send(make_response(message, exc.status_code, exc.reason).__bytes__(), source)

    def apply(self, outputs: Iterable[Output]) -> None:
        """Send what the UA wants sent, hand its events to the app, re-arm the timer."""
        for output in outputs:
            if isinstance(output, Transmit):
                self._send(output.data, output.peer)
            else:
                try:
                    self.on_event(output)
                except Exception:  # the application's bug must not take down signalling
                    log.exception("event handler failed on %s", type(output).__name__)
        self._arm_timer()

    def _answer_bad_message(self, exc: ParseError, source: Peer) -> None:
        partial = exc.partial
        if partial is None or partial.method == "ACK":
            self.stats["dropped"] += 1
            log.info("dropped unparseable message from %s: %s", source, exc.reason)
            return
        log.info(
            "%s from %s answered %d: %s", _call_id(partial), source, exc.status_code, exc.reason
        )
        try:
            response = make_response(partial, exc.status_code, exc.reason)
            self._send(bytes(response), source)
        except RemoteProtocolError:
            self.stats["dropped"] += 1

    def _send(self, data: bytes, peer: Peer) -> None:
        transport = self.tcp if peer.transport == "tcp" else self.udp
        if transport is not None:
            transport.send(data, peer)

    def _arm_timer(self) -> None:
        deadline = self.ua.next_deadline()
        if deadline is None or self._loop is None:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return  # the armed timer fires first; it re-arms for later deadlines
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.apply(self.ua.on_timer(self.now))

    def close(self) -> None:
        """Close the transports and the timer."""
        if self._timer is not None:
            self._timer.cancel()
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()


def _call_id(message: Request | object) -> str:
    headers = getattr(message, "headers", None)
    return (headers.get("Call-ID") if headers is not None else None) or "-"
