"""Batched UDP I/O: many datagrams per system call, into and out of preallocated arrays.

The media engine moves 50 packets per second per leg; at a thousand calls that is
100,000 datagrams per second each way, and one ``recvfrom`` per datagram (what an
asyncio ``DatagramProtocol`` does, plus a ``bytes`` object and a callback each)
costs more than the relaying itself. These functions move a whole batch per
call instead:

- ``recv_batch(fd, bufs, lengths, hosts, ports, flags) -> int`` receives up to
  ``len(bufs)`` datagrams that are already waiting (never blocks) and returns how
  many. Datagram ``i`` is in ``bufs[i, :lengths[i]]``, from
  ``(hosts[i], ports[i])``; ``flags[i]`` says whether it was cut
  (``FLAG_TRUNCATED``: it was longer than a row, and only a row's worth is
  kept) or came from an IPv6 address (``FLAG_NOT_IPV4``). Entries past the
  returned count are left as they were.
- ``send_batch(fd, data, lengths, hosts, ports, count, ipv6=False) -> int`` sends
  ``data[i, :lengths[i]]`` to ``(hosts[i], ports[i])`` for ``i < count`` and
  returns how many went out: fewer than ``count`` when the socket's send buffer
  filled up. The caller retries the rest later (or drops them: RTP is
  real-time).

With one socket per RTP leg, one call per socket would cost more in call
overhead than it saves, so two more functions serve every socket of the tick
in ONE call (and without the GIL for all of it):

- ``recv_many(fds, bufs, lengths, hosts, ports, flags, sources, errnos) -> int``
  drains the sockets ``fds`` in order into one set of rows; ``sources[i]`` says
  which socket (index into ``fds``) datagram ``i`` came in on, and
  ``errnos[j]`` is 0 or the error socket ``j`` failed with (it is skipped; no
  exception for socket errors, one bad socket must not stall every call).
- ``send_many(fds, data, lengths, hosts, ports, sources, count, errnos,
  ipv6=False) -> int`` sends row ``r`` from socket ``fds[sources[r]]``, in
  order (consecutive rows of one socket share a ``sendmmsg``); a row that
  cannot go is skipped with its error in ``errnos[r]`` (``EAGAIN`` when the
  send buffer is full): real-time media is dropped, never queued.

The arrays, all C-contiguous NumPy arrays allocated once by the caller
(``RecvBuffers.allocate`` does it for receiving):

- ``bufs`` uint8 ``(n, width)``, written; ``data`` uint8 ``(n, width)``, read.
  ``width`` 2048 holds any RTP packet on an Ethernet path.
- ``lengths`` int32 ``(n,)``: bytes kept (receive) or to send.
- ``hosts`` uint32 ``(n,)``: IPv4 addresses as integers in host byte order
  (``0x7F000001`` is 127.0.0.1; ``ipv4_to_u32``/``u32_to_ipv4`` convert).
- ``ports`` uint16 ``(n,)``; ``flags`` uint8 ``(n,)``, receive only.
- ``fds`` int32 ``(m,)``, ``sources`` int32 ``(n,)`` and ``errnos`` int32
  (``(m,)`` receiving, ``(n,)`` sending), for the many-socket pair.

``fd`` is a UDP socket's file descriptor (``sock.fileno()``); it stays open and
owned by the caller. Every function passes ``MSG_DONTWAIT``, so none blocks,
even on a blocking socket: nothing waiting is ``0``, not an error. For the
one-socket pair, an error other than "would block" raises ``OSError`` when
nothing was moved yet; after at least one datagram the count is returned and
the error waits for the next call, as with ``recvmmsg(2)``/``sendmmsg(2)``
themselves. IPv6: an
``AF_INET6`` socket works for IPv4 peers (IPv4-mapped addresses,
RFC 4291 §2.5.5.2: received ones come back as plain IPv4, and ``ipv6=True``
sends to them); a native IPv6 peer is flagged ``FLAG_NOT_IPV4`` on receive
and cannot be a batch destination, so such sockets use the socket API.

The implementation is chosen once, at import: the Cython kernel ``_udp_batch``
(Linux ``recvmmsg``/``sendmmsg``, without the GIL) unless ``HOTLINE_NO_EXTENSIONS``
is set (to anything but empty or ``0``) or the kernel is not built, else the
pure-Python twin here (``recv_batch_py``, ``send_batch_py``, ``recv_many_py``,
``send_many_py``: one ``recvmsg_into``/``sendto`` per datagram). Both have the
same signatures, results and error messages, and both stay importable by name
so tests can hold them to identical output.

Example: a burst of two datagrams from one socket to another, and back out:

>>> import socket
>>> a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 0))
>>> b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", 0))
>>> _ = a.sendto(b"hello", b.getsockname()); _ = a.sendto(b"world!", b.getsockname())
>>> rx = RecvBuffers.allocate(64)
>>> count = recv_batch(b.fileno(), rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags)
>>> count, rx.lengths[:count].tolist(), bytes(rx.bufs[1, : rx.lengths[1]])
(2, [5, 6], b'world!')
>>> u32_to_ipv4(int(rx.hosts[0])), int(rx.ports[0]) == a.getsockname()[1]
('127.0.0.1', True)
>>> send_batch(b.fileno(), rx.bufs, rx.lengths, rx.hosts, rx.ports, count)
2
>>> a.recv(100), a.recv(100)
(b'hello', b'world!')
>>> a.close(); b.close()
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from media_core import extensions
from media_core.extensions import extensions_disabled

__all__ = [
    "DEFAULT_WIDTH",
    "FALLBACK_REASON",
    "FLAG_NOT_IPV4",
    "FLAG_TRUNCATED",
    "MAX_BATCH",
    "USING_EXTENSION",
    "RecvBuffers",
    "extensions_disabled",
    "ipv4_to_u32",
    "load_extension",
    "RecvBatch",
    "RecvMany",
    "SendBatch",
    "SendMany",
    "recv_batch",
    "recv_batch_py",
    "recv_many",
    "recv_many_py",
    "send_batch",
    "send_batch_py",
    "send_many",
    "send_many_py",
    "u32_to_ipv4",
]

#: Set in ``flags[i]`` when datagram ``i`` was longer than a row and was cut.
FLAG_TRUNCATED = 1
#: Set in ``flags[i]`` when datagram ``i`` came from an IPv6 address that is not
#: IPv4-mapped: ``hosts[i]`` is then 0 and only ``ports[i]`` is meaningful.
FLAG_NOT_IPV4 = 2
#: The kernel's ``UIO_MAXIOV``: one recvmmsg/sendmmsg moves at most this many.
MAX_BATCH = 1024
#: Row width that holds any datagram of a 1500-byte MTU path, with room to spare.
DEFAULT_WIDTH = 2048

# RFC 4291 §2.5.5.2: the 12-byte prefix of an IPv4-mapped IPv6 address.
_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_U32 = struct.Struct("!I")


class RecvBatch(Protocol):
    """The signature of ``recv_batch`` and ``recv_batch_py``."""

    def __call__(  # noqa: D102
        self,
        fd: int,
        bufs: NDArray[np.uint8],
        lengths: NDArray[np.int32],
        hosts: NDArray[np.uint32],
        ports: NDArray[np.uint16],
        flags: NDArray[np.uint8],
    ) -> int: ...


class SendBatch(Protocol):
    """The signature of ``send_batch`` and ``send_batch_py``."""

    def __call__(  # noqa: D102
        self,
        fd: int,
        data: NDArray[np.uint8],
        lengths: NDArray[np.int32],
        hosts: NDArray[np.uint32],
        ports: NDArray[np.uint16],
        count: int,
        ipv6: bool = False,
    ) -> int: ...


class RecvMany(Protocol):
    """The signature of ``recv_many`` and ``recv_many_py``."""

    def __call__(  # noqa: D102
        self,
        fds: NDArray[np.int32],
        bufs: NDArray[np.uint8],
        lengths: NDArray[np.int32],
        hosts: NDArray[np.uint32],
        ports: NDArray[np.uint16],
        flags: NDArray[np.uint8],
        sources: NDArray[np.int32],
        errnos: NDArray[np.int32],
    ) -> int: ...


class SendMany(Protocol):
    """The signature of ``send_many`` and ``send_many_py``."""

    def __call__(  # noqa: D102
        self,
        fds: NDArray[np.int32],
        data: NDArray[np.uint8],
        lengths: NDArray[np.int32],
        hosts: NDArray[np.uint32],
        ports: NDArray[np.uint16],
        sources: NDArray[np.int32],
        count: int,
        errnos: NDArray[np.int32],
        ipv6: bool = False,
    ) -> int: ...


def ipv4_to_u32(host: str) -> int:
    """``"127.0.0.1"`` -> ``0x7F000001``, the form ``hosts`` arrays hold.

    Raises:
        OSError: ``host`` is not a dotted-quad IPv4 address.
    """
    value: int = _U32.unpack(socket.inet_aton(host))[0]
    return value


def u32_to_ipv4(host: int) -> str:
    """``0x7F000001`` -> ``"127.0.0.1"``."""
    return socket.inet_ntoa(_U32.pack(host))


@dataclass(frozen=True, slots=True)
class RecvBuffers:
    """The five arrays ``recv_batch`` fills, allocated once and reused for every batch."""

    bufs: NDArray[np.uint8]
    lengths: NDArray[np.int32]
    hosts: NDArray[np.uint32]
    ports: NDArray[np.uint16]
    flags: NDArray[np.uint8]

    @classmethod
    def allocate(cls, count: int, width: int = DEFAULT_WIDTH) -> RecvBuffers:
        """Zeroed arrays for batches of up to ``count`` datagrams of up to ``width`` bytes.

        Raises:
            ValueError: ``count`` is negative or ``width`` is below 1.
        """
        if count < 0 or width < 1:
            raise ValueError(f"need count >= 0 and width >= 1, not {count} and {width}")
        return cls(
            bufs=np.zeros((count, width), dtype=np.uint8),
            lengths=np.zeros(count, dtype=np.int32),
            hosts=np.zeros(count, dtype=np.uint32),
            ports=np.zeros(count, dtype=np.uint16),
            flags=np.zeros(count, dtype=np.uint8),
        )


# ------------------------------------------------------------ the pure twin: checks


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-D {value.dtype} array"
    return type(value).__name__


def _check_fd(fd: object) -> int:
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"fd must be an int, not {type(fd).__name__}")
    if fd < 0:
        raise ValueError(f"fd must be >= 0, not {fd}")
    return fd


def _check_array(
    name: str, value: object, dtype: type[np.generic], ndim: int, writeable: bool
) -> NDArray[np.generic]:
    if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != ndim:
        raise TypeError(
            f"{name} must be a {ndim}-D {np.dtype(dtype)} array, not {_describe(value)}"
        )
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if writeable and not value.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return value


def _check_room(name: str, value: NDArray[np.generic], needed: int, needed_what: str) -> None:
    if value.shape[0] < needed:
        raise ValueError(f"{name} has {value.shape[0]} elements, fewer than {needed_what}")


def _check_count(count: object, limit: int, what: str) -> None:
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int, not {type(count).__name__}")
    if count < 0 or count > limit:
        raise ValueError(f"count {count} is outside 0..{limit} ({what})")


def _check_lengths(lengths: NDArray[np.int32], count: int, width: int) -> None:
    used = lengths[:count]
    bad = np.flatnonzero((used < 0) | (used > width))
    if len(bad):
        at = int(bad[0])
        raise ValueError(f"lengths[{at}] = {lengths[at]} is outside 0..{width}")


def _destination(host: int, port: int, ipv6: bool) -> tuple[str, int]:
    text = u32_to_ipv4(host)
    return (f"::ffff:{text}", port) if ipv6 else (text, port)


class _BorrowedSocket:
    """A ``socket.socket`` view of a caller's fd that never closes it.

    ``socket.socket(fileno=fd)`` takes ownership and would close the fd when
    collected; ``detach()`` on the way out hands it back untouched.
    """

    __slots__ = ("sock",)

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc: object) -> None:
        self.sock.detach()


# ------------------------------------------------------------ the pure twin: receive


def recv_batch_py(
    fd: int,
    bufs: NDArray[np.uint8],
    lengths: NDArray[np.int32],
    hosts: NDArray[np.uint32],
    ports: NDArray[np.uint16],
    flags: NDArray[np.uint8],
) -> int:
    """Receive up to ``len(bufs)`` (at most ``MAX_BATCH``) waiting datagrams; never blocks.

    Args:
        fd: a UDP socket's file descriptor, left open.
        bufs: uint8 ``(n, width)``; datagram ``i`` lands in ``bufs[i, :lengths[i]]``.
        lengths: int32, at least ``n``: bytes kept of each datagram.
        hosts: uint32, at least ``n``: source IPv4 address (host byte order).
        ports: uint16, at least ``n``: source port.
        flags: uint8, at least ``n``: ``FLAG_TRUNCATED`` | ``FLAG_NOT_IPV4``.

    Returns:
        How many datagrams were received; 0 when none was waiting.

    Raises:
        TypeError: an argument has the wrong type, dtype or number of dimensions.
        ValueError: an array is not C-contiguous or writeable, or too short for ``bufs``.
        OSError: the socket failed before any datagram was received.
    """
    _check_fd(fd)
    _check_array("bufs", bufs, np.uint8, 2, True)
    _check_array("lengths", lengths, np.int32, 1, True)
    _check_array("hosts", hosts, np.uint32, 1, True)
    _check_array("ports", ports, np.uint16, 1, True)
    _check_array("flags", flags, np.uint8, 1, True)
    rows, width = int(bufs.shape[0]), int(bufs.shape[1])
    if width == 0:
        raise ValueError("bufs rows must hold at least 1 byte")
    what = f"the {rows} rows of bufs"
    _check_room("lengths", lengths, rows, what)
    _check_room("hosts", hosts, rows, what)
    _check_room("ports", ports, rows, what)
    _check_room("flags", flags, rows, what)
    if rows == 0:
        return 0
    flat = bufs.data.cast("B")  # 1-D: a 2-D memoryview cannot hand out rows
    with _BorrowedSocket(fd) as sock:
        for i in range(min(rows, MAX_BATCH)):
            try:
                _recv_one(sock, flat, width, i, lengths, hosts, ports, flags)
            except BlockingIOError:
                return i
            except OSError:
                if i == 0:
                    raise
                return i  # as recvmmsg: the error is reported by the next call
        return min(rows, MAX_BATCH)


def _recv_one(
    sock: socket.socket,
    flat: memoryview,
    width: int,
    i: int,
    lengths: NDArray[np.int32],
    hosts: NDArray[np.uint32],
    ports: NDArray[np.uint16],
    flags: NDArray[np.uint8],
) -> None:
    """One datagram into row ``i``; raises ``BlockingIOError`` when none is waiting."""
    nbytes, _, msg_flags, address = sock.recvmsg_into(
        [flat[i * width : (i + 1) * width]], 0, socket.MSG_DONTWAIT
    )
    lengths[i] = nbytes
    flags[i] = FLAG_TRUNCATED if msg_flags & socket.MSG_TRUNC else 0
    _store_source(address, i, hosts, ports, flags)


def _store_source(
    address: object,
    i: int,
    hosts: NDArray[np.uint32],
    ports: NDArray[np.uint16],
    flags: NDArray[np.uint8],
) -> None:
    if isinstance(address, tuple) and len(address) == 2:
        hosts[i] = ipv4_to_u32(address[0])
        ports[i] = address[1]
        return
    if isinstance(address, tuple) and len(address) == 4:
        packed = socket.inet_pton(socket.AF_INET6, address[0].split("%")[0])
        ports[i] = address[1]
        if packed[:12] == _V4_MAPPED_PREFIX:
            hosts[i] = _U32.unpack(packed[12:])[0]
        else:
            hosts[i] = 0
            flags[i] |= FLAG_NOT_IPV4
        return
    hosts[i] = 0
    ports[i] = 0
    flags[i] |= FLAG_NOT_IPV4


# ------------------------------------------------------------ the pure twin: send


def send_batch_py(
    fd: int,
    data: NDArray[np.uint8],
    lengths: NDArray[np.int32],
    hosts: NDArray[np.uint32],
    ports: NDArray[np.uint16],
    count: int,
    ipv6: bool = False,
) -> int:
    """Send ``data[i, :lengths[i]]`` to ``(hosts[i], ports[i])`` for ``i < count``; never blocks.

    Args:
        fd: a UDP socket's file descriptor, left open.
        data: uint8 ``(n, width)``, the datagrams, one per row.
        lengths: int32: how many bytes of each row to send, 0..width.
        hosts: uint32: destination IPv4 address (host byte order).
        ports: uint16: destination port.
        count: how many rows to send, 0..n (and no more than the other arrays hold).
        ipv6: ``fd`` is an ``AF_INET6`` socket: send to the IPv4-mapped addresses.

    Returns:
        How many datagrams were sent, in order; fewer than ``count`` when the
        socket's send buffer is full (the rest were not sent).

    Raises:
        TypeError: an argument has the wrong type, dtype or number of dimensions.
        ValueError: an array is not C-contiguous, ``count`` or a length is out of range.
        OSError: the socket failed before any datagram was sent.
    """
    _check_fd(fd)
    _check_array("data", data, np.uint8, 2, False)
    _check_array("lengths", lengths, np.int32, 1, False)
    _check_array("hosts", hosts, np.uint32, 1, False)
    _check_array("ports", ports, np.uint16, 1, False)
    limit = min(data.shape[0], lengths.shape[0], hosts.shape[0], ports.shape[0])
    _check_count(count, limit, "the rows of data and elements of lengths, hosts and ports")
    width = int(data.shape[1])
    _check_lengths(lengths, count, width)
    if count == 0:
        return 0
    flat = data.data.cast("B")
    with _BorrowedSocket(fd) as sock:
        for i in range(count):
            address = _destination(int(hosts[i]), int(ports[i]), ipv6)
            start = i * width
            try:
                sock.sendto(flat[start : start + int(lengths[i])], socket.MSG_DONTWAIT, address)
            except BlockingIOError:
                return i
            except OSError:
                if i == 0:
                    raise
                return i  # as sendmmsg: the error is reported by the next call
        return count


# ------------------------------------------------------------ the pure twin: many sockets


def recv_many_py(
    fds: NDArray[np.int32],
    bufs: NDArray[np.uint8],
    lengths: NDArray[np.int32],
    hosts: NDArray[np.uint32],
    ports: NDArray[np.uint16],
    flags: NDArray[np.uint8],
    sources: NDArray[np.int32],
    errnos: NDArray[np.int32],
) -> int:
    """Receive what waits on each socket of ``fds``, in order, into one set of rows; never blocks.

    Socket ``fds[0]`` is drained first, then ``fds[1]``, and so on until every
    socket is drained or the rows are full (the sockets after that are not read
    this time: rotate ``fds`` between calls to be fair when that can happen).

    Args:
        fds: int32 ``(m,)``: UDP sockets' file descriptors, left open.
        bufs: uint8 ``(n, width)``: datagram ``i`` lands in ``bufs[i, :lengths[i]]``.
        lengths: int32, at least ``n``: bytes kept of each datagram.
        hosts: uint32, at least ``n``: source IPv4 address (host byte order).
        ports: uint16, at least ``n``: source port.
        flags: uint8, at least ``n``: ``FLAG_TRUNCATED`` | ``FLAG_NOT_IPV4``.
        sources: int32, at least ``n``: datagram ``i`` came in on ``fds[sources[i]]``.
        errnos: int32, at least ``m``: 0, or the error a socket failed with (it is
            skipped; the others are still read). Nothing here raises ``OSError``.

    Returns:
        How many datagrams were received, from all the sockets together.

    Raises:
        TypeError: an argument has the wrong type, dtype or number of dimensions.
        ValueError: an array is not C-contiguous or writeable, or too short.
    """
    _check_array("fds", fds, np.int32, 1, False)
    _check_array("bufs", bufs, np.uint8, 2, True)
    _check_array("lengths", lengths, np.int32, 1, True)
    _check_array("hosts", hosts, np.uint32, 1, True)
    _check_array("ports", ports, np.uint16, 1, True)
    _check_array("flags", flags, np.uint8, 1, True)
    _check_array("sources", sources, np.int32, 1, True)
    _check_array("errnos", errnos, np.int32, 1, True)
    m, rows, width = int(fds.shape[0]), int(bufs.shape[0]), int(bufs.shape[1])
    if width == 0:
        raise ValueError("bufs rows must hold at least 1 byte")
    what = f"the {rows} rows of bufs"
    for name, array in (
        ("lengths", lengths),
        ("hosts", hosts),
        ("ports", ports),
        ("flags", flags),
        ("sources", sources),
    ):
        _check_room(name, array, rows, what)
    _check_room("errnos", errnos, m, f"the {m} elements of fds")
    if m == 0:
        return 0
    errnos[:m] = 0
    flat = bufs.data.cast("B")
    done = 0
    for i in range(m):
        if done >= rows:
            break
        try:
            sock = _borrow(int(fds[i]))
        except OSError as exc:
            errnos[i] = exc.errno or errno.EBADF
            continue
        try:
            while done < rows:
                try:
                    _recv_one(sock, flat, width, done, lengths, hosts, ports, flags)
                except BlockingIOError:
                    break
                except OSError as exc:
                    errnos[i] = exc.errno or errno.EIO
                    break
                sources[done] = i
                done += 1
        finally:
            sock.detach()
    return done


def send_many_py(
    fds: NDArray[np.int32],
    data: NDArray[np.uint8],
    lengths: NDArray[np.int32],
    hosts: NDArray[np.uint32],
    ports: NDArray[np.uint16],
    sources: NDArray[np.int32],
    count: int,
    errnos: NDArray[np.int32],
    ipv6: bool = False,
) -> int:
    """Send ``data[r, :lengths[r]]`` from ``fds[sources[r]]`` to ``(hosts[r], ports[r])``.

    Rows go out in order; consecutive rows from one socket share one system
    call. A row that cannot be sent (a full send buffer: ``EAGAIN``, or any
    other error) is skipped with its error in ``errnos[r]`` and the following
    rows are still tried: real-time media is dropped, never queued.

    Args:
        fds: int32 ``(m,)``: UDP sockets' file descriptors, left open.
        data: uint8 ``(n, width)``, the datagrams, one per row.
        lengths: int32: how many bytes of each row to send, 0..width.
        hosts: uint32: destination IPv4 address (host byte order).
        ports: uint16: destination port.
        sources: int32: the index into ``fds`` of the socket each row leaves from.
        count: how many rows to send, 0..n (and no more than every array holds).
        errnos: int32, at least ``count``: 0 for a row sent, else its error.
        ipv6: the sockets are ``AF_INET6``: send to the IPv4-mapped addresses.

    Returns:
        How many rows were sent.

    Raises:
        TypeError: an argument has the wrong type, dtype or number of dimensions.
        ValueError: an array is not C-contiguous, ``count``, a length or a source is
            out of range.
    """
    _check_array("fds", fds, np.int32, 1, False)
    _check_array("data", data, np.uint8, 2, False)
    _check_array("lengths", lengths, np.int32, 1, False)
    _check_array("hosts", hosts, np.uint32, 1, False)
    _check_array("ports", ports, np.uint16, 1, False)
    _check_array("sources", sources, np.int32, 1, False)
    _check_array("errnos", errnos, np.int32, 1, True)
    m, width = int(fds.shape[0]), int(data.shape[1])
    limit = min(
        data.shape[0],
        lengths.shape[0],
        hosts.shape[0],
        ports.shape[0],
        sources.shape[0],
        errnos.shape[0],
    )
    _check_count(
        count, limit, "the rows of data and elements of lengths, hosts, ports, sources and errnos"
    )
    _check_lengths(lengths, count, width)
    used = sources[:count]
    bad = np.flatnonzero((used < 0) | (used >= m))
    if len(bad):
        at = int(bad[0])
        raise ValueError(f"sources[{at}] = {sources[at]} is not an index of fds (it has {m})")
    if count == 0:
        return 0
    flat = data.data.cast("B")
    borrowed: dict[int, socket.socket] = {}
    sent = 0
    try:
        for row in range(count):
            source = int(sources[row])
            try:
                sock = borrowed.get(source) or borrowed.setdefault(
                    source, _borrow(int(fds[source]))
                )
                start = row * width
                sock.sendto(
                    flat[start : start + int(lengths[row])],
                    socket.MSG_DONTWAIT,
                    _destination(int(hosts[row]), int(ports[row]), ipv6),
                )
            except OSError as exc:
                errnos[row] = exc.errno or errno.EIO
                continue
            errnos[row] = 0
            sent += 1
    finally:
        for sock in borrowed.values():
            sock.detach()
    return sent


def _borrow(fd: int) -> socket.socket:
    """A socket object on ``fd`` that the caller must ``detach()``; OSError as the kernel says."""
    if fd < 0:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    return socket.socket(fileno=fd)


# ------------------------------------------------------------ selection


def load_extension() -> tuple[ModuleType | None, str | None]:
    """Import the Cython kernel, whatever the environment says."""
    return extensions.load_extension("media_core._udp_batch")


def _select() -> tuple[RecvBatch, SendBatch, RecvMany, SendMany, str | None]:
    module, why = extensions.select("media_core._udp_batch", sys.modules[__name__])
    if module is sys.modules[__name__]:
        return recv_batch_py, send_batch_py, recv_many_py, send_many_py, why
    return module.recv_batch, module.send_batch, module.recv_many, module.send_many, None


recv_batch: RecvBatch
send_batch: SendBatch
recv_many: RecvMany
send_many: SendMany
# FALLBACK_REASON: why the twin serves, if it does.
recv_batch, send_batch, recv_many, send_many, FALLBACK_REASON = _select()
#: True when the Cython kernel serves this process.
USING_EXTENSION: bool = FALLBACK_REASON is None
