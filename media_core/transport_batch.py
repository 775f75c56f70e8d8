"""Every IPv4 RTP socket served once per tick: one recvmmsg sweep in, one sendmmsg sweep out.

With a socket per call leg and 50 packets/s each, an event loop spends more
time waking up for single datagrams than handling them. Here the media tick
itself drains all sockets at the start of each tick (``udp_batch.recv_many``:
one call without the GIL for every socket) and sends all its packets at the
end (``udp_batch.send_many``). A packet waits at most one tick in its socket,
which the jitter buffer absorbs; its arrival time is the tick's.

Measured on this kind of machine, 2,000 sockets with one datagram each:
uvloop callbacks 165-290k datagrams/s, ``recv_many`` 365-610k/s.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import numpy as np

from media_core import udp_batch
from media_core.stream import Address

__all__ = ["BatchSockets"]

Deliver = Callable[[int, bytes, Address, float], object]
Datagram = tuple[int, bytes, Address]

_WIDTH = 2048  # the largest datagram kept whole; RTP audio here is 172 bytes
_MAX_SWEEPS = 16  # bounded work per tick, whatever a flood does
_MAX_ADDRESSES = 65536  # source addresses remembered before starting afresh


class BatchSockets:
    """The IPv4 stream sockets, with the arrays ``recv_many``/``send_many`` reuse."""

    __slots__ = (
        "_addresses",
        "_bufs",
        "_dirty",
        "_errnos",
        "_fds",
        "_flags",
        "_flat",
        "_host_numbers",
        "_hosts",
        "_ids",
        "_index",
        "_lengths",
        "_ports",
        "_sockets",
        "_sources",
        "send_errors",
    )

    def __init__(self) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self._ids: list[int] = []
        self._index: dict[int, int] = {}
        self._fds = np.zeros(0, dtype=np.int32)
        self._dirty = False
        # (IPv4 as an int << 16 | port) -> the (host, port) tuple handed on.
        self._addresses: dict[int, Address] = {}
        self._host_numbers: dict[str, int] = {}
        self.send_errors = 0
        self._allocate(1024)

    def _allocate(self, rows: int) -> None:
        self._bufs = np.zeros((rows, _WIDTH), dtype=np.uint8)
        self._flat = memoryview(self._bufs.data).cast("B")  # row r starts at r * _WIDTH
        self._lengths = np.zeros(rows, dtype=np.int32)
        self._hosts = np.zeros(rows, dtype=np.uint32)
        self._ports = np.zeros(rows, dtype=np.uint16)
        self._flags = np.zeros(rows, dtype=np.uint8)
        self._sources = np.zeros(rows, dtype=np.int32)
        self._errnos = np.zeros(max(rows, 1), dtype=np.int32)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._sockets

    def add(self, stream_id: int, sock: socket.socket) -> None:
        """Serve this non-blocking IPv4 UDP socket from now on."""
        self._sockets[stream_id] = sock
        self._dirty = True

    def remove(self, stream_id: int) -> None:
        """Stop serving and close the stream's socket; unknown ids are ignored."""
        sock = self._sockets.pop(stream_id, None)
        if sock is not None:
            sock.close()
            self._dirty = True

    def receive(self, deliver: Deliver, now: float) -> int:
        """Drain every socket, handing each datagram to ``deliver``; return the count."""
        if self._dirty:
            self._rebuild()
        if not self._ids:
            return 0
        total = 0
        ids, rows, flat = self._ids, len(self._lengths), self._flat
        addresses = self._addresses
        for _ in range(_MAX_SWEEPS):
            count = udp_batch.recv_many(
                self._fds, self._bufs, self._lengths, self._hosts, self._ports,
                self._flags, self._sources, self._errnos,
            )
            # Whole columns to Python ints at once, then one slice per datagram:
            # 1.35 instead of 1.8 us a datagram, recvmmsg included (1,000 sockets).
            for start, length, host, port, source in zip(
                range(0, count * _WIDTH, _WIDTH),
                self._lengths[:count].tolist(),
                self._hosts[:count].tolist(),
                self._ports[:count].tolist(),
                self._sources[:count].tolist(),
                strict=True,
            ):
                key = host << 16 | port
                addr = addresses.get(key)
                if addr is None:
                    addr = self._address(key, host, port)
                deliver(ids[source], flat[start : start + length].tobytes(), addr, now)
            total += count
            if count < rows:
                break
        return total

    def send(self, datagrams: list[Datagram], on_error: Callable[[int], None]) -> list[Datagram]:
        """Send what belongs to these sockets in one sweep; return the others' datagrams."""
        if self._dirty:
            self._rebuild()
        mine: list[Datagram] = []
        others: list[Datagram] = []
        for datagram in datagrams:
            (mine if datagram[0] in self._index else others).append(datagram)
        count = len(mine)
        if not count:
            return others
        lengths = np.fromiter((len(d[1]) for d in mine), dtype=np.int32, count=count)
        width = int(lengths.max())
        joined = b"".join(d[1] for d in mine)
        if width * count == len(joined):  # all one size, as audio packets are
            data = np.frombuffer(joined, dtype=np.uint8).reshape(count, width)
        else:
            data = np.zeros((count, width), dtype=np.uint8)
            for row, datagram in enumerate(mine):
                data[row, : len(datagram[1])] = np.frombuffer(datagram[1], dtype=np.uint8)
        numbers = self._host_numbers
        hosts = np.fromiter(
            (numbers.get(d[2][0]) or self._number(d[2][0]) for d in mine), dtype=np.uint32,
            count=count,
        )
        ports = np.fromiter((d[2][1] for d in mine), dtype=np.uint16, count=count)
        index = self._index
        sources = np.fromiter((index[d[0]] for d in mine), dtype=np.int32, count=count)
        errnos = np.zeros(count, dtype=np.int32)
        sent = udp_batch.send_many(
            self._fds, np.ascontiguousarray(data), lengths, hosts, ports, sources, count, errnos
        )
        if sent < count:
            for failed in np.flatnonzero(errnos).tolist():
                self.send_errors += 1
                on_error(mine[failed][0])
        return others

    def close(self) -> None:
        """Close every socket."""
        for stream_id in list(self._sockets):
            self.remove(stream_id)

    def _address(self, key: int, host: int, port: int) -> Address:
        if len(self._addresses) >= _MAX_ADDRESSES:
            self._addresses.clear()  # a flood from many ports must not grow it forever
        addr = self._addresses[key] = (udp_batch.u32_to_ipv4(host), port)
        return addr

    def _number(self, host: str) -> int:
        number = self._host_numbers[host] = udp_batch.ipv4_to_u32(host)
        return number

    def _rebuild(self) -> None:
        self._ids = list(self._sockets)
        self._index = {stream_id: row for row, stream_id in enumerate(self._ids)}
        self._fds = np.fromiter(
            (self._sockets[i].fileno() for i in self._ids), dtype=np.int32, count=len(self._ids)
        )
        # Room for a burst of four packets per socket in one sweep.
        rows = max(1024, 4 * len(self._ids))
        if rows > len(self._lengths) or len(self._errnos) < len(self._ids):
            self._allocate(rows)
        self._dirty = False
