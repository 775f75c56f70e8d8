"""RTCP on the tick: each leg reports on schedule, hears the peer's reports, says BYE."""

from __future__ import annotations

import random

import numpy as np
import pytest

from media_core import g711
from media_core.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    ntp_from_unix,
    ntp_middle32,
    parse_compound,
)
from media_core.rtp import RtpPacket
from media_core.tick import MediaTick
from media_core.tone import tone_pcm

PEER = ("192.0.2.10", 4000)
PEER_RTCP = ("192.0.2.10", 4001)
OFFSET_S = 1_700_000_000.0  # Unix time when the tick's clock reads 0


def make_tick() -> MediaTick:
    return MediaTick(rng=random.Random(3), cname="leg@test", unix_offset_s=OFFSET_S)


def run(
    tick: MediaTick, seconds: float, start: float = 0.0, feed=None
) -> list[tuple[float, tuple]]:
    """Tick every 20 ms; return (time, datagram) for every RTCP datagram sent."""
    reports = []
    for index in range(int(seconds / 0.02)):
        now = start + index * 0.02
        if feed is not None:
            feed(index, now)
        tick.tick(now)
        reports += [(now, item) for item in tick.take_rtcp()]
    return reports


def test_a_sending_leg_sends_sender_reports_to_the_peers_rtp_port_plus_one():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, tone_pcm(440, 1000), PEER, ssrc=0xABC)
    reports = run(tick, 20.0)
    assert len(reports) >= 3
    times = [now for now, _ in reports]
    # RFC 3550 §6.2: half the 5 s minimum first, then 5 s, each randomised
    # by [0.5, 1.5] / (e - 3/2); checked at the tick's 100 ms resolution.
    assert 0.5 * 2.5 / 1.2183 <= times[0] <= 1.5 * 2.5 / 1.2183 + 0.1
    for earlier, later in zip(times, times[1:], strict=False):
        assert 0.5 * 5 / 1.2183 <= later - earlier <= 1.5 * 5 / 1.2183 + 0.1
    now, (stream_id, data, destination) = reports[1]
    assert (stream_id, destination) == (leg, PEER_RTCP)
    sr, sdes = parse_compound(data)
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert sr.ssrc == 0xABC
    assert sdes.chunks[0].cname == "leg@test"
    assert sr.packet_count == round(now / 0.02) + 1  # every tick up to this one sent a packet
    assert sr.octet_count == 160 * sr.packet_count
    # The NTP time and the RTP time name the same instant (RFC 3550 §6.4.1).
    assert sr.ntp_timestamp == pytest.approx(ntp_from_unix(OFFSET_S + now), abs=2**20)
    assert tick.stats(leg).rtcp_sent == len(reports)


def test_a_leg_without_an_address_reports_nothing():
    tick = make_tick()
    tick.add_stream("PCMU", 0, None, None)
    assert run(tick, 12.0) == []


def test_the_report_block_carries_the_loss_the_receiver_counted():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, None, PEER)
    frame = g711.ulaw_encode(np.zeros(160, dtype=np.int16))

    def feed(index: int, now: float) -> None:
        if index % 10 == 9:  # every tenth packet is lost on the way
            return
        packet = RtpPacket(0, 100 + index, 160 * index, 0x5EE, frame)
        tick.on_rtp_received(leg, bytes(packet), PEER, now)

    reports = run(tick, 12.0, feed=feed)
    blocks = [
        p.reports
        for _, (_, d, _) in reports
        for p in parse_compound(d)
        if isinstance(p, (SenderReport, ReceiverReport)) and p.reports
    ]
    last = blocks[-1][0]
    assert last.ssrc == 0x5EE
    assert last.fraction_lost == pytest.approx(256 // 10, abs=3)  # 10% of 256
    assert last.cumulative_lost > 0


def test_the_peers_receiver_report_gives_the_round_trip_and_what_it_heard():
    tick = make_tick()
    leg = tick.add_stream(
        "PCMU", 0, tone_pcm(440, 1000), PEER, ssrc=0xABC, latch_hosts=frozenset({"192.0.2.10"})
    )
    (sent_at, (_, data, _)), *_ = run(tick, 4.0)
    sr = parse_compound(data)[0]
    assert isinstance(sr, SenderReport)
    # The peer answers 0.3 s after our SR arrived, which took 0.05 s each way.
    arrival = sent_at + 0.4
    block = ReportBlock(
        0xABC,
        fraction_lost=64,
        cumulative_lost=3,
        extended_highest_seq=200,
        jitter=80,
        last_sr=ntp_middle32(sr.ntp_timestamp),
        delay_since_last_sr=int(0.3 * 65536),
    )
    rr = bytes(ReceiverReport(0x9EE2, (block,)))
    assert tick.on_rtcp_received(leg, rr, PEER_RTCP, arrival)
    stats = tick.stats(leg)
    assert stats.round_trip_s == pytest.approx(0.1, abs=0.001)
    assert stats.remote_fraction_lost == pytest.approx(0.25)
    assert stats.remote_jitter_ms == pytest.approx(10.0)  # 80 units at 8 kHz
    assert stats.rtcp_received == 1


def test_reports_from_an_address_signalling_did_not_vouch_for_are_ignored():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, None, PEER, latch_hosts=frozenset({"192.0.2.10"}))
    rr = bytes(ReceiverReport(0x9EE2, ()))
    assert not tick.on_rtcp_received(leg, rr, ("203.0.113.66", 5001), 1.0)
    assert tick.stats(leg).rtcp_received == 0


def test_our_reports_follow_the_peers_reports_to_their_source():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, tone_pcm(440, 1000), PEER)
    behind_nat = ("192.0.2.10", 61_001)
    assert tick.on_rtcp_received(leg, bytes(ReceiverReport(0x9EE2, ())), behind_nat, 0.0)
    reports = run(tick, 4.0)
    assert {destination for _, (_, _, destination) in reports} == {behind_nat}


def test_garbage_on_the_rtcp_port_is_not_taken():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, None, PEER)
    assert not tick.on_rtcp_received(leg, b"\x00\x01garbage", PEER_RTCP, 1.0)
    assert not tick.on_rtcp_received(999, bytes(ReceiverReport(1, ())), PEER_RTCP, 1.0)


def test_a_leg_that_ends_says_bye_with_its_final_counts():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, tone_pcm(440, 1000), PEER, ssrc=0xABC)
    run(tick, 1.0)
    tick.take_rtcp()
    tick.remove_stream(leg)
    ((stream_id, data, destination),) = tick.take_rtcp()
    assert (stream_id, destination) == (leg, PEER_RTCP)
    packets = parse_compound(data)
    assert isinstance(packets[0], SenderReport) and packets[0].packet_count == 50
    assert isinstance(packets[-1], Bye) and packets[-1].ssrcs == (0xABC,)


def test_a_leg_that_never_sent_anything_leaves_without_a_bye():
    tick = make_tick()
    leg = tick.add_stream("PCMU", 0, None, None)
    tick.remove_stream(leg)
    assert tick.take_rtcp() == []  # RFC 3550 §6.3.7
