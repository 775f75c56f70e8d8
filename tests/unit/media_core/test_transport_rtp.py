"""The asyncio RTP shell on loopback, under a virtual clock (see conftest.py).

Real UDP sockets on 127.0.0.1; the loop's clock jumps over idle time, so
"200 ms of loop time" is exact and takes no wall-clock time.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Iterator
from typing import Any

import numpy as np
import pytest

from media_core import g711
from media_core.rtcp import Bye, ReceiverReport, ReportBlock, SenderReport, parse_compound
from media_core.rtp import RtpPacket
from media_core.tick import MediaTick
from media_core.tone import tone_pcm
from media_core.transport_rtp import MediaEngine, NoFreePortError, RtpPortAllocator

# conftest.VirtualClockLoop: a selector loop whose clock skips idle time, plus advance().
VirtualClockLoop = Any

LOCAL = "127.0.0.1"
TONE = tone_pcm(700.0, 1000)
# A range unlikely to be busy; the engine skips ports other processes hold.
LOW, HIGH = 47000, 47999


class Collector(asyncio.DatagramProtocol):
    """A peer that keeps every datagram it receives, with the loop time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.datagrams: list[tuple[float, bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self._arrived = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((self.loop.time(), data, addr))
        self._arrived.set()

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    async def wait_for(self, count: int, timeout_s: float = 2.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.datagrams) < count:
                self._arrived.clear()
                await self._arrived.wait()


_open_peers: list[Collector] = []


async def open_peer(loop: asyncio.AbstractEventLoop) -> Collector:
    _, peer = await loop.create_datagram_endpoint(lambda: Collector(loop), local_addr=(LOCAL, 0))
    _open_peers.append(peer)
    return peer


@pytest.fixture(autouse=True)
def close_peers(virtual_loop: VirtualClockLoop) -> Iterator[None]:
    yield
    while _open_peers:
        transport = _open_peers.pop().transport
        if transport is not None:
            transport.close()
    virtual_loop.run_until_complete(asyncio.sleep(0))  # let the closes complete


def run(loop: VirtualClockLoop, coro: Coroutine[Any, Any, Any]) -> Any:
    return loop.run_until_complete(coro)


def peak_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])


# ------------------------------------------------------------- port allocator


def test_allocator_hands_out_even_ports_leaving_the_odd_one_for_rtcp():
    ports = RtpPortAllocator(10001, 10010)
    handed = [ports.allocate() for _ in range(4)]
    assert handed == [10002, 10004, 10006, 10008]
    with pytest.raises(NoFreePortError, match="all 4 RTP ports of 10001-10010 are in use"):
        ports.allocate()


def test_allocator_reuses_released_ports_last():
    ports = RtpPortAllocator(20000, 20007)
    first, second = ports.allocate(), ports.allocate()
    ports.release(first)
    assert (ports.allocate(), ports.allocate(), ports.allocate()) == (20004, 20006, first)
    assert ports.in_use == 4 and ports.available == 0
    assert second in (20002,)


def test_allocator_refuses_double_release_and_useless_ranges():
    ports = RtpPortAllocator(30000, 30001)
    port = ports.allocate()
    ports.release(port)
    with pytest.raises(ValueError, match="RTP port 30000 is not allocated"):
        ports.release(port)
    with pytest.raises(ValueError, match="holds no even port"):
        RtpPortAllocator(30001, 30002)
    with pytest.raises(ValueError, match="not within 1-65535"):
        RtpPortAllocator(0, 100)


def test_no_free_port_is_a_runtime_error_as_the_server_expects():
    assert issubclass(NoFreePortError, RuntimeError)


# ------------------------------------------------------------------ the engine


def test_a_stream_sends_the_tone_at_one_packet_per_20_ms(virtual_loop: VirtualClockLoop):
    async def scenario() -> tuple[Collector, MediaEngine, int, float]:
        peer = await open_peer(virtual_loop)
        engine = MediaEngine(LOW, HIGH)
        stream_id = await engine.open_stream(LOCAL, None, (LOCAL, peer.port), "PCMU", 0, TONE)
        started = virtual_loop.time()
        await engine.start()
        await peer.wait_for(10)
        await engine.stop()
        return peer, engine, stream_id, started

    peer, engine, stream_id, started = run(virtual_loop, scenario())
    times = [t for t, _, _ in peer.datagrams[:10]]
    assert times == pytest.approx([started + 0.02 * k for k in range(1, 11)], abs=1e-9)
    packets = [RtpPacket.parse(data) for _, data, _ in peer.datagrams[:10]]
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert [(p.sequence_number - packets[0].sequence_number) % 65536 for p in packets] == list(
        range(10)
    )
    assert [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets] == [
        160 * k for k in range(10)
    ]
    assert all(p.payload_type == 0 and len(p.payload) == 160 for p in packets)
    pcm = g711.ulaw_decode(b"".join(p.payload for p in packets))
    assert peak_hz(pcm) == 700.0  # 1600 samples: 5 Hz bins
    # Sent from the stream's own port, an even one from the range.
    source_port = peer.datagrams[0][2][1]
    assert source_port % 2 == 0 and LOW <= source_port <= HIGH


def test_a_stream_without_remote_address_latches_onto_the_first_sender(
    virtual_loop: VirtualClockLoop,
):
    async def scenario() -> tuple[Collector, Collector, int]:
        caller = await open_peer(virtual_loop)
        stranger = await open_peer(virtual_loop)
        engine = MediaEngine(LOW, HIGH)
        await engine.start()
        stream_id = await engine.open_stream(LOCAL, None, None, "PCMA", 8, TONE)
        port = engine.local_port(stream_id)
        await asyncio.sleep(0.1)
        sent_before_latching = engine.stats(stream_id).packets_sent
        assert caller.transport is not None and stranger.transport is not None
        caller.transport.sendto(bytes(RtpPacket(8, 1, 160, 0xC0FFEE, b"\xd5" * 160)), (LOCAL, port))
        await caller.wait_for(5)
        # Once latched, another source cannot redirect the stream.
        stranger.transport.sendto(bytes(RtpPacket(8, 1, 1, 0xBAD, b"\xd5")), (LOCAL, port))
        await caller.wait_for(8)
        await engine.stop()
        return caller, stranger, sent_before_latching

    caller, stranger, sent_before_latching = run(virtual_loop, scenario())
    assert sent_before_latching == 0
    assert stranger.datagrams == []
    packets = [RtpPacket.parse(data) for _, data, _ in caller.datagrams]
    assert all(p.payload_type == 8 for p in packets)
    assert [p.marker for p in packets[:2]] == [True, False]
    # The prompt starts from its beginning when the caller is first heard.
    assert packets[0].payload == g711.alaw_encode(TONE[:160])


def test_stats_count_received_ignored_and_invalid_datagrams(virtual_loop: VirtualClockLoop):
    async def scenario() -> Any:
        caller = await open_peer(virtual_loop)
        stranger = await open_peer(virtual_loop)
        engine = MediaEngine(LOW, HIGH)
        await engine.start()
        stream_id = await engine.open_stream(LOCAL, None, None, "PCMU", 0, TONE)
        port = engine.local_port(stream_id)
        assert caller.transport is not None and stranger.transport is not None
        for seq in range(4):
            caller.transport.sendto(
                bytes(RtpPacket(0, seq, 0, 0xC0FFEE, b"\xff" * 160)), (LOCAL, port)
            )
        stranger.transport.sendto(bytes(RtpPacket(0, 1, 1, 0xBAD, b"\xff" * 160)), (LOCAL, port))
        caller.transport.sendto(b"\x00garbage", (LOCAL, port))
        await asyncio.sleep(0.11)
        stats = engine.stats(stream_id)
        await engine.stop()
        return stats, caller.port

    stats, caller_port = run(virtual_loop, scenario())
    assert stats.latched and stats.remote_addr == (LOCAL, caller_port)
    assert (stats.packets_received, stats.octets_received) == (4, 640)
    assert (stats.packets_ignored, stats.packets_invalid) == (1, 1)
    assert stats.remote_ssrc == 0xC0FFEE
    assert stats.packets_sent == 5  # 110 ms of loop time since it latched


def test_one_clock_serves_all_streams(virtual_loop: VirtualClockLoop):
    async def scenario() -> tuple[list[Collector], MediaEngine]:
        peers = [await open_peer(virtual_loop) for _ in range(4)]
        engine = MediaEngine(LOW, HIGH)
        for i, peer in enumerate(peers):
            await engine.open_stream(
                LOCAL, None, (LOCAL, peer.port), ("PCMU", "PCMA")[i % 2], 8 * (i % 2), TONE
            )
        await engine.start()
        tasks_before = len(asyncio.all_tasks())
        await asyncio.sleep(0.21)
        tasks_during = len(asyncio.all_tasks())
        await engine.stop()
        assert tasks_during == tasks_before
        return peers, engine

    peers, engine = run(virtual_loop, scenario())
    assert engine.media_tick.ticks == 10
    assert [len(peer.datagrams) for peer in peers] == [10, 10, 10, 10]
    # The four packets of a tick leave at the same loop time.
    assert len({peer.datagrams[4][0] for peer in peers}) == 1


class RecordingTick(MediaTick):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def tick(self, now: float) -> list[tuple[int, bytes, tuple[str, int]]]:
        self.times.append(now)
        return super().tick(now)


def _ticks_around_a_stall(
    loop: VirtualClockLoop, stall_s: float
) -> tuple[MediaEngine, list[float], float]:
    async def scenario() -> tuple[MediaEngine, list[float], float]:
        media_tick = RecordingTick()
        engine = MediaEngine(LOW, HIGH, media_tick=media_tick, max_late_ticks=5)
        start = loop.time()
        await engine.start()
        # Something blocks the loop for stall_s just after the first tick.
        loop.call_at(start + 0.031, loop.advance, stall_s)
        await asyncio.sleep(stall_s + 0.2)  # until start + stall + 200 ms: a fixed deadline
        await engine.stop()
        return engine, [t - start for t in media_tick.times], stall_s

    return run(loop, scenario())


def test_a_short_stall_is_caught_up_without_losing_ticks(virtual_loop: VirtualClockLoop):
    engine, times, stall_s = _ticks_around_a_stall(virtual_loop, 0.05)
    # Ticks due at 40, 60 and 80 ms all run at 81 ms, then the grid resumes.
    assert times[:6] == pytest.approx([0.02, 0.081, 0.081, 0.081, 0.1, 0.12], abs=1e-9)
    assert engine.overruns == 0
    # The test slept until 250 ms: every tick due by then ran, none was lost.
    assert len(times) == 12
    assert times[-1] == pytest.approx(0.24, abs=1e-9)


def test_a_long_stall_counts_an_overrun_and_skips_ahead_on_the_same_grid(
    virtual_loop: VirtualClockLoop,
):
    engine, times, _ = _ticks_around_a_stall(virtual_loop, 0.5)
    assert engine.overruns == 1
    assert engine.ticks_skipped == 24
    # One tick when the loop wakes at 531 ms, then back on the 20 ms grid, not 531 + 20k.
    assert times[:4] == pytest.approx([0.02, 0.531, 0.54, 0.56], abs=1e-9)


def test_closing_a_stream_releases_its_port_and_stops_its_packets(virtual_loop: VirtualClockLoop):
    async def scenario() -> None:
        peer = await open_peer(virtual_loop)
        engine = MediaEngine(LOW, HIGH)
        await engine.start()
        stream_id = await engine.open_stream(LOCAL, None, (LOCAL, peer.port), "PCMU", 0, TONE)
        port = engine.local_port(stream_id)
        assert engine.ports.is_allocated(port)
        await asyncio.sleep(0.11)
        engine.close_stream(stream_id)
        engine.close_stream(stream_id)  # idempotent
        sent = len(peer.datagrams)
        await asyncio.sleep(0.1)
        assert len(peer.datagrams) == sent == 5
        assert not engine.ports.is_allocated(port)
        with pytest.raises(KeyError):
            engine.stats(stream_id)
        await engine.stop()

    run(virtual_loop, scenario())


def test_server_flow_allocate_then_open_on_that_port_then_close(virtual_loop: VirtualClockLoop):
    async def scenario() -> None:
        engine = MediaEngine(LOW, HIGH)
        await engine.start()
        for _ in range(3):  # a port the kernel says is busy is skipped
            port = engine.allocate_port()
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind((LOCAL, port))
            except OSError:
                engine.release_port(port)
                continue
            finally:
                probe.close()
            break
        stream_id = await engine.open_stream(LOCAL, port, None, "PCMU", 0, TONE)
        assert engine.local_port(stream_id) == port
        engine.close_stream(stream_id)
        assert not engine.ports.is_allocated(port)
        await engine.stop()

    run(virtual_loop, scenario())


def test_a_port_held_by_another_socket_is_skipped(virtual_loop: VirtualClockLoop):
    async def scenario() -> None:
        engine = MediaEngine(LOW, HIGH)
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            first = engine.ports.allocate()
            engine.ports.release(first)  # it will come round again only after all others
            for _ in range(engine.ports.available - 1):
                engine.ports.release(engine.ports.allocate())
            # Now `first` is next in line; hold it with a foreign socket.
            busy.bind((LOCAL, first))
            stream_id = await engine.open_stream(LOCAL, None, None, "PCMU", 0, TONE)
            assert engine.local_port(stream_id) != first
            assert not engine.ports.is_allocated(first)
            await engine.stop()
        finally:
            busy.close()

    run(virtual_loop, scenario())


def test_stop_closes_every_stream_and_returns_their_ports(virtual_loop: VirtualClockLoop):
    async def scenario() -> MediaEngine:
        engine = MediaEngine(LOW, HIGH)
        await engine.start()
        for _ in range(3):
            await engine.open_stream(LOCAL, None, None, "PCMU", 0, TONE)
        await engine.stop()
        return engine

    engine = run(virtual_loop, scenario())
    assert engine.ports.in_use == 0
    assert len(engine.media_tick) == 0


def test_a_bad_codec_leaves_no_socket_or_port_behind(virtual_loop: VirtualClockLoop):
    async def scenario() -> MediaEngine:
        engine = MediaEngine(LOW, HIGH)
        with pytest.raises(ValueError, match="codec 'G729'"):
            await engine.open_stream(LOCAL, None, None, "G729", 18, TONE)
        return engine

    engine = run(virtual_loop, scenario())
    assert engine.ports.in_use == 0


def test_port_zero_lets_the_kernel_pick_and_leaves_the_range_alone(virtual_loop: VirtualClockLoop):
    async def scenario() -> None:
        engine = MediaEngine(LOW, HIGH)
        stream_id = await engine.open_stream(LOCAL, 0, None, "PCMU", 0, TONE)
        assert engine.local_port(stream_id) != 0
        assert engine.ports.in_use == 0
        engine.close_stream(stream_id)
        assert engine.ports.in_use == 0
        await engine.stop()

    run(virtual_loop, scenario())


# ------------------------------------------------------------------------ RTCP


def test_a_stream_reports_from_its_rtcp_port_and_says_bye_when_closed(
    virtual_loop: VirtualClockLoop,
):
    async def scenario() -> tuple[Collector, int, int]:
        peer, peer_rtcp = await open_peer(virtual_loop), await open_peer(virtual_loop)
        engine = MediaEngine(LOW, HIGH)
        stream_id = await engine.open_stream(
            LOCAL, None, (LOCAL, peer.port), "PCMU", 0, TONE, rtcp_addr=(LOCAL, peer_rtcp.port)
        )
        port = engine.local_port(stream_id)
        await engine.start()
        await peer_rtcp.wait_for(1, timeout_s=4.0)  # RFC 3550 §6.2: the first within ~3 s
        engine.close_stream(stream_id)
        await peer_rtcp.wait_for(2)
        await engine.stop()
        return peer_rtcp, port, stream_id

    peer_rtcp, port, _ = run(virtual_loop, scenario())
    (_, report, source), (_, goodbye, _) = peer_rtcp.datagrams[:2]
    assert source == (LOCAL, port + 1)  # RFC 3550 §11: the odd port above the RTP one
    assert isinstance(parse_compound(report)[0], SenderReport)
    assert isinstance(parse_compound(goodbye)[-1], Bye)


def test_a_peers_report_on_our_rtcp_port_reaches_the_streams_stats(
    virtual_loop: VirtualClockLoop,
):
    async def scenario() -> tuple[int, int]:
        peer = await open_peer(virtual_loop)
        engine = MediaEngine(LOW, HIGH)
        stream_id = await engine.open_stream(LOCAL, None, (LOCAL, peer.port), "PCMU", 0, TONE)
        await engine.start()
        assert peer.transport is not None
        block = ReportBlock(engine.stats(stream_id).ssrc, fraction_lost=128, jitter=40)
        peer.transport.sendto(
            bytes(ReceiverReport(0x9EE2, (block,))), (LOCAL, engine.local_port(stream_id) + 1)
        )
        await asyncio.sleep(0.1)
        stats = engine.stats(stream_id)
        await engine.stop()
        return stats.rtcp_received, stats.remote_fraction_lost  # type: ignore[return-value]

    received, fraction = run(virtual_loop, scenario())
    assert received == 1
    assert fraction == 0.5
