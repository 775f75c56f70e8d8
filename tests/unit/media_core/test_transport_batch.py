"""Sweeping every RTP socket once per tick: what goes in, what comes out, on loopback."""

import socket

from media_core.transport_batch import BatchSockets


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def test_one_sweep_delivers_every_waiting_datagram_with_its_stream_and_source():
    batch = BatchSockets()
    ours = {1: udp(), 2: udp()}
    for stream_id, sock in ours.items():
        batch.add(stream_id, sock)
    peer = udp()
    for stream_id, sock in ours.items():
        for n in range(3):
            peer.sendto(bytes([stream_id, n]) * 86, sock.getsockname())
    got = []
    count = batch.receive(lambda sid, data, addr, now: got.append((sid, data[:2], addr, now)), 7.0)
    assert count == 6
    assert sorted((sid, data) for sid, data, _, _ in got) == [
        (sid, bytes([sid, n])) for sid in (1, 2) for n in range(3)
    ]
    assert {addr for _, _, addr, _ in got} == {peer.getsockname()}
    assert {now for *_, now in got} == {7.0}
    assert batch.receive(lambda *args: None, 7.02) == 0  # drained


def test_one_sweep_sends_mixed_sizes_from_each_streams_own_socket():
    batch = BatchSockets()
    ours = {1: udp(), 2: udp()}
    for stream_id, sock in ours.items():
        batch.add(stream_id, sock)
    far = udp()
    audio, event = b"A" * 172, b"E" * 16  # an audio packet and an RFC 4733 one
    others = batch.send(
        [(1, audio, far.getsockname()), (2, event, far.getsockname()), (9, b"x", ("127.0.0.1", 9))],
        on_error=lambda stream_id: None,
    )
    assert others == [(9, b"x", ("127.0.0.1", 9))]  # not ours: left to the caller
    received = {}
    for _ in range(2):
        data, source = far.recvfrom(2048)
        received[source] = data
    assert received == {ours[1].getsockname(): audio, ours[2].getsockname(): event}


def test_a_removed_stream_is_closed_and_no_longer_read():
    batch = BatchSockets()
    sock = udp()
    address = sock.getsockname()
    batch.add(1, sock)
    batch.remove(1)
    assert sock.fileno() == -1
    assert 1 not in batch
    udp().sendto(b"late", address)
    assert batch.receive(lambda *args: None, 0.0) == 0


def test_many_source_addresses_are_each_reported_right_while_the_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr("media_core.transport_batch._MAX_ADDRESSES", 2)
    batch = BatchSockets()
    ours = udp()
    batch.add(1, ours)
    peers = [udp() for _ in range(5)]
    for round_ in range(2):  # the second round finds some sources cached, some evicted
        for index, peer in enumerate(peers):
            peer.sendto(bytes([index]), ours.getsockname())
        got: list[tuple[bytes, tuple[str, int]]] = []

        def collect(sid, data, addr, now, got=got):
            got.append((data, addr))

        assert batch.receive(collect, 0.0) == 5
        assert got == [(bytes([i]), p.getsockname()) for i, p in enumerate(peers)], round_
        assert len(batch._addresses) <= 2
