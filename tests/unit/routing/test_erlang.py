"""The Erlang B and C formulas against values worked by hand."""

import pytest

from routing.erlang import erlang_b, erlang_c, mean_wait_s


def test_erlang_b_and_c_for_two_erlangs_on_three_agents() -> None:
    # B(3, 2) = (8/6) / (1 + 2 + 2 + 8/6) = 4/19;  C(3, 2) = 3B / (3 - 2(1 - B)) = 4/9
    assert erlang_b(3, 2.0) == pytest.approx(4 / 19)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)


def test_one_agent_is_the_m_m_1_queue() -> None:
    # M/M/1: P(wait) = rho, Wq = rho / (mu - lambda)
    assert erlang_c(1, 0.6) == pytest.approx(0.6)
    assert mean_wait_s(1, arrival_rate=0.006, mean_handle_s=100) == pytest.approx(0.6 / 0.004)


def test_overload_waits_forever() -> None:
    assert erlang_c(5, 5.0) == 1.0
    assert mean_wait_s(5, arrival_rate=0.05, mean_handle_s=100) == float("inf")


def test_many_agents_are_stable() -> None:
    assert 0.0 < erlang_c(500, 450.0) < 1.0
