"""RTCP, RFC 3550 §6: SR, RR, SDES, BYE over literal bytes; compound validity; NTP; reports."""

from __future__ import annotations

import pytest

from media_core.rtcp import (
    NTP_UNIX_OFFSET_S,
    PT_APP,
    SDES_CNAME,
    Bye,
    RawRtcpPacket,
    ReceiverReport,
    ReportBlock,
    SdesChunk,
    SdesItem,
    SenderInfo,
    SenderReport,
    SourceDescription,
    build_report,
    ntp_from_unix,
    ntp_middle32,
    parse_compound,
    round_trip_delay_s,
    unix_from_ntp,
)
from media_core.rtp_stats import ReceiverStats


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace("|", " "))


# V=2 P=0 RC=1 | PT=200 | length 12 (52 octets)
SR_HEADER = "81 c8 000c"
SENDER_INFO = (
    "11223344"  # SSRC of sender
    "e8f2a3b4 80000000"  # NTP timestamp: 0xe8f2a3b4 s + 0.5 s
    "0001e240"  # RTP timestamp 123456
    "00000064"  # sender's packet count 100
    "00003e80"  # sender's octet count 16000
)
REPORT_BLOCK = (
    "aabbccdd"  # SSRC_1
    "40 fffffe"  # fraction lost 64/256, cumulative lost -2 (24-bit two's complement)
    "00010005"  # extended highest sequence number: 1 cycle, seq 5
    "00000023"  # interarrival jitter 35
    "a3b48000"  # LSR
    "00018000"  # DLSR 1.5 s
)
SR = hexbytes(SR_HEADER + SENDER_INFO + REPORT_BLOCK)

# V=2 P=0 SC=1 | PT=202 | length 6 (28 octets): SSRC, CNAME (type 1, 17 octets), END.
CNAME = b"hotline@192.0.2.1"
SDES = hexbytes("81 ca 0006 11223344 01 11") + CNAME + b"\x00"

# V=2 P=0 SC=1 | PT=203 | length 3: SSRC, reason "done" (length 4), 3 octets of padding.
BYE = hexbytes("81 cb 0003 11223344 04") + b"done" + b"\x00\x00\x00"

# An RR with no report blocks: V=2 P=0 RC=0 | PT=201 | length 1.
EMPTY_RR = hexbytes("80 c9 0001 11223344")


# ------------------------------------------------------------- packets


def test_a_sender_report_is_parsed_field_by_field():
    (sr,) = parse_compound(SR)
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == 0x11223344
    assert sr.ntp_timestamp == 0xE8F2A3B4_80000000
    assert sr.rtp_timestamp == 123456
    assert (sr.packet_count, sr.octet_count) == (100, 16000)
    assert sr.extension == b""
    (block,) = sr.reports
    assert block == ReportBlock(
        ssrc=0xAABBCCDD,
        fraction_lost=64,
        cumulative_lost=-2,
        extended_highest_seq=0x10005,
        jitter=35,
        last_sr=0xA3B48000,
        delay_since_last_sr=0x18000,
    )


def test_each_packet_type_serialises_back_to_the_same_octets():
    for data in (SR, SDES, BYE, EMPTY_RR):
        packets = parse_compound(EMPTY_RR + data) if data is not EMPTY_RR else parse_compound(data)
        assert bytes(packets[-1]) == data


def test_building_a_sender_report_gives_the_literal_octets():
    block = ReportBlock(0xAABBCCDD, 64, -2, 0x10005, 35, 0xA3B48000, 0x18000)
    sr = SenderReport(0x11223344, 0xE8F2A3B4_80000000, 123456, 100, 16000, (block,))
    assert bytes(sr) == SR


def test_sdes_carries_the_cname_padded_to_a_word_with_a_null_end():
    packets = parse_compound(EMPTY_RR + SDES)
    sdes = packets[1]
    assert isinstance(sdes, SourceDescription)
    (chunk,) = sdes.chunks
    assert chunk.ssrc == 0x11223344
    assert chunk.items == (SdesItem(SDES_CNAME, CNAME),)
    assert chunk.cname == "hotline@192.0.2.1"
    # 19 octets of item need one null to end them: 24-octet chunk.
    built = SourceDescription((SdesChunk(0x11223344, (SdesItem(SDES_CNAME, CNAME),)),))
    assert bytes(built) == SDES


def test_an_sdes_item_list_that_fills_a_word_still_gets_a_whole_word_of_nulls():
    chunk = SdesChunk(1, (SdesItem(SDES_CNAME, b"ab"),))  # 4 octets of item
    assert bytes(chunk) == hexbytes("00000001 01 02") + b"ab" + bytes(4)
    (parsed,) = SourceDescription.parse_body(1, memoryview(bytes(chunk))).chunks
    assert parsed == chunk


def test_sdes_with_several_chunks_and_items_round_trips():
    sdes = SourceDescription(
        (
            SdesChunk(1, (SdesItem(1, b"a@b"), SdesItem(6, b"hotline 0.1"))),
            SdesChunk(2, ()),
            SdesChunk(3, (SdesItem(2, "Zoë".encode()),)),
        )
    )
    (_, parsed) = parse_compound(EMPTY_RR + bytes(sdes))
    assert parsed == sdes
    assert parsed.chunks[1].cname is None


def test_bye_carries_its_sources_and_reason():
    (_, bye) = parse_compound(EMPTY_RR + BYE)
    assert bye == Bye((0x11223344,), "done")
    assert bytes(Bye((1, 2))) == hexbytes("82 cb 0002 00000001 00000002")


def test_an_unknown_packet_type_is_kept_as_raw_octets():
    app = hexbytes("81 cc 0002 11223344") + b"NAME"  # APP, subtype 1
    (_, raw) = parse_compound(EMPTY_RR + app)
    assert raw == RawRtcpPacket(PT_APP, 1, hexbytes("11223344") + b"NAME")
    assert bytes(raw) == app


def test_padding_on_the_last_packet_is_counted_and_removed():
    # BYE with P set: one SSRC, then 4 octets of padding whose last octet says 4.
    padded = hexbytes("a1 cb 0002 11223344 00000004")
    (_, bye) = parse_compound(EMPTY_RR + padded)
    assert bye == Bye((0x11223344,))


def test_a_compound_packet_parses_in_order():
    packets = parse_compound(SR + SDES + BYE)
    assert [type(p) for p in packets] == [SenderReport, SourceDescription, Bye]


# ------------------------------------------------------- bad input (A.2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"0 octets is shorter than a 4-octet header"),
        (hexbytes("80c9"), r"2 octets is shorter"),
        (hexbytes("40 c9 0001 11223344"), r"packet 1 at octet 0: version 1, expected 2"),
        (EMPTY_RR + hexbytes("c1 ca 0000"), r"packet 2 at octet 8: version 3, expected 2"),
        (SDES, r"must start with SR \(200\) or RR \(201\), not type 202 \(SDES\)"),
        (BYE + EMPTY_RR, r"not type 203 \(BYE\)"),
        (hexbytes("80 c9 0002 11223344"), r"length field says 12 octets but only 8 remain"),
        (EMPTY_RR + SDES[:-4], r"packet 2 at octet 8: length field says 28 octets but only 24"),
        (EMPTY_RR + b"\x81\xca", r"2 octets after the last RTCP packet are too few"),
        (
            hexbytes("a0 c9 0001 11223344") + SDES,
            r"packet 1 at octet 0: padding bit set on a packet that is not the last",
        ),
        (hexbytes("a0 c9 0001 11223300"), r"padding count 0 does not fit"),
        (hexbytes("a0 c9 0001 11223309"), r"padding count 9 does not fit the 4 octets"),
        (hexbytes("82 c9 0007") + bytes(28), r"RR with 2 report blocks needs 52 octets .* has 28"),
        (hexbytes("81 c8 0006") + bytes(24), r"SR with 1 report blocks needs 48 octets .* has 24"),
        (EMPTY_RR + hexbytes("81 ca 0002 11223344 01 05 61 62"), r"claims 5 octets but only 2"),
        (EMPTY_RR + hexbytes("81 ca 0002 11223344 01 02 61 62"), r"has no END item"),
        (EMPTY_RR + hexbytes("82 ca 0002 11223344 00000000"), r"declares 2 chunks but chunk 2"),
        (EMPTY_RR + hexbytes("81 ca 0003 11223344 00000000 00000000"), r"end at octet 8 of a 12"),
        (EMPTY_RR + hexbytes("82 cb 0001 11223344"), r"BYE with 2 SSRCs needs 8 octets"),
        (EMPTY_RR + hexbytes("81 cb 0002 11223344 09 61 62 63"), r"reason claims 9 octets"),
    ],
)
def test_malformed_compound_packets_are_refused_with_a_precise_reason(data, message):
    with pytest.raises(ValueError, match=message):
        parse_compound(data)


def test_every_truncation_of_a_compound_packet_is_refused_unless_it_ends_a_packet():
    data = SR + SDES + BYE
    boundaries = {len(SR): 1, len(SR + SDES): 2}
    for cut in range(len(data)):
        if cut in boundaries:
            assert len(parse_compound(data[:cut])) == boundaries[cut]
        else:
            with pytest.raises(ValueError):
                parse_compound(data[:cut])


@pytest.mark.parametrize(
    "make",
    [
        lambda: ReportBlock(0, fraction_lost=256),
        lambda: ReportBlock(0, cumulative_lost=0x800000),
        lambda: ReportBlock(0, cumulative_lost=-0x800001),
        lambda: ReportBlock(2**32),
        lambda: ReceiverReport(1, tuple(ReportBlock(i) for i in range(32))),
        lambda: SdesItem(0, b"x"),
        lambda: SdesItem(1, b"x" * 256),
        lambda: Bye((1,), "x" * 256),
        lambda: SenderReport(1, 2**64, 0, 0, 0),
        lambda: RawRtcpPacket(204, 0, b"abc"),
    ],
)
def test_values_that_do_not_fit_their_fields_are_refused(make):
    with pytest.raises(ValueError):
        make()


# ------------------------------------------------------------ NTP time


def test_ntp_timestamps_count_from_1900_with_a_binary_fraction():
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET_S << 32
    assert ntp_from_unix(1.5) == ((NTP_UNIX_OFFSET_S + 1) << 32) | 0x80000000
    assert unix_from_ntp(ntp_from_unix(1_700_000_000.25)) == 1_700_000_000.25


def test_ntp_era_1_after_february_2036_converts_back_to_unix_time():
    rollover_unix_s = 2**32 - NTP_UNIX_OFFSET_S  # 2036-02-07 06:28:16 UTC
    ntp = ntp_from_unix(rollover_unix_s + 10.0)
    assert ntp >> 32 == 10
    assert unix_from_ntp(ntp) == rollover_unix_s + 10.0


def test_the_middle_32_bits_are_lsr_units_of_1_over_65536_s():
    assert ntp_middle32(0xE8F2A3B4_80000000) == 0xA3B48000


def test_round_trip_delay_follows_the_rfc_3550_figure_2_example():
    # RFC 3550 §6.4.1: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
    # DLSR = 0x0005:4000 (5.250 s): delay 6.125 s.
    arrival = 0xB7108000 << 16
    assert round_trip_delay_s(arrival, 0xB7052000, 0x00054000) == 6.125


def test_round_trip_delay_is_unknown_without_an_echoed_sr_or_when_negative():
    assert round_trip_delay_s(0xB7108000 << 16, 0, 0) is None
    assert round_trip_delay_s(0xB7108000 << 16, 0xB7100000, 0x00010000) is None


def test_round_trip_delay_survives_the_middle_32_bits_wrapping():
    arrival = 0x00008000 << 16  # just after the wrap
    assert round_trip_delay_s(arrival, 0xFFFF8000, 0x00004000) == 0.75


# --------------------------------------------------------------- reports


def fed_stats(ssrc: int = 0xAABBCCDD) -> ReceiverStats:
    stats = ReceiverStats(8000)
    for seq in range(20):
        if seq != 7:  # one loss
            stats.on_packet(seq, seq * 160, seq * 0.02, 160, ssrc=ssrc)
    return stats


def test_a_sender_builds_an_sr_with_a_block_per_source_then_its_cname():
    stats = fed_stats()
    stats.on_sender_report(0xE8F2A3B4_80000000, arrival_s=0.1)
    sender = SenderInfo(ntp_from_unix(1_700_000_000.0), 4242, 50, 8000)
    data = build_report(0x11223344, "hotline@192.0.2.1", 0.6, sender, [stats])
    sr, sdes = parse_compound(data)
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (
        0x11223344,
        4242,
        50,
        8000,
    )
    assert sr.ntp_timestamp == ntp_from_unix(1_700_000_000.0)
    (block,) = sr.reports
    assert block.ssrc == 0xAABBCCDD
    # A.1 counts from the second packet: 1..19 expected, 7 missing.
    assert block.cumulative_lost == 1
    assert block.fraction_lost == (1 << 8) // 19
    assert block.extended_highest_seq == 19
    assert block.last_sr == 0xA3B48000
    assert block.delay_since_last_sr == 0x8000  # 0.5 s
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].ssrc == 0x11223344
    assert sdes.chunks[0].cname == "hotline@192.0.2.1"


def test_a_participant_that_sent_nothing_builds_an_rr():
    data = build_report(7, "x@y", 0.0, None, [fed_stats()])
    rr, _ = parse_compound(data)
    assert isinstance(rr, ReceiverReport)
    assert rr.ssrc == 7
    assert len(rr.reports) == 1


def test_sources_not_yet_valid_get_no_report_block():
    stats = ReceiverStats()
    stats.on_packet(5, 0, 0.0, 160, ssrc=9)  # still on probation
    rr, _ = parse_compound(build_report(7, "x@y", 0.0, None, [stats, ReceiverStats()]))
    assert rr.reports == ()


def test_more_than_31_sources_continue_in_further_receiver_reports():
    sources = [fed_stats(ssrc) for ssrc in range(1, 41)]
    data = build_report(7, "x@y", 0.0, SenderInfo(0, 0, 0, 0), sources)
    sr, rr, sdes = parse_compound(data)
    assert isinstance(sr, SenderReport) and len(sr.reports) == 31
    assert isinstance(rr, ReceiverReport) and len(rr.reports) == 9
    assert [b.ssrc for b in sr.reports + rr.reports] == list(range(1, 41))
    assert isinstance(sdes, SourceDescription)


def test_a_leaving_participant_ends_its_report_with_bye():
    data = build_report(7, "x@y", 0.0, None, bye=Bye((7,), "hangup"))
    packets = parse_compound(data)
    assert packets[-1] == Bye((7,), "hangup")
    assert isinstance(packets[0], ReceiverReport)


def test_the_second_report_counts_loss_over_its_own_interval():
    stats = fed_stats()
    build_report(7, "x@y", 0.0, None, [stats])
    for seq in range(20, 40):
        stats.on_packet(seq, seq * 160, seq * 0.02, 160, ssrc=0xAABBCCDD)
    rr, _ = parse_compound(build_report(7, "x@y", 1.0, None, [stats]))
    assert rr.reports[0].fraction_lost == 0
    assert rr.reports[0].cumulative_lost == 1
