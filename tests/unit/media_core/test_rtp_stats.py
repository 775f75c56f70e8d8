"""RTP reception statistics, RFC 3550 A.1 (sequence), A.3 (loss), A.8 (jitter)."""

from __future__ import annotations

import pytest

from media_core.rtcp import ntp_middle32
from media_core.rtp_stats import (
    MAX_DROPOUT,
    ReceiverStats,
    SequenceTracker,
    SeqVerdict,
    seq_delta,
    ts_delta,
)

SSRC = 0x5EED


def feed(stats: ReceiverStats, seqs, *, ssrc: int = SSRC, jitter_s=lambda k: 0.0):
    """Packets with the given sequence numbers, 20 ms apart, timestamps to match."""
    verdicts = []
    for k, seq in enumerate(seqs):
        verdicts.append(
            stats.on_packet(
                seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, k * 0.02 + jitter_s(k), 160, ssrc=ssrc
            )
        )
    return verdicts


# ------------------------------------------------------------- sequence


def test_seq_delta_is_the_signed_distance_modulo_2_16():
    assert seq_delta(5, 3) == 2
    assert seq_delta(3, 5) == -2
    assert seq_delta(2, 65534) == 4
    assert seq_delta(65534, 2) == -4


def test_ts_delta_is_the_signed_distance_modulo_2_32_from_a_possibly_extended_reference():
    assert ts_delta(160, 2**32 - 160) == 320
    assert ts_delta(2**32 - 160, 160) == -320
    assert ts_delta(160, 5 * 2**32 - 160) == 320  # an extended reference, 4 wraps in


def test_a_new_source_is_valid_after_two_packets_in_sequence():
    stats = ReceiverStats()
    assert stats.on_packet(100, 0, 0.0, 160, ssrc=SSRC) is SeqVerdict.NEW_SOURCE
    assert not stats.valid
    assert stats.next_report_block(0.0) is None
    assert stats.on_packet(101, 160, 0.02, 160, ssrc=SSRC) is SeqVerdict.ACCEPTED
    assert stats.valid
    # A.1: counting starts with the packet that made the source valid.
    assert (stats.packets_received, stats.expected, stats.extended_highest_seq) == (1, 1, 101)


def test_a_source_out_of_sequence_stays_on_probation():
    stats = ReceiverStats()
    assert feed(stats, [10, 12, 20, 30])[1:] == [SeqVerdict.PROBATION] * 3
    assert not stats.valid
    assert stats.on_packet(31, 0, 1.0, 160, ssrc=SSRC) is SeqVerdict.ACCEPTED


def test_the_extended_highest_sequence_number_counts_wrap_arounds():
    stats = ReceiverStats()
    feed(stats, range(65530, 65530 + 20))
    assert stats.extended_highest_seq == (1 << 16) + 13
    assert stats.cumulative_lost == 0
    assert stats.next_report_block(0.0).extended_highest_seq == 0x1000D


def test_losses_are_counted_cumulatively_and_as_a_fraction_of_each_interval():
    stats = ReceiverStats()
    missing = {5, 6, 7, 50, 60, 61, 62, 63, 64, 65}
    feed(stats, [s for s in range(100) if s not in missing])
    # Expected counts from packet 1: 99 expected, 89 received.
    assert stats.cumulative_lost == 10
    first = stats.next_report_block(0.0)
    assert first.cumulative_lost == 10
    assert first.fraction_lost == (10 << 8) // 99  # RFC 3550 A.3: 25
    feed(stats, range(100, 200))
    second = stats.next_report_block(0.0)
    assert (second.fraction_lost, second.cumulative_lost) == (0, 10)


def test_reordered_packets_within_the_window_are_neither_lost_nor_duplicates():
    stats = ReceiverStats()
    verdicts = feed(stats, [0, 1, 2, 4, 3, 5, 9, 6, 7, 8, 10])
    assert verdicts[1:] == [SeqVerdict.ACCEPTED] * 10
    assert stats.cumulative_lost == 0
    assert stats.duplicates == 0


def test_duplicates_are_flagged_and_make_cumulative_loss_negative():
    stats = ReceiverStats()
    verdicts = feed(stats, [0, 1, 2, 3, 3, 4, 2, 5])
    assert verdicts[4] is SeqVerdict.DUPLICATE
    assert verdicts[6] is SeqVerdict.DUPLICATE
    assert stats.duplicates == 2
    # RFC 3550 §6.4.1: received includes duplicates, so lost can go negative.
    assert stats.cumulative_lost == -2
    assert stats.next_report_block(0.0).cumulative_lost == -2


def test_cumulative_loss_is_clamped_to_its_24_bit_field():
    stats = ReceiverStats()
    feed(stats, [0, 1] + [1 + k * (MAX_DROPOUT - 1) for k in range(1, 3100)])
    assert stats.expected - stats.packets_received > 0x7FFFFF
    assert stats.cumulative_lost == 0x7FFFFF


def test_a_large_jump_is_ignored_unless_the_next_packet_follows_it():
    stats = ReceiverStats()
    feed(stats, range(10))
    assert stats.on_packet(30000, 0, 1.0, 160, ssrc=SSRC) is SeqVerdict.JUMPED
    assert stats.on_packet(10, 1600, 1.0, 160, ssrc=SSRC) is SeqVerdict.ACCEPTED
    assert stats.extended_highest_seq == 10
    assert stats.on_packet(40000, 0, 1.0, 160, ssrc=SSRC) is SeqVerdict.JUMPED
    assert stats.on_packet(40001, 160, 1.02, 160, ssrc=SSRC) is SeqVerdict.RESTARTED
    # A.1: the sequence restarted; the statistics with it.
    assert (stats.extended_highest_seq, stats.expected, stats.packets_received) == (40001, 1, 1)


def test_a_packet_100_or_more_behind_is_a_jump_and_99_behind_a_reorder():
    tracker = SequenceTracker(1000, probation=0)
    assert tracker.update(1001) is SeqVerdict.ACCEPTED
    assert tracker.update(1001 - 100) is SeqVerdict.JUMPED
    assert tracker.update(1002) is SeqVerdict.ACCEPTED
    assert tracker.update(1002 - 99) is SeqVerdict.ACCEPTED
    assert tracker.last_extended == 903


def test_a_tracker_without_probation_accepts_the_first_packet():
    tracker = SequenceTracker(65535, probation=0)
    assert (tracker.received, tracker.last_extended) == (1, 65535)
    assert tracker.update(0) is SeqVerdict.ACCEPTED
    assert tracker.last_extended == 65536
    assert tracker.update(65535) is SeqVerdict.DUPLICATE
    assert tracker.update(65534) is SeqVerdict.ACCEPTED
    assert tracker.last_extended == 65534


# ---------------------------------------------------------------- SSRC


def test_another_ssrc_restarts_the_statistics_and_says_so():
    stats = ReceiverStats()
    feed(stats, range(50))
    assert stats.on_packet(7, 0, 2.0, 160, ssrc=0xBAD) is SeqVerdict.NEW_SOURCE
    assert stats.ssrc == 0xBAD
    assert stats.ssrc_changes == 1
    assert (stats.packets_received, stats.octets_received, stats.valid) == (0, 0, False)
    assert stats.on_packet(8, 160, 2.02, 160, ssrc=0xBAD) is SeqVerdict.ACCEPTED
    assert stats.next_report_block(2.02).ssrc == 0xBAD


# --------------------------------------------------------------- jitter


def test_packets_arriving_at_their_send_rate_have_no_jitter():
    stats = ReceiverStats()
    feed(stats, range(200))
    assert stats.jitter == pytest.approx(0.0, abs=1e-9)
    assert stats.packets_received == 199
    assert stats.octets_received == 199 * 160


def test_jitter_converges_to_the_mean_transit_difference_in_timestamp_units():
    stats = ReceiverStats(8000)
    # Every other packet arrives 5 ms late: each |D| is 40 timestamp units.
    feed(stats, range(400), jitter_s=lambda k: 0.005 * (k % 2))
    assert stats.jitter == pytest.approx(40.0, abs=1e-3)
    assert stats.jitter_s == pytest.approx(0.005, abs=1e-6)
    assert stats.next_report_block(0.0).jitter == 39  # truncated: 39.99...


def test_jitter_follows_the_rfc_3550_a8_recurrence_step_by_step():
    stats = ReceiverStats(8000)
    arrivals = [0.0, 0.020, 0.045, 0.060, 0.080]
    for k, arrival in enumerate([0.0, *arrivals]):
        stats.on_packet(k, max(k - 1, 0) * 160, arrival, 160, ssrc=SSRC)
    # Transit differences after validation: packets 1..5 at 0, .020, .045, .060, .080.
    expected = 0.0
    for d in (0, 40, 40, 0):  # |D| in timestamp units
        expected += (d - expected) / 16
    assert stats.jitter == pytest.approx(expected)


def test_a_timestamp_wrap_around_is_not_a_jitter_spike():
    stats = ReceiverStats()
    for k in range(100):
        stats.on_packet(k, (2**32 - 50 * 160 + k * 160) & 0xFFFFFFFF, k * 0.02, 160, ssrc=SSRC)
    assert stats.jitter == pytest.approx(0.0, abs=1e-9)


def test_duplicates_do_not_move_the_jitter():
    stats = ReceiverStats()
    feed(stats, range(10))
    stats.on_packet(5, 5 * 160, 10.0, 160, ssrc=SSRC)
    assert stats.jitter == pytest.approx(0.0, abs=1e-9)


# -------------------------------------------------------------- LSR/DLSR


def test_the_report_block_echoes_the_last_sr_and_the_time_since():
    stats = ReceiverStats()
    feed(stats, range(10))
    assert stats.next_report_block(5.0).last_sr == 0
    assert stats.next_report_block(5.0).delay_since_last_sr == 0
    ntp = 0xE8F2A3B4_12345678
    stats.on_sender_report(ntp, arrival_s=10.0)
    block = stats.next_report_block(11.5)
    assert block.last_sr == ntp_middle32(ntp) == 0xA3B41234
    assert block.delay_since_last_sr == int(1.5 * 65536)
    assert block.ssrc == SSRC
