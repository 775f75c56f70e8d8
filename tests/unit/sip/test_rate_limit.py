"""Per-source flood protection: token buckets and auth-failure blocking, on a fake clock."""

import pytest

from sip.errors import LocalProtocolError
from sip.rate_limit import FailureTracker, SourceRateLimiter

HOST = "203.0.113.9"
OTHER = "198.51.100.4"


# -------------------------------------------------------------- token bucket


def test_a_new_source_may_send_a_burst_then_is_refused():
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=3)
    assert [limiter.allow(HOST, 0.0) for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_configured_rate():
    limiter = SourceRateLimiter(rate_per_s=2.0, burst=2)
    assert limiter.allow(HOST, 0.0) and limiter.allow(HOST, 0.0)
    assert not limiter.allow(HOST, 0.4)  # 0.8 of a token so far
    assert limiter.allow(HOST, 0.5)  # one whole token
    assert not limiter.allow(HOST, 0.5)


def test_refill_stops_at_the_burst_size():
    limiter = SourceRateLimiter(rate_per_s=10.0, burst=2)
    limiter.allow(HOST, 0.0)
    assert [limiter.allow(HOST, 100.0) for _ in range(3)] == [True, True, False]


def test_sources_have_separate_buckets():
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.allow(HOST, 0.0)
    assert not limiter.allow(HOST, 0.0)
    assert limiter.allow(OTHER, 0.0)


def test_a_clock_stepping_back_neither_refills_nor_breaks_the_bucket():
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.allow(HOST, 10.0)
    assert not limiter.allow(HOST, 5.0)
    assert not limiter.allow(HOST, 10.5)
    assert limiter.allow(HOST, 11.0)


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_source():
    limiter = SourceRateLimiter(rate_per_s=0.001, burst=1, max_sources=2)
    limiter.allow("a", 0.0)
    limiter.allow("b", 0.0)
    assert not limiter.allow("a", 1.0)  # "a" is now the most recently seen
    limiter.allow("c", 2.0)  # evicts "b"
    assert limiter.sources_count() == 2
    assert limiter.allow("b", 3.0)  # forgotten, so it starts with a full bucket
    assert not limiter.allow("c", 3.0)  # "c" was kept, its bucket still empty


def test_rate_limiter_configuration_must_be_positive():
    with pytest.raises(LocalProtocolError):
        SourceRateLimiter(rate_per_s=0.0, burst=1)
    with pytest.raises(LocalProtocolError):
        SourceRateLimiter(rate_per_s=1.0, burst=0)


# ---------------------------------------------------------- failure tracker


def test_repeated_wrong_passwords_block_the_source_for_block_s():
    tracker = FailureTracker(max_failures=3, window_s=60.0, block_s=300.0)
    assert tracker.record_failure(HOST, 0.0) is False
    assert tracker.record_failure(HOST, 10.0) is False
    assert tracker.record_failure(HOST, 20.0) is True
    assert tracker.is_blocked(HOST, 319.9)
    assert not tracker.is_blocked(HOST, 320.0)
    assert not tracker.is_blocked(OTHER, 20.0)


def test_failures_spread_wider_than_the_window_do_not_block():
    tracker = FailureTracker(max_failures=3, window_s=60.0, block_s=300.0)
    for now in (0.0, 40.0, 80.0, 120.0):
        assert tracker.record_failure(HOST, now) is False
    assert not tracker.is_blocked(HOST, 120.0)


def test_success_forgets_earlier_failures():
    tracker = FailureTracker(max_failures=3, window_s=60.0, block_s=300.0)
    tracker.record_failure(HOST, 0.0)
    tracker.record_failure(HOST, 1.0)
    tracker.record_success(HOST)
    assert tracker.record_failure(HOST, 2.0) is False
    assert tracker.sources_count() == 1
    tracker.record_success(HOST)
    assert tracker.sources_count() == 0


def test_success_does_not_lift_a_block_in_force():
    tracker = FailureTracker(max_failures=2, window_s=60.0, block_s=300.0)
    tracker.record_failure(HOST, 0.0)
    tracker.record_failure(HOST, 1.0)
    tracker.record_success(HOST)
    assert tracker.is_blocked(HOST, 2.0)


def test_after_a_block_the_count_starts_afresh():
    tracker = FailureTracker(max_failures=2, window_s=60.0, block_s=100.0)
    tracker.record_failure(HOST, 0.0)
    tracker.record_failure(HOST, 1.0)
    assert not tracker.is_blocked(HOST, 101.0)
    assert tracker.sources_count() == 0  # nothing left to remember
    assert tracker.record_failure(HOST, 102.0) is False
    assert tracker.record_failure(HOST, 103.0) is True


def test_failure_tracker_memory_is_bounded():
    tracker = FailureTracker(max_failures=2, window_s=60.0, block_s=300.0, max_sources=2)
    tracker.record_failure("a", 0.0)
    tracker.record_failure("a", 1.0)  # "a" blocked
    tracker.record_failure("b", 2.0)
    tracker.record_failure("c", 3.0)  # evicts "a", the least recently seen
    assert tracker.sources_count() == 2
    assert not tracker.is_blocked("a", 4.0)
    assert tracker.record_failure("b", 5.0) is True


def test_failure_tracker_configuration_must_be_positive():
    with pytest.raises(LocalProtocolError):
        FailureTracker(max_failures=0, window_s=60.0, block_s=300.0)
    with pytest.raises(LocalProtocolError):
        FailureTracker(max_failures=3, window_s=0.0, block_s=300.0)
