"""Batched UDP I/O: recvmmsg/sendmmsg (the "c" kernel) and its pure-Python twin ("py").

Real loopback sockets, no sleeps: a datagram sent on loopback is in the
receiver's queue when ``sendto`` returns, so every test knows exactly what is
waiting. Every behaviour is checked on both implementations, and the two are
held to identical output for the same traffic and identical errors.
"""

from __future__ import annotations

import doctest
import errno
import os
import random
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from media_core import udp_batch
from media_core.udp_batch import FLAG_NOT_IPV4, FLAG_TRUNCATED, MAX_BATCH, RecvBuffers

REPO = Path(__file__).resolve().parents[3]
LOOPBACK = "127.0.0.1"
LOOPBACK_U32 = 0x7F000001
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; not in every Python build


@dataclass(frozen=True)
class Impl:
    recv_batch: udp_batch.RecvBatch
    send_batch: udp_batch.SendBatch


def _kernel() -> Impl:
    if udp_batch.extensions_disabled():
        pytest.skip("HOTLINE_NO_EXTENSIONS is set: the Cython kernel is not in use")
    module, why = udp_batch.load_extension()
    if module is None:
        pytest.skip(str(why))
    return Impl(module.recv_batch, module.send_batch)


PY = Impl(udp_batch.recv_batch_py, udp_batch.send_batch_py)


@pytest.fixture(params=["py", "c"], ids=["py", "c"])
def impl(request: pytest.FixtureRequest) -> Impl:
    return PY if request.param == "py" else _kernel()


@pytest.fixture
def make_socket() -> Iterator[Callable[..., socket.socket]]:
    """Non-blocking UDP sockets bound to loopback, closed after the test."""
    opened: list[socket.socket] = []

    def make(
        family: socket.AddressFamily = socket.AF_INET, rcvbuf: int | None = None
    ) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        opened.append(sock)
        if rcvbuf is not None:
            # Root may exceed net.core.rmem_max (SO_RCVBUFFORCE); others get what it allows.
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", 0))
        else:
            sock.bind((LOOPBACK, 0))
        sock.setblocking(False)
        return sock

    yield make
    for sock in opened:
        sock.close()


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def recv(impl: Impl, sock: socket.socket, rx: RecvBuffers) -> int:
    return impl.recv_batch(sock.fileno(), rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags)


def payloads(rx: RecvBuffers, count: int) -> list[bytes]:
    return [bytes(rx.bufs[i, : rx.lengths[i]]) for i in range(count)]


def rtp_like(i: int, size: int = 172) -> bytes:
    return bytes([0x80, 0x00, i >> 8 & 0xFF, i & 0xFF]) + bytes(
        (i + k) & 0xFF for k in range(size - 4)
    )


def sentinel_buffers(rows: int, width: int = 2048) -> RecvBuffers:
    rx = RecvBuffers.allocate(rows, width)
    rx.bufs.fill(0xEE)
    rx.lengths.fill(-7)
    rx.hosts.fill(0xDEADBEEF)
    rx.ports.fill(7)
    rx.flags.fill(0xFF)
    return rx


def tx_arrays(
    datagrams: list[bytes], destinations: list[tuple[int, int]], width: int = 2048
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = np.zeros((len(datagrams), width), dtype=np.uint8)
    for i, datagram in enumerate(datagrams):
        data[i, : len(datagram)] = np.frombuffer(datagram, dtype=np.uint8)
    lengths = np.array([len(d) for d in datagrams], dtype=np.int32)
    hosts = np.array([host for host, _ in destinations], dtype=np.uint32)
    ports = np.array([port for _, port in destinations], dtype=np.uint16)
    return data, lengths, hosts, ports


# ------------------------------------------------------------------ receiving


def test_receives_every_waiting_datagram_in_order_with_its_source(impl: Impl, make_socket) -> None:
    rx_sock, alice, bob = make_socket(), make_socket(), make_socket()
    sent = [(alice, rtp_like(0)), (bob, b"x"), (alice, rtp_like(2, 40)), (bob, rtp_like(3))]
    for sender, datagram in sent:
        sender.sendto(datagram, rx_sock.getsockname())
    rx = sentinel_buffers(64)

    count = recv(impl, rx_sock, rx)

    assert count == 4
    assert payloads(rx, count) == [datagram for _, datagram in sent]
    assert rx.lengths[:4].tolist() == [172, 1, 40, 172]
    assert rx.hosts[:4].tolist() == [LOOPBACK_U32] * 4
    assert rx.ports[:4].tolist() == [port_of(sender) for sender, _ in sent]
    assert rx.flags[:4].tolist() == [0, 0, 0, 0]


def test_entries_past_the_count_are_left_as_they_were(impl: Impl, make_socket) -> None:
    rx_sock, tx = make_socket(), make_socket()
    tx.sendto(b"only one", rx_sock.getsockname())
    rx = sentinel_buffers(8)

    assert recv(impl, rx_sock, rx) == 1

    assert rx.lengths[1:].tolist() == [-7] * 7
    assert rx.hosts[1:].tolist() == [0xDEADBEEF] * 7
    assert rx.ports[1:].tolist() == [7] * 7
    assert rx.flags[1:].tolist() == [0xFF] * 7
    assert bool(np.all(rx.bufs[1:] == 0xEE))
    assert bool(np.all(rx.bufs[0, 8:] == 0xEE))  # nothing written past the datagram


def test_a_full_queue_is_drained_in_batches_of_the_rows_given(impl: Impl, make_socket) -> None:
    rx_sock, tx = make_socket(rcvbuf=1 << 20), make_socket()
    for i in range(100):
        tx.sendto(rtp_like(i), rx_sock.getsockname())
    rx = RecvBuffers.allocate(64)

    first = recv(impl, rx_sock, rx)
    first_payloads = payloads(rx, first)
    second = recv(impl, rx_sock, rx)
    second_payloads = payloads(rx, second)

    assert (first, second) == (64, 36)
    assert first_payloads + second_payloads == [rtp_like(i) for i in range(100)]
    assert recv(impl, rx_sock, rx) == 0


def test_nothing_waiting_returns_zero_and_touches_nothing(impl: Impl, make_socket) -> None:
    rx_sock = make_socket()
    rx = sentinel_buffers(4)

    assert recv(impl, rx_sock, rx) == 0

    assert rx.lengths.tolist() == [-7] * 4
    assert rx.flags.tolist() == [0xFF] * 4


def test_a_blocking_socket_with_nothing_waiting_does_not_block(impl: Impl, make_socket) -> None:
    rx_sock = make_socket()
    rx_sock.setblocking(True)
    assert recv(impl, rx_sock, RecvBuffers.allocate(4)) == 0


def test_a_datagram_longer_than_a_row_is_cut_to_the_row_and_flagged(
    impl: Impl, make_socket
) -> None:
    rx_sock, tx = make_socket(), make_socket()
    garbage = bytes(random.Random(7).randrange(256) for _ in range(3000))
    tx.sendto(garbage, rx_sock.getsockname())
    tx.sendto(b"fits", rx_sock.getsockname())
    rx = sentinel_buffers(4, width=2048)

    assert recv(impl, rx_sock, rx) == 2

    assert rx.lengths[:2].tolist() == [2048, 4]
    assert bytes(rx.bufs[0]) == garbage[:2048]
    assert rx.flags[:2].tolist() == [FLAG_TRUNCATED, 0]
    assert bytes(rx.bufs[1, :4]) == b"fits"


def test_narrow_rows_truncate_every_longer_datagram(impl: Impl, make_socket) -> None:
    rx_sock, tx = make_socket(), make_socket()
    for size in (12, 13, 172):
        tx.sendto(rtp_like(size, size), rx_sock.getsockname())
    rx = RecvBuffers.allocate(3, width=12)

    assert recv(impl, rx_sock, rx) == 3

    assert rx.lengths.tolist() == [12, 12, 12]
    assert rx.flags.tolist() == [0, FLAG_TRUNCATED, FLAG_TRUNCATED]
    assert payloads(rx, 3) == [rtp_like(s, s)[:12] for s in (12, 13, 172)]


def test_an_empty_datagram_is_received_with_length_zero(impl: Impl, make_socket) -> None:
    rx_sock, tx = make_socket(), make_socket()
    tx.sendto(b"", rx_sock.getsockname())
    tx.sendto(b"after", rx_sock.getsockname())
    rx = RecvBuffers.allocate(4)

    assert recv(impl, rx_sock, rx) == 2
    assert payloads(rx, 2) == [b"", b"after"]
    assert rx.flags[:2].tolist() == [0, 0]


def test_one_call_receives_at_most_max_batch(impl: Impl, make_socket) -> None:
    rx_sock, tx = make_socket(rcvbuf=4 << 20), make_socket()
    for i in range(MAX_BATCH + 10):
        tx.sendto(i.to_bytes(2, "big"), rx_sock.getsockname())
    rx = RecvBuffers.allocate(MAX_BATCH + 100, width=16)

    assert recv(impl, rx_sock, rx) == MAX_BATCH
    assert recv(impl, rx_sock, rx) == 10
    assert payloads(rx, 10) == [i.to_bytes(2, "big") for i in range(MAX_BATCH, MAX_BATCH + 10)]


def test_a_dual_stack_socket_reports_ipv4_peers_as_ipv4(impl: Impl, make_socket) -> None:
    rx_sock, v4, v6 = make_socket(socket.AF_INET6), make_socket(), make_socket(socket.AF_INET6)
    v4.sendto(b"from v4", (LOOPBACK, port_of(rx_sock)))
    v6.sendto(b"from v6", ("::1", port_of(rx_sock)))
    rx = sentinel_buffers(4)

    assert recv(impl, rx_sock, rx) == 2

    assert payloads(rx, 2) == [b"from v4", b"from v6"]
    assert rx.hosts[:2].tolist() == [LOOPBACK_U32, 0]
    assert rx.ports[:2].tolist() == [port_of(v4), port_of(v6)]
    assert rx.flags[:2].tolist() == [0, FLAG_NOT_IPV4]


def test_both_implementations_receive_identical_batches(make_socket) -> None:
    c = _kernel()
    rng = random.Random(2024)
    sizes = [rng.choice([0, 1, 12, 160, 172, 2047, 2048, 2049, 4000]) for _ in range(150)]
    senders = [make_socket() for _ in range(3)]
    receivers = {"py": make_socket(rcvbuf=1 << 20), "c": make_socket(rcvbuf=1 << 20)}
    for i, size in enumerate(sizes):
        datagram = bytes(rng.randrange(256) for _ in range(size))
        sender = senders[i % 3]
        for receiver in receivers.values():
            sender.sendto(datagram, receiver.getsockname())

    batches: dict[str, list[dict[str, object]]] = {"py": [], "c": []}
    for name, implementation in (("py", PY), ("c", c)):
        rx = sentinel_buffers(64)
        for _ in range(5):  # 150 datagrams: 64 + 64 + 22, then nothing
            count = recv(implementation, receivers[name], rx)
            batches[name].append(
                {
                    "count": count,
                    "bytes": rx.bufs[:count].tobytes(),
                    "lengths": rx.lengths[:count].tolist(),
                    "hosts": rx.hosts[:count].tolist(),
                    "ports": rx.ports[:count].tolist(),
                    "flags": rx.flags[:count].tolist(),
                }
            )

    assert batches["py"] == batches["c"]
    assert [batch["count"] for batch in batches["c"]] == [64, 64, 22, 0, 0]
    lengths = [n for batch in batches["c"] for n in batch["lengths"]]  # type: ignore[attr-defined]
    flags = [f for batch in batches["c"] for f in batch["flags"]]  # type: ignore[attr-defined]
    assert lengths == [min(size, 2048) for size in sizes]
    assert flags == [FLAG_TRUNCATED if size > 2048 else 0 for size in sizes]


# ------------------------------------------------------------------ sending


def test_send_batch_delivers_every_datagram_in_order_to_each_receiver(
    impl: Impl, make_socket
) -> None:
    tx, receivers = make_socket(), [make_socket() for _ in range(3)]
    datagrams = [rtp_like(i, 20 + i) for i in range(30)]
    destinations = [(LOOPBACK_U32, port_of(receivers[i % 3])) for i in range(30)]

    sent = impl.send_batch(tx.fileno(), *tx_arrays(datagrams, destinations), 30)

    assert sent == 30
    for r, receiver in enumerate(receivers):
        got = [receiver.recv(4096) for _ in range(10)]
        assert got == datagrams[r::3]
        with pytest.raises(BlockingIOError):
            receiver.recv(4096)


def test_send_batch_sends_only_the_first_count_rows(impl: Impl, make_socket) -> None:
    tx, rx_sock = make_socket(), make_socket()
    destinations = [(LOOPBACK_U32, port_of(rx_sock))] * 3

    assert impl.send_batch(tx.fileno(), *tx_arrays([b"a", b"b", b"c"], destinations), 2) == 2
    assert impl.send_batch(tx.fileno(), *tx_arrays([b"a", b"b", b"c"], destinations), 0) == 0

    assert [rx_sock.recv(10), rx_sock.recv(10)] == [b"a", b"b"]
    with pytest.raises(BlockingIOError):
        rx_sock.recv(10)


def test_send_batch_sends_empty_datagrams(impl: Impl, make_socket) -> None:
    tx, rx_sock = make_socket(), make_socket()
    arrays = tx_arrays([b"", b"z"], [(LOOPBACK_U32, port_of(rx_sock))] * 2)

    assert impl.send_batch(tx.fileno(), *arrays, 2) == 2
    assert [rx_sock.recv(10), rx_sock.recv(10)] == [b"", b"z"]


def test_send_batch_goes_past_max_batch_in_one_call(impl: Impl, make_socket) -> None:
    tx, rx_sock = make_socket(), make_socket(rcvbuf=4 << 20)
    count = MAX_BATCH + 5
    datagrams = [i.to_bytes(2, "big") for i in range(count)]
    arrays = tx_arrays(datagrams, [(LOOPBACK_U32, port_of(rx_sock))] * count, width=2)

    assert impl.send_batch(tx.fileno(), *arrays, count) == count
    assert [rx_sock.recv(10) for _ in range(count)] == datagrams


def test_an_error_after_the_first_datagram_returns_the_count_sent(impl: Impl, make_socket) -> None:
    tx, rx_sock = make_socket(), make_socket()
    # Port 0 is no destination: sendto fails with EINVAL for the second datagram.
    data, lengths, hosts, ports = tx_arrays(
        [b"ok", b"bad", b"unsent"], [(LOOPBACK_U32, port_of(rx_sock)), (LOOPBACK_U32, 0)] * 2
    )

    assert impl.send_batch(tx.fileno(), data, lengths, hosts, ports, 3) == 1
    assert rx_sock.recv(10) == b"ok"
    with pytest.raises(OSError) as raised:  # retrying from the failed one reports it
        impl.send_batch(tx.fileno(), data[1:], lengths[1:], hosts[1:], ports[1:], 2)
    assert raised.value.errno == errno.EINVAL
    with pytest.raises(BlockingIOError):
        rx_sock.recv(10)


def test_a_dual_stack_socket_sends_to_ipv4_peers_when_told(impl: Impl, make_socket) -> None:
    tx, rx_sock = make_socket(socket.AF_INET6), make_socket()
    arrays = tx_arrays([b"mapped"], [(LOOPBACK_U32, port_of(rx_sock))])

    assert impl.send_batch(tx.fileno(), *arrays, 1, ipv6=True) == 1

    data, source = rx_sock.recvfrom(10)
    assert (data, source) == (b"mapped", (LOOPBACK, port_of(tx)))


def test_receive_then_send_back_relays_a_batch_unchanged(impl: Impl, make_socket) -> None:
    relay, a, b = make_socket(), make_socket(), make_socket()
    for i in range(5):
        a.sendto(rtp_like(i), relay.getsockname())
    rx = RecvBuffers.allocate(16)
    count = recv(impl, relay, rx)
    rx.ports[:count] = port_of(b)  # forward everything to b

    assert impl.send_batch(relay.fileno(), rx.bufs, rx.lengths, rx.hosts, rx.ports, count) == 5
    assert [b.recv(4096) for _ in range(5)] == [rtp_like(i) for i in range(5)]


# ------------------------------------------------------------------ many sockets


@dataclass(frozen=True)
class ManyImpl:
    recv_many: udp_batch.RecvMany
    send_many: udp_batch.SendMany


def _many_kernel() -> ManyImpl:
    _kernel()
    module, _ = udp_batch.load_extension()
    assert module is not None
    return ManyImpl(module.recv_many, module.send_many)


PY_MANY = ManyImpl(udp_batch.recv_many_py, udp_batch.send_many_py)


@pytest.fixture(params=["py", "c"], ids=["py", "c"])
def many(request: pytest.FixtureRequest) -> ManyImpl:
    return PY_MANY if request.param == "py" else _many_kernel()


@dataclass
class ManyRx:
    rx: RecvBuffers
    sources: np.ndarray
    errnos: np.ndarray

    @classmethod
    def allocate(cls, rows: int, sockets: int, width: int = 2048) -> ManyRx:
        return cls(
            sentinel_buffers(rows, width),
            np.full(rows, -9, dtype=np.int32),
            np.full(sockets, 99, dtype=np.int32),
        )

    def recv(self, many: ManyImpl, fds: list[int]) -> int:
        rx = self.rx
        return many.recv_many(
            np.array(fds, dtype=np.int32),
            rx.bufs,
            rx.lengths,
            rx.hosts,
            rx.ports,
            rx.flags,
            self.sources,
            self.errnos,
        )


def test_recv_many_drains_every_socket_in_order_and_names_each_datagrams_socket(
    many: ManyImpl, make_socket
) -> None:
    legs = [make_socket() for _ in range(3)]
    tx = make_socket()
    for leg, datagrams in zip(legs, ([b"a0", b"a1"], [], [b"c0", b"c1", b"c2"]), strict=True):
        for datagram in datagrams:
            tx.sendto(datagram, leg.getsockname())
    got = ManyRx.allocate(16, 3)

    count = got.recv(many, [leg.fileno() for leg in legs])

    assert count == 5
    assert payloads(got.rx, count) == [b"a0", b"a1", b"c0", b"c1", b"c2"]
    assert got.sources[:5].tolist() == [0, 0, 2, 2, 2]
    assert got.rx.ports[:5].tolist() == [port_of(tx)] * 5
    assert got.rx.hosts[:5].tolist() == [LOOPBACK_U32] * 5
    assert got.errnos.tolist() == [0, 0, 0]
    assert got.sources[5:].tolist() == [-9] * 11  # rows past the count untouched


def test_recv_many_stops_when_the_rows_are_full_and_the_rest_waits(
    many: ManyImpl, make_socket
) -> None:
    legs, tx = [make_socket(), make_socket()], make_socket()
    for leg in legs:
        for i in range(3):
            tx.sendto(bytes([i]), leg.getsockname())
    got = ManyRx.allocate(4, 2)
    fds = [leg.fileno() for leg in legs]

    assert got.recv(many, fds) == 4
    assert got.sources.tolist() == [0, 0, 0, 1]
    assert got.recv(many, fds) == 2
    assert got.sources[:2].tolist() == [1, 1]
    assert payloads(got.rx, 2) == [b"\x01", b"\x02"]
    assert got.recv(many, fds) == 0


def test_recv_many_reports_a_bad_socket_and_still_reads_the_others(
    many: ManyImpl, make_socket
) -> None:
    good, tx = make_socket(), make_socket()
    tx.sendto(b"fine", good.getsockname())
    read_end, write_end = os.pipe()
    try:
        got = ManyRx.allocate(8, 3)
        count = got.recv(many, [read_end, good.fileno(), -1])
    finally:
        os.close(read_end)
        os.close(write_end)

    assert count == 1
    assert payloads(got.rx, 1) == [b"fine"]
    assert got.sources[0] == 1
    assert got.errnos.tolist() == [errno.ENOTSOCK, 0, errno.EBADF]


def test_recv_many_with_nothing_waiting_returns_zero_and_clears_errnos(
    many: ManyImpl, make_socket
) -> None:
    got = ManyRx.allocate(4, 2)
    assert got.recv(many, [make_socket().fileno(), make_socket().fileno()]) == 0
    assert got.errnos.tolist() == [0, 0]
    assert got.rx.lengths.tolist() == [-7] * 4


def test_recv_many_flags_truncated_datagrams(many: ManyImpl, make_socket) -> None:
    leg, tx = make_socket(), make_socket()
    tx.sendto(b"x" * 100, leg.getsockname())
    got = ManyRx.allocate(2, 1, width=10)
    assert got.recv(many, [leg.fileno()]) == 1
    assert (got.rx.lengths[0], got.rx.flags[0]) == (10, FLAG_TRUNCATED)


def _send_many(
    many: ManyImpl,
    socks: list[socket.socket | int],
    rows: list[tuple[int, bytes, int]],
    errnos: np.ndarray | None = None,
) -> tuple[int, list[int]]:
    """Send (source socket index, payload, destination port) rows to loopback."""
    data, lengths, hosts, ports = tx_arrays(
        [payload for _, payload, _ in rows], [(LOOPBACK_U32, port) for _, _, port in rows]
    )
    sources = np.array([source for source, _, _ in rows], dtype=np.int32)
    out = errnos if errnos is not None else np.full(len(rows), 99, dtype=np.int32)
    fds = np.array([s if isinstance(s, int) else s.fileno() for s in socks], dtype=np.int32)
    sent = many.send_many(fds, data, lengths, hosts, ports, sources, len(rows), out)
    return sent, out.tolist()


def test_send_many_sends_each_row_from_its_own_socket_in_order(many: ManyImpl, make_socket) -> None:
    senders, rx_sock = [make_socket() for _ in range(3)], make_socket()
    rows = [(0, b"r0", 0), (0, b"r1", 0), (1, b"r2", 0), (2, b"r3", 0), (1, b"r4", 0)]
    rows = [(source, payload, port_of(rx_sock)) for source, payload, _ in rows]

    sent, errnos = _send_many(many, senders, rows)

    assert (sent, errnos) == (5, [0, 0, 0, 0, 0])
    received = [rx_sock.recvfrom(100) for _ in range(5)]
    assert [data for data, _ in received] == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    assert [source[1] for _, source in received] == [port_of(senders[s]) for s, _, _ in rows]


def test_send_many_skips_a_row_that_fails_and_sends_the_rest(many: ManyImpl, make_socket) -> None:
    sender, rx_sock = make_socket(), make_socket()
    port = port_of(rx_sock)

    sent, errnos = _send_many(
        many, [sender], [(0, b"one", port), (0, b"bad", 0), (0, b"two", port)]
    )

    assert (sent, errnos) == (2, [0, errno.EINVAL, 0])
    assert [rx_sock.recv(10), rx_sock.recv(10)] == [b"one", b"two"]


def test_send_many_reports_a_bad_socket_per_row(many: ManyImpl, make_socket) -> None:
    sender, rx_sock = make_socket(), make_socket()
    read_end, write_end = os.pipe()
    try:
        rows = [(1, b"x", port_of(rx_sock)), (0, b"ok", port_of(rx_sock)), (1, b"y", 9)]
        sent, errnos = _send_many(many, [sender, read_end], rows)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert (sent, errnos) == (1, [errno.ENOTSOCK, 0, errno.ENOTSOCK])
    assert rx_sock.recv(10) == b"ok"


def test_recv_many_and_send_many_relay_two_calls_in_one_tick(many: ManyImpl, make_socket) -> None:
    """The intended use: a relay socket per leg, one receive and one send for all of them."""
    phones = [make_socket() for _ in range(4)]  # call 0: phones 0 and 1; call 1: phones 2 and 3
    relay = [make_socket() for _ in range(4)]  # relay[i] is phone i's port on the relay
    peer = [1, 0, 3, 2]
    for i, phone in enumerate(phones):
        for k in range(3):
            phone.sendto(f"from {i} #{k}".encode(), relay[i].getsockname())
    got = ManyRx.allocate(64, 4)
    fds = [sock.fileno() for sock in relay]

    count = got.recv(many, fds)
    rx = got.rx
    out_sources = np.array([peer[s] for s in got.sources[:count]], dtype=np.int32)
    out_ports = np.array([port_of(phones[peer[s]]) for s in got.sources[:count]], dtype=np.uint16)
    errnos = np.zeros(count, dtype=np.int32)
    sent = many.send_many(
        np.array(fds, dtype=np.int32),
        rx.bufs,
        rx.lengths,
        rx.hosts,
        out_ports,
        out_sources,
        count,
        errnos,
    )

    assert count == sent == 12
    for i, phone in enumerate(phones):
        heard = [phone.recvfrom(100) for _ in range(3)]
        assert [data for data, _ in heard] == [f"from {peer[i]} #{k}".encode() for k in range(3)]
        assert {source[1] for _, source in heard} == {port_of(relay[i])}  # symmetric RTP


def test_both_implementations_receive_identical_batches_from_many_sockets(make_socket) -> None:
    c = _many_kernel()
    rng = random.Random(99)
    layout = {name: [make_socket(rcvbuf=1 << 20) for _ in range(5)] for name in ("py", "c")}
    senders = [make_socket() for _ in range(2)]
    for _ in range(120):
        leg, size = rng.randrange(5), rng.choice([0, 3, 172, 900, 3000])
        datagram = bytes(rng.randrange(256) for _ in range(size))
        sender = senders[rng.randrange(2)]
        for legs in layout.values():
            sender.sendto(datagram, legs[leg].getsockname())
    results = {}
    for name, implementation in (("py", PY_MANY), ("c", c)):
        got = ManyRx.allocate(50, 5, width=1024)
        batches = []
        for _ in range(4):  # 120 datagrams: 50 + 50 + 20, then nothing
            count = got.recv(implementation, [leg.fileno() for leg in layout[name]])
            batches.append(
                (
                    count,
                    got.rx.bufs[:count].tobytes(),
                    got.rx.lengths[:count].tolist(),
                    got.rx.ports[:count].tolist(),
                    got.rx.flags[:count].tolist(),
                    got.sources[:count].tolist(),
                    got.errnos.tolist(),
                )
            )
        results[name] = batches
    assert results["py"] == results["c"]
    assert [batch[0] for batch in results["c"]] == [50, 50, 20, 0]


# ------------------------------------------------------------------ errors


def _error(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    try:
        call()
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)
    raise AssertionError("no error raised")


def _recv_args(**overrides: object) -> dict[str, object]:
    rx = RecvBuffers.allocate(4, width=32)
    args: dict[str, object] = {
        "bufs": rx.bufs,
        "lengths": rx.lengths,
        "hosts": rx.hosts,
        "ports": rx.ports,
        "flags": rx.flags,
    }
    return args | overrides


RECV_FAULTS = {
    "bufs_dtype": (_recv_args(bufs=np.zeros((4, 32), dtype=np.int8)), TypeError),
    "bufs_1d": (_recv_args(bufs=np.zeros(32, dtype=np.uint8)), TypeError),
    "bufs_list": (_recv_args(bufs=[[0] * 32]), TypeError),
    "bufs_strided": (_recv_args(bufs=np.zeros((4, 64), dtype=np.uint8)[:, ::2]), ValueError),
    "bufs_readonly": (
        _recv_args(
            bufs=np.lib.stride_tricks.as_strided(np.zeros((4, 32), np.uint8), writeable=False)
        ),
        ValueError,
    ),
    "bufs_zero_width": (_recv_args(bufs=np.zeros((4, 0), dtype=np.uint8)), ValueError),
    "lengths_dtype": (_recv_args(lengths=np.zeros(4, dtype=np.int64)), TypeError),
    "lengths_short": (_recv_args(lengths=np.zeros(3, dtype=np.int32)), ValueError),
    "hosts_dtype": (_recv_args(hosts=np.zeros(4, dtype=np.int32)), TypeError),
    "hosts_short": (_recv_args(hosts=np.zeros(2, dtype=np.uint32)), ValueError),
    "ports_dtype": (_recv_args(ports=np.zeros(4, dtype=np.int16)), TypeError),
    "flags_short": (_recv_args(flags=np.zeros(0, dtype=np.uint8)), ValueError),
}


@pytest.mark.parametrize("fault", list(RECV_FAULTS))
def test_recv_batch_refuses_bad_arrays_with_identical_errors(fault: str, make_socket) -> None:
    args, expected = RECV_FAULTS[fault]
    fd = make_socket().fileno()
    errors = {
        name: _error(lambda impl=impl: impl.recv_batch(fd, **args))  # type: ignore[misc]
        for name, impl in (("py", PY), ("c", _kernel()))
    }
    assert errors["py"][0] is expected
    assert errors["py"] == errors["c"]


def _send_args(**overrides: object) -> dict[str, object]:
    data, lengths, hosts, ports = tx_arrays([b"ab", b"cd"], [(LOOPBACK_U32, 9)] * 2, width=4)
    args: dict[str, object] = {
        "data": data,
        "lengths": lengths,
        "hosts": hosts,
        "ports": ports,
        "count": 2,
    }
    return args | overrides


SEND_FAULTS = {
    "data_dtype": (_send_args(data=np.zeros((2, 4), dtype=np.int16)), TypeError),
    "data_strided": (_send_args(data=np.zeros((2, 8), dtype=np.uint8)[:, ::2]), ValueError),
    "lengths_dtype": (_send_args(lengths=np.zeros(2, dtype=np.uint32)), TypeError),
    "hosts_dtype": (_send_args(hosts=np.zeros(2, dtype=np.int64)), TypeError),
    "ports_dtype": (_send_args(ports=np.zeros(2, dtype=np.uint32)), TypeError),
    "count_type": (_send_args(count=2.0), TypeError),
    "count_negative": (_send_args(count=-1), ValueError),
    "count_past_rows": (_send_args(count=3), ValueError),
    "count_past_ports": (_send_args(ports=np.zeros(1, dtype=np.uint16)), ValueError),
    "length_negative": (_send_args(lengths=np.array([2, -1], dtype=np.int32)), ValueError),
    "length_past_row": (_send_args(lengths=np.array([5, 2], dtype=np.int32)), ValueError),
}


@pytest.mark.parametrize("fault", list(SEND_FAULTS))
def test_send_batch_refuses_bad_arguments_with_identical_errors(fault: str, make_socket) -> None:
    args, expected = SEND_FAULTS[fault]
    fd = make_socket().fileno()
    errors = {
        name: _error(lambda impl=impl: impl.send_batch(fd, **args))  # type: ignore[misc]
        for name, impl in (("py", PY), ("c", _kernel()))
    }
    assert errors["py"][0] is expected
    assert errors["py"] == errors["c"]


def _many_recv_args(**overrides: object) -> dict[str, object]:
    return (
        {"fds": np.array([3], dtype=np.int32)}
        | _recv_args()
        | {"sources": np.zeros(4, dtype=np.int32), "errnos": np.zeros(1, dtype=np.int32)}
        | overrides
    )


def _many_send_args(**overrides: object) -> dict[str, object]:
    args = _send_args()
    count = args.pop("count")
    return (
        {"fds": np.array([3], dtype=np.int32)}
        | args
        | {"sources": np.zeros(2, dtype=np.int32), "count": count}
        | {"errnos": np.zeros(2, dtype=np.int32)}
        | overrides
    )


MANY_FAULTS = {
    "recv_fds_dtype": ("recv", _many_recv_args(fds=np.array([3], dtype=np.int64)), TypeError),
    "recv_sources_short": ("recv", _many_recv_args(sources=np.zeros(3, np.int32)), ValueError),
    "recv_errnos_short": ("recv", _many_recv_args(errnos=np.zeros(0, np.int32)), ValueError),
    "recv_errnos_readonly": (
        "recv",
        _many_recv_args(
            errnos=np.lib.stride_tricks.as_strided(np.zeros(1, np.int32), writeable=False)
        ),
        ValueError,
    ),
    "send_sources_dtype": ("send", _many_send_args(sources=np.zeros(2, np.uint32)), TypeError),
    "send_source_out_of_range": (
        "send",
        _many_send_args(sources=np.array([0, 1], dtype=np.int32)),
        ValueError,
    ),
    "send_source_negative": (
        "send",
        _many_send_args(sources=np.array([-1, 0], dtype=np.int32)),
        ValueError,
    ),
    "send_count_past_errnos": (
        "send",
        _many_send_args(errnos=np.zeros(1, dtype=np.int32)),
        ValueError,
    ),
    "send_length_past_row": (
        "send",
        _many_send_args(lengths=np.array([2, 5], dtype=np.int32)),
        ValueError,
    ),
}


@pytest.mark.parametrize("fault", list(MANY_FAULTS))
def test_the_many_socket_pair_refuses_bad_arguments_with_identical_errors(fault: str) -> None:
    which, args, expected = MANY_FAULTS[fault]
    errors = {}
    for name, implementation in (("py", PY_MANY), ("c", _many_kernel())):
        function = implementation.recv_many if which == "recv" else implementation.send_many
        errors[name] = _error(lambda function=function: function(**args))  # type: ignore[misc]
    assert errors["py"][0] is expected
    assert errors["py"] == errors["c"]


def test_a_bad_source_is_named_with_its_index(many: ManyImpl) -> None:
    with pytest.raises(ValueError, match=r"sources\[1\] = 1 is not an index of fds \(it has 1\)"):
        many.send_many(**_many_send_args(sources=np.array([0, 1], dtype=np.int32)))  # type: ignore[arg-type]


def test_a_bad_length_is_named_with_its_index(impl: Impl, make_socket) -> None:
    args = _send_args(lengths=np.array([2, 9], dtype=np.int32))
    with pytest.raises(ValueError, match=r"lengths\[1\] = 9 is outside 0..4"):
        impl.send_batch(make_socket().fileno(), **args)  # type: ignore[arg-type]


def test_a_negative_fd_is_refused(impl: Impl) -> None:
    rx = RecvBuffers.allocate(1)
    with pytest.raises(ValueError, match="fd must be >= 0, not -1"):
        impl.recv_batch(-1, rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags)


def test_an_fd_that_is_not_a_socket_raises_oserror_and_stays_open(impl: Impl) -> None:
    read_end, write_end = os.pipe()
    try:
        rx = RecvBuffers.allocate(1)
        with pytest.raises(OSError) as raised:
            impl.recv_batch(read_end, rx.bufs, rx.lengths, rx.hosts, rx.ports, rx.flags)
        assert raised.value.errno == errno.ENOTSOCK
        os.write(write_end, b"still open")
        assert os.read(read_end, 20) == b"still open"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_the_caller_keeps_its_socket_open_after_many_calls(impl: Impl, make_socket) -> None:
    rx_sock, tx = make_socket(), make_socket()
    rx = RecvBuffers.allocate(4)
    for _ in range(50):
        recv(impl, rx_sock, rx)
        impl.send_batch(tx.fileno(), *tx_arrays([b"hi"], [(LOOPBACK_U32, port_of(rx_sock))]), 1)
    assert recv(impl, rx_sock, rx) == 1
    assert tx.fileno() >= 0 and rx_sock.fileno() >= 0
    tx.sendto(b"alive", rx_sock.getsockname())
    assert rx_sock.recv(10) == b"alive"


# ------------------------------------------------------------------ public module


def test_recv_buffers_allocate_the_five_arrays() -> None:
    rx = RecvBuffers.allocate(64)
    assert rx.bufs.shape == (64, udp_batch.DEFAULT_WIDTH) and rx.bufs.dtype == np.uint8
    assert [a.dtype for a in (rx.lengths, rx.hosts, rx.ports, rx.flags)] == [
        np.int32,
        np.uint32,
        np.uint16,
        np.uint8,
    ]
    assert all(len(a) == 64 for a in (rx.lengths, rx.hosts, rx.ports, rx.flags))
    with pytest.raises(ValueError):
        RecvBuffers.allocate(4, width=0)


def test_ipv4_addresses_convert_to_and_from_host_order_integers() -> None:
    assert udp_batch.ipv4_to_u32("127.0.0.1") == 0x7F000001
    assert udp_batch.ipv4_to_u32("10.1.2.3") == 0x0A010203
    assert udp_batch.u32_to_ipv4(0x7F000001) == "127.0.0.1"
    assert udp_batch.u32_to_ipv4(0xFFFFFFFF) == "255.255.255.255"
    with pytest.raises(OSError):
        udp_batch.ipv4_to_u32("not an address")


def test_the_module_docstring_example_runs_as_written() -> None:
    result = doctest.testmod(udp_batch)
    assert result.attempted >= 8
    assert result.failed == 0


def _import_in_subprocess(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_NO_EXTENSIONS"}
    if env_value is not None:
        env["HOTLINE_NO_EXTENSIONS"] = env_value
    code = (
        "from media_core import udp_batch as u; "
        "print(u.USING_EXTENSION, u.recv_batch.__module__, u.send_batch.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_hotline_no_extensions_selects_the_twin_at_import() -> None:
    assert _import_in_subprocess("1") == "False media_core.udp_batch media_core.udp_batch"
    code = "from media_core import udp_batch as u; print(u.recv_many is u.recv_many_py)"
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_NO_EXTENSIONS"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env | {"HOTLINE_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "True"


def test_without_the_variable_the_kernel_is_selected_when_built() -> None:
    module, why = udp_batch.load_extension()
    if module is None:
        pytest.skip(str(why))
    assert _import_in_subprocess(None) == "True media_core._udp_batch media_core._udp_batch"
    assert _import_in_subprocess("0") == "True media_core._udp_batch media_core._udp_batch"
