"""Periodic RTCP for one call leg: schedule, SR/RR out, reports in, round trip, BYE."""

from __future__ import annotations

import math
import random

import pytest

from media_core.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    ntp_from_unix,
    ntp_middle32,
    parse_compound,
    unix_from_ntp,
)
from media_core.rtcp_interval import COMPENSATION
from media_core.rtcp_session import RtcpInfo, RtcpSession
from media_core.rtp_stats import ReceiverStats

START_S = 1000.0
# unix = now_s + offset: START_S maps to a whole second, so NTP stamps are exact.
UNIX_OFFSET_S = 1_700_000_000.0 - START_S
A_SSRC = 0x0A0A0A0A
B_SSRC = 0x0B0B0B0B
C_SSRC = 0x0C0C0C0C
FRAME = 160  # G.711 20 ms, in timestamp units


class FixedRandom(random.Random):
    """A Random whose random() is always the same: every interval is T / (e - 1.5) * factor."""

    def __init__(self, value: float = 0.5) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def session(
    ssrc: int = A_SSRC,
    cname: str = "a@hotline",
    *,
    now_s: float = START_S,
    rng: random.Random | None = None,
    unix_offset_s: float = UNIX_OFFSET_S,
) -> RtcpSession:
    return RtcpSession(
        ssrc,
        cname,
        now_s=now_s,
        rng=rng if rng is not None else FixedRandom(),
        unix_offset_s=unix_offset_s,
    )


def feed(
    stats: ReceiverStats, ssrc: int, seqs: list[int], *, start_s: float, late_s: dict[int, float]
) -> None:
    """Packets ``seqs`` sent every 20 ms; ``late_s`` delays some arrivals."""
    for seq in seqs:
        arrival = start_s + 0.02 * seq + late_s.get(seq, 0.0)
        stats.on_packet(seq, FRAME * seq, arrival, FRAME, ssrc=ssrc)


def first(data: bytes) -> SenderReport | ReceiverReport:
    packet = parse_compound(data)[0]
    assert isinstance(packet, (SenderReport, ReceiverReport))
    return packet


def build_rr(sess: RtcpSession, now_s: float, stats: ReceiverStats | None = None) -> bytes:
    return sess.build(
        now_s, packets_sent=0, octets_sent=0, rtp_timestamp_now=0, receiver_stats=stats
    )


# ------------------------------------------------------------------ schedule


def test_the_first_report_is_due_after_the_randomised_half_minimum() -> None:
    # RFC 3550 §6.3.2: initial interval 2.5 s, randomised, over e - 3/2.
    assert session(rng=FixedRandom(0.5)).next_due_s == pytest.approx(START_S + 2.5 / COMPENSATION)
    for seed in range(200):
        due_s = session(rng=random.Random(seed)).next_due_s
        assert START_S + 1.25 / COMPENSATION <= due_s < START_S + 3.75 / COMPENSATION


def test_due_is_a_compare_against_next_due_s() -> None:
    sess = session()
    assert not sess.due(START_S)
    assert not sess.due(sess.next_due_s - 1e-6)
    assert sess.due(sess.next_due_s)
    assert sess.due(sess.next_due_s + 10.0)


def test_building_a_report_schedules_the_next_a_randomised_tmin_later() -> None:
    sess = session(rng=FixedRandom(0.5))
    assert sess.initial and sess.last_sent_s is None
    now_s = sess.next_due_s + 0.013  # the tick noticed a little late
    build_rr(sess, now_s)
    assert sess.reports_sent == 1
    assert sess.last_sent_s == now_s
    assert not sess.initial
    # RFC 3550 §6.3.6: tn = tc + T, T = 5 s (two-party G.711) / (e - 3/2).
    assert sess.next_due_s == pytest.approx(now_s + 5.0 / COMPENSATION)
    assert not sess.due(now_s + 0.02)


def test_driven_from_a_20_ms_tick_reports_go_out_at_randomised_intervals() -> None:
    sess = session(rng=random.Random(3550))
    stats = ReceiverStats()
    sent_at: list[float] = []
    for tick in range(3000):  # one minute
        now_s = START_S + tick * 0.02
        stats.on_packet(tick & 0xFFFF, tick * FRAME, now_s, FRAME, ssrc=B_SSRC)
        if sess.due(now_s):
            build = sess.build(
                now_s,
                packets_sent=tick,
                octets_sent=tick * FRAME,
                rtp_timestamp_now=tick * FRAME,
                receiver_stats=stats,
            )
            assert isinstance(first(build), SenderReport) == (tick > 0)
            sent_at.append(now_s)
    assert START_S + 1.25 / COMPENSATION <= sent_at[0] < START_S + 3.75 / COMPENSATION + 0.02
    gaps = [later - earlier for earlier, later in zip(sent_at, sent_at[1:], strict=False)]
    assert gaps
    assert all(2.5 / COMPENSATION <= gap < 7.5 / COMPENSATION + 0.02 for gap in gaps)
    assert len(set(round(gap, 2) for gap in gaps)) > 1  # randomised, not a fixed period
    assert sess.reports_sent == len(sent_at)
    assert sess.members == 2


def test_members_count_the_peer_while_it_is_heard_and_not_gone() -> None:
    a, b = session(A_SSRC), session(B_SSRC, "b@hotline")
    assert a.members == 1
    a.on_rtcp(build_rr(b, START_S), START_S)
    assert a.members == 2
    a.on_rtcp(b.bye(START_S + 1.0) or b"", START_S + 1.0)
    assert a.members == 1


def test_receiving_rtp_from_the_peer_makes_it_a_member() -> None:
    sess = session()
    stats = ReceiverStats()
    feed(stats, B_SSRC, list(range(1, 6)), start_s=START_S, late_s={})
    build_rr(sess, START_S + 1.0, stats)
    assert sess.members == 2


# --------------------------------------------------------------- SR or RR


def test_a_leg_that_has_sent_no_rtp_sends_an_rr_with_sdes_cname() -> None:
    sess = session(cname="ivr-7@hotline.example")
    packets = parse_compound(build_rr(sess, START_S + 2.0))
    assert len(packets) == 2
    rr, sdes = packets
    assert rr == ReceiverReport(A_SSRC, ())
    assert isinstance(sdes, SourceDescription)
    assert [(chunk.ssrc, chunk.cname) for chunk in sdes.chunks] == [
        (A_SSRC, "ivr-7@hotline.example")
    ]


def test_sr_while_sending_and_for_one_interval_after_then_rr() -> None:
    sess = session()

    def kind(now_s: float, packets_sent: int) -> type:
        data = sess.build(
            now_s, packets_sent=packets_sent, octets_sent=160 * packets_sent, rtp_timestamp_now=0
        )
        return type(first(data))

    assert kind(START_S + 2.0, 100) is SenderReport
    assert kind(START_S + 7.0, 350) is SenderReport
    # RFC 3550 §6.4: nothing sent this interval, but something the one before.
    assert kind(START_S + 12.0, 350) is SenderReport
    assert kind(START_S + 17.0, 350) is ReceiverReport
    assert kind(START_S + 22.0, 351) is SenderReport


def test_the_caller_may_say_whether_it_sent() -> None:
    sess = session()
    data = sess.build(
        START_S + 2.0,
        packets_sent=0,
        octets_sent=0,
        rtp_timestamp_now=0,
        we_sent_since_last=True,
    )
    assert isinstance(first(data), SenderReport)
    quiet = session()
    data = quiet.build(
        START_S + 2.0,
        packets_sent=500,
        octets_sent=80_000,
        rtp_timestamp_now=0,
        we_sent_since_last=False,
    )
    assert isinstance(first(data), ReceiverReport)


def test_the_sr_carries_our_counts_and_one_instant_in_ntp_and_rtp_time() -> None:
    sess = session()
    data = sess.build(
        START_S + 3.25, packets_sent=150, octets_sent=24_000, rtp_timestamp_now=123_456
    )
    sr = first(data)
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == A_SSRC
    assert sr.packet_count == 150
    assert sr.octet_count == 24_000
    # RFC 3550 §6.4.1: the NTP and RTP timestamps name the same instant.
    assert sr.rtp_timestamp == 123_456
    assert sr.ntp_timestamp == ntp_from_unix(1_700_000_003.25)
    assert unix_from_ntp(sr.ntp_timestamp) == 1_700_000_003.25
    assert sr.reports == ()  # nothing received, nothing to report


def test_sender_counts_and_rtp_timestamp_wrap_modulo_2_to_the_32() -> None:
    sess = session()
    data = sess.build(
        START_S + 2.0,
        packets_sent=2**32 + 5,
        octets_sent=2**33 + 800,
        rtp_timestamp_now=2**32 + 7,
    )
    sr = first(data)
    assert isinstance(sr, SenderReport)
    assert (sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (5, 800, 7)


# ------------------------------------------------------- reception reports


def test_the_report_block_carries_the_loss_and_jitter_the_receiver_measured() -> None:
    a, b = session(A_SSRC), session(B_SSRC, "b@hotline")
    stats = ReceiverStats()
    # Seq 1 is probation (A.1); 2..10 expected, 5 lost; 7 arrives 8 ms (64 units) late.
    feed(stats, A_SSRC, [1, 2, 3, 4, 6, 7, 8, 9, 10], start_s=START_S, late_s={7: 0.008})
    # A.8: |D| is 64 for 6->7 and 7->8, else 0: J = 4, 7.75, 7.27, 6.81.
    assert stats.jitter == pytest.approx(7.75 * (15 / 16) ** 2)
    rr = build_rr(b, START_S + 0.5, stats)
    report = first(rr)
    assert isinstance(report, ReceiverReport)
    assert report.reports == (
        ReportBlock(
            ssrc=A_SSRC,
            fraction_lost=256 * 1 // 9,
            cumulative_lost=1,
            extended_highest_seq=10,
            jitter=6,
            last_sr=0,
            delay_since_last_sr=0,
        ),
    )
    # ...and A reads it as what the peer says about A's stream.
    info = a.on_rtcp(rr, START_S + 0.6)
    assert info is not None
    assert info.report_block == report.reports[0]
    assert a.remote_report == report.reports[0]
    assert a.remote_fraction_lost == 28 / 256
    assert a.remote_cumulative_lost == 1
    assert a.remote_jitter_ms == 0.75  # 6 units at 8 kHz
    assert a.round_trip_s is None  # LSR 0: B never had an SR from A
    assert info.round_trip_s is None


def test_a_round_trip_from_our_sr_and_the_peers_lsr_dlsr() -> None:
    a = session(A_SSRC, "a@hotline")
    # B runs on its own monotonic clock with its own offset; only A's clock matters.
    b = session(B_SSRC, "b@hotline", now_s=200.0, unix_offset_s=5_000.0)
    b_stats = ReceiverStats()
    feed(b_stats, A_SSRC, list(range(1, 20)), start_s=199.6, late_s={})

    sr = a.build(START_S + 10.0, packets_sent=19, octets_sent=19 * 160, rtp_timestamp_now=3040)
    sr_ntp = first(sr)
    assert isinstance(sr_ntp, SenderReport)
    # 0.1 s later at B: B remembers the SR for its next block.
    info = b.on_rtcp(sr, 200.125, b_stats)
    assert info == RtcpInfo(
        remote_ssrc=A_SSRC,
        cname="a@hotline",
        sender_report=True,
        report_block=None,
        round_trip_s=None,
        bye=False,
        bye_reason=None,
    )
    assert (b.remote_ssrc, b.remote_cname) == (A_SSRC, "a@hotline")
    # B reports 1.5 s after the SR arrived.
    rr = build_rr(b, 201.625, b_stats)
    block = first(rr).reports[0]
    assert block.ssrc == A_SSRC
    assert block.last_sr == ntp_middle32(sr_ntp.ntp_timestamp)
    assert block.delay_since_last_sr == int(1.5 * 65536)
    # 0.15 s back to A: round trip 0.1 + 0.15 = 0.25 s; B's 1.5 s hold is not counted.
    info = a.on_rtcp(rr, START_S + 11.75)
    assert info is not None
    assert info.round_trip_s == pytest.approx(0.25, abs=1 / 65536)
    assert a.round_trip_s == info.round_trip_s


def test_an_sr_from_another_source_than_the_one_received_is_not_echoed() -> None:
    b = session(B_SSRC)
    b_stats = ReceiverStats()
    feed(b_stats, A_SSRC, list(range(1, 6)), start_s=START_S, late_s={})
    stranger = session(C_SSRC, "c@elsewhere")
    sr = stranger.build(START_S + 2.0, packets_sent=9, octets_sent=9, rtp_timestamp_now=9)
    info = b.on_rtcp(sr, START_S + 2.1, b_stats)
    assert info is not None and info.sender_report
    block = first(build_rr(b, START_S + 3.0, b_stats)).reports[0]
    assert block.ssrc == A_SSRC
    assert (block.last_sr, block.delay_since_last_sr) == (0, 0)


def test_blocks_about_other_sources_leave_our_figures_alone() -> None:
    a, b = session(A_SSRC), session(B_SSRC)
    stats = ReceiverStats()
    feed(stats, 0xDEADBEEF, [1, 2, 3, 5], start_s=START_S, late_s={})
    info = a.on_rtcp(build_rr(b, START_S + 1.0, stats), START_S + 1.1)
    assert info is not None and info.remote_ssrc == B_SSRC
    assert info.report_block is None
    assert a.remote_report is None
    assert a.remote_fraction_lost is None
    assert a.remote_jitter_ms is None


def test_our_own_reports_looped_back_are_not_taken_for_the_peer() -> None:
    a = session(A_SSRC)
    own = a.build(START_S + 2.0, packets_sent=5, octets_sent=800, rtp_timestamp_now=0)
    info = a.on_rtcp(own, START_S + 2.01)
    assert info is not None
    assert info.remote_ssrc is None and info.cname is None and not info.sender_report
    assert a.remote_ssrc is None
    assert a.members == 1


def test_counters_of_reports_sent_and_received() -> None:
    a, b = session(A_SSRC), session(B_SSRC)
    for k in range(3):
        assert a.on_rtcp(build_rr(b, START_S + 5.0 * k), START_S + 5.0 * k) is not None
    build_rr(a, START_S + 3.0)
    assert (a.reports_sent, a.reports_received, a.invalid) == (1, 3, 0)
    assert b.reports_sent == 3


# ------------------------------------------------------------ average size


def test_the_initial_average_is_the_size_of_our_first_sr_with_one_block() -> None:
    for cname in ["", "a", "ab", "abc", "abcd", "a@hotline.example"]:
        sess = session(A_SSRC, cname)
        stats = ReceiverStats()
        feed(stats, B_SSRC, [1, 2, 3], start_s=START_S, late_s={})
        data = sess.build(
            START_S + 2.0, packets_sent=1, octets_sent=1, rtp_timestamp_now=0, receiver_stats=stats
        )
        assert len(first(data).reports) == 1
        assert len(data) + 28 == session(A_SSRC, cname).avg_rtcp_size_octets


def test_packets_sent_and_received_move_the_average_by_a_sixteenth() -> None:
    a, b = session(A_SSRC, "a"), session(B_SSRC, "a-much-longer-canonical-name@example.org")
    before = a.avg_rtcp_size_octets
    sent = build_rr(a, START_S + 2.0)
    after_send = before * 15 / 16 + (len(sent) + 28) / 16
    assert a.avg_rtcp_size_octets == pytest.approx(after_send)
    received = build_rr(b, START_S + 2.0)
    a.on_rtcp(received, START_S + 2.1)
    assert a.avg_rtcp_size_octets == pytest.approx(after_send * 15 / 16 + (len(received) + 28) / 16)
    assert len(received) != len(sent)


# ---------------------------------------------------------------------- BYE


def test_bye_ends_the_leg_with_rr_sdes_bye_and_nothing_is_due_after() -> None:
    a, b = session(A_SSRC, "a@hotline"), session(B_SSRC)
    build_rr(a, START_S + 2.0)
    data = a.bye(START_S + 4.0, reason="call ended")
    assert data is not None
    packets = parse_compound(data)
    assert [type(packet) for packet in packets] == [ReceiverReport, SourceDescription, Bye]
    assert packets[2] == Bye((A_SSRC,), "call ended")
    assert a.closed and a.next_due_s == math.inf
    assert not a.due(START_S + 1e9)
    assert a.reports_sent == 2

    assert not b.remote_bye
    info = b.on_rtcp(data, START_S + 4.05)
    assert info is not None and info.bye and info.bye_reason == "call ended"
    assert b.remote_bye and b.remote_bye_reason == "call ended"


def test_bye_with_our_counts_leads_with_a_final_sr() -> None:
    a = session(A_SSRC)
    stats = ReceiverStats()
    feed(stats, B_SSRC, [1, 2, 3, 4], start_s=START_S, late_s={})
    data = a.bye(
        START_S + 30.0,
        packets_sent=1500,
        octets_sent=240_000,
        rtp_timestamp_now=240_000,
        receiver_stats=stats,
    )
    assert data is not None
    sr, _, goodbye = parse_compound(data)
    assert isinstance(sr, SenderReport)
    assert (sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (1500, 240_000, 240_000)
    assert [block.ssrc for block in sr.reports] == [B_SSRC]
    assert goodbye == Bye((A_SSRC,), None)


def test_no_bye_from_a_leg_that_never_sent_rtp_or_rtcp() -> None:
    # RFC 3550 §6.3.7: such a participant MUST NOT send a BYE.
    a = session()
    assert a.bye(START_S + 1.0, reason="never mind") is None
    assert a.closed and not a.due(START_S + 100.0)
    assert a.reports_sent == 0


def test_a_long_reason_is_cut_to_255_octets_on_a_character_boundary() -> None:
    a = session()
    data = a.bye(START_S + 1.0, reason="é" * 200, packets_sent=1, octets_sent=160)
    assert data is not None
    goodbye = parse_compound(data)[-1]
    assert isinstance(goodbye, Bye)
    assert goodbye.reason == "é" * 127  # 254 octets; half a character is dropped


# ------------------------------------------------------------------ garbage


def valid_rr() -> bytes:
    stats = ReceiverStats()
    feed(stats, A_SSRC, [1, 2, 3], start_s=START_S, late_s={})
    return build_rr(session(B_SSRC), START_S + 2.0, stats)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        bytes(3),
        bytes(64),
        b"\x80\x00\x12\x34" + bytes(168),  # an RTP packet (PT 0) on the RTCP port
        bytes.fromhex("81ca0001") + bytes(4),  # SDES first: not a compound packet
        bytes.fromhex("41c90001") + bytes(4),  # version 1
        valid_rr()[:-1],  # truncated
        valid_rr()[:30],  # truncated inside the report block
        valid_rr() + b"\x00",  # a stray octet after the last packet
    ],
)
def test_invalid_datagrams_are_counted_not_raised(data: bytes) -> None:
    a = session(A_SSRC)
    stats = ReceiverStats()
    before = a.avg_rtcp_size_octets
    assert a.on_rtcp(data, START_S + 1.0, stats) is None
    assert (a.invalid, a.reports_received) == (1, 0)
    assert a.avg_rtcp_size_octets == before
    assert a.remote_ssrc is None


def test_mangled_reports_never_raise() -> None:
    a = session(A_SSRC)
    stats = ReceiverStats()
    feed(stats, B_SSRC, [1, 2, 3], start_s=START_S, late_s={})
    original = bytearray(valid_rr())
    rng = random.Random(6)
    results = []
    for _ in range(500):
        mangled = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
        results.append(a.on_rtcp(bytes(mangled[: rng.randint(0, len(mangled))]), START_S, stats))
    assert a.invalid + a.reports_received == 500
    assert a.invalid == results.count(None)
    assert a.invalid > 0 and a.reports_received > 0


# ------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("ssrc", "cname", "clock_rate_hz", "bandwidth_bps"),
    [
        (2**32, "a", 8000, 80_000),
        (-1, "a", 8000, 80_000),
        (1, "x" * 256, 8000, 80_000),
        (1, "a", 0, 80_000),
        (1, "a", 8000, 0),
    ],
)
def test_bad_parameters_are_refused(
    ssrc: int, cname: str, clock_rate_hz: int, bandwidth_bps: int
) -> None:
    with pytest.raises(ValueError):
        RtcpSession(
            ssrc,
            cname,
            now_s=0.0,
            rng=random.Random(0),
            unix_offset_s=0.0,
            clock_rate_hz=clock_rate_hz,
            session_bandwidth_bps=bandwidth_bps,
        )
