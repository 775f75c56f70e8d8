"""The RTCP transmission interval, RFC 3550 §6.2, §6.3 and A.7."""

from __future__ import annotations

import random

import pytest

from media_core.rtcp_interval import (
    COMPENSATION,
    DEFAULT_SESSION_BANDWIDTH_BPS,
    RTCP_MIN_INTERVAL_S,
    UDP_IP_OVERHEAD_OCTETS,
    deterministic_interval_s,
    randomized_interval_s,
    rtcp_bandwidth_octets_per_s,
    updated_avg_rtcp_size,
)


class FixedRandom(random.Random):
    """A Random whose random() always returns the same value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_constants_are_those_of_rfc_3550() -> None:
    assert RTCP_MIN_INTERVAL_S == 5.0
    assert COMPENSATION == pytest.approx(1.21828, abs=1e-5)  # e - 3/2
    assert UDP_IP_OVERHEAD_OCTETS == 28
    # G.711 20 ms: 200 octets (160 payload + 12 RTP + 8 UDP + 20 IP) 50 times a second.
    assert DEFAULT_SESSION_BANDWIDTH_BPS == 200 * 8 * 50


def test_rtcp_bandwidth_is_five_percent_of_the_session_in_octets_per_second() -> None:
    assert rtcp_bandwidth_octets_per_s(80_000) == 500.0
    assert rtcp_bandwidth_octets_per_s(64_000) == 400.0


@pytest.mark.parametrize("bandwidth_bps", [64_000, 80_000])
def test_a_two_party_call_reports_every_tmin(bandwidth_bps: int) -> None:
    # 2 * 100 octets / 500 octets/s is 0.4 s, far under the 5 s minimum.
    interval = deterministic_interval_s(
        members=2,
        senders=2,
        we_sent=True,
        avg_rtcp_size_octets=100,
        initial=False,
        session_bandwidth_bps=bandwidth_bps,
    )
    assert interval == 5.0


def test_the_first_report_may_come_after_half_the_minimum() -> None:
    interval = deterministic_interval_s(
        members=1, senders=0, we_sent=False, avg_rtcp_size_octets=100, initial=True
    )
    assert interval == 2.5


def test_the_bandwidth_share_governs_once_it_exceeds_the_minimum() -> None:
    # 8 members, 4 senders: senders are not <= 25%, so all share 500 octets/s.
    for we_sent in (True, False):
        interval = deterministic_interval_s(
            members=8, senders=4, we_sent=we_sent, avg_rtcp_size_octets=1000, initial=False
        )
        assert interval == pytest.approx(8 * 1000 / 500)  # 16 s


def test_few_senders_share_a_quarter_of_the_rtcp_bandwidth() -> None:
    # 100 members, 5 senders (5% <= 25%): senders split 125 octets/s between 5,
    # receivers split 375 octets/s between 95.
    as_sender = deterministic_interval_s(
        members=100, senders=5, we_sent=True, avg_rtcp_size_octets=200, initial=False
    )
    as_receiver = deterministic_interval_s(
        members=100, senders=5, we_sent=False, avg_rtcp_size_octets=200, initial=False
    )
    assert as_sender == pytest.approx(200 * 5 / 125)  # 8 s
    assert as_receiver == pytest.approx(200 * 95 / 375)  # 50.67 s


def test_with_no_senders_receivers_keep_three_quarters() -> None:
    interval = deterministic_interval_s(
        members=100, senders=0, we_sent=False, avg_rtcp_size_octets=100, initial=False
    )
    assert interval == pytest.approx(100 * 100 / 375)


def test_a_bigger_session_bandwidth_shortens_the_interval() -> None:
    slow = deterministic_interval_s(
        members=50,
        senders=50,
        we_sent=True,
        avg_rtcp_size_octets=100,
        initial=False,
        session_bandwidth_bps=80_000,
    )
    fast = deterministic_interval_s(
        members=50,
        senders=50,
        we_sent=True,
        avg_rtcp_size_octets=100,
        initial=False,
        session_bandwidth_bps=160_000,
    )
    assert slow == pytest.approx(10.0)
    assert fast == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("members", "senders", "bandwidth_bps"),
    [(0, 0, 80_000), (2, -1, 80_000), (2, 1, 0), (2, 1, -5)],
)
def test_nonsense_inputs_are_refused(members: int, senders: int, bandwidth_bps: int) -> None:
    with pytest.raises(ValueError):
        deterministic_interval_s(
            members=members,
            senders=senders,
            we_sent=False,
            avg_rtcp_size_octets=100,
            initial=False,
            session_bandwidth_bps=bandwidth_bps,
        )


def test_randomisation_is_half_to_one_and_a_half_times_over_compensation() -> None:
    assert randomized_interval_s(5.0, FixedRandom(0.0)) == pytest.approx(2.5 / COMPENSATION)
    assert randomized_interval_s(5.0, FixedRandom(0.5)) == pytest.approx(5.0 / COMPENSATION)
    assert randomized_interval_s(5.0, FixedRandom(0.999999)) == pytest.approx(
        7.5 / COMPENSATION, rel=1e-6
    )


def test_randomised_intervals_stay_in_range_and_spread_across_it() -> None:
    rng = random.Random(3550)
    draws = [randomized_interval_s(5.0, rng) for _ in range(10_000)]
    low, high = 0.5 * 5.0 / COMPENSATION, 1.5 * 5.0 / COMPENSATION
    assert all(low <= draw < high for draw in draws)
    # Uniform: the extremes are reached and the mean is the middle.
    assert min(draws) < low * 1.01
    assert max(draws) > high * 0.99
    assert sum(draws) / len(draws) == pytest.approx(5.0 / COMPENSATION, rel=0.01)


def test_the_same_seed_gives_the_same_schedule() -> None:
    rng_a, rng_b = random.Random(7), random.Random(7)
    first = [randomized_interval_s(5.0, rng_a) for _ in range(5)]
    again = [randomized_interval_s(5.0, rng_b) for _ in range(5)]
    assert first == again
    assert len(set(first)) == 5


def test_average_size_moves_a_sixteenth_of_the_way_to_each_packet() -> None:
    # A 72-octet datagram is a 100-octet packet with UDP/IP headers: no change.
    assert updated_avg_rtcp_size(100.0, 72) == 100.0
    # 232 + 28 = 260: 260/16 + 100*15/16 = 16.25 + 93.75.
    assert updated_avg_rtcp_size(100.0, 232) == 110.0
    # Repeated packets of one size converge on it.
    avg = 100.0
    for _ in range(200):
        avg = updated_avg_rtcp_size(avg, 172)
    assert avg == pytest.approx(200.0, abs=1e-3)
