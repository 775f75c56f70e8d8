"""The ACD on a fake clock with Poisson arrivals: Erlang C waits, no lost calls, fairness.

With agents that answer at once, no wrap-up and customers who never give up,
one queue of c identical agents is an M/M/c queue, so the mean wait must be
Erlang C's ``Wq = C(c, A) / (c mu - lambda)``. The formula is taken at the
arrival rate and mean talk time the run actually drew: at high load most of
a run's deviation from the nominal figure comes from drawing a little more or
less work than nominal, and this removes it without a longer run (a control
variate; with the nominal rates the spread is about twice as wide).
"""

import pytest

from routing import AgentSpec, QueueSpec, Strategy
from routing.erlang import mean_wait_s
from routing.simulate import simulate

MEAN_HANDLE_S = 180.0
WARM_UP = 1_000  # answered calls left out while the queue fills from empty


def identical_agents(count: int) -> list[AgentSpec]:
    return [AgentSpec(f"agent{n}", queues=("q",)) for n in range(count)]


@pytest.mark.parametrize(
    ("agents", "utilisation", "calls", "seed"),
    [(5, 0.5, 120_000, 1), (10, 0.7, 120_000, 2), (20, 0.85, 150_000, 3)],
    ids=["c5-rho0.5", "c10-rho0.7", "c20-rho0.85"],
)
def test_mean_wait_agrees_with_erlang_c_and_longest_idle_is_fair(
    agents: int, utilisation: float, calls: int, seed: int
) -> None:
    queue = QueueSpec("q", wrap_up_s=0, announce_every_s=None)
    rate = utilisation * agents / MEAN_HANDLE_S
    result = simulate(
        queue,
        identical_agents(agents),
        arrival_rate=rate,
        mean_handle_s=MEAN_HANDLE_S,
        calls=calls,
        seed=seed,
    )
    assert len(result.waits_s) == calls  # nobody gives up here
    drawn_rate, drawn_handle_s = result.realized_rates()
    expected = mean_wait_s(agents, drawn_rate, drawn_handle_s)
    assert result.mean_wait_s(skip=WARM_UP) == pytest.approx(expected, rel=0.10)
    # Identical agents under longest-idle: each takes its 1/c share, within 3 %.
    shares = [result.answered_by[f"agent{n}"] * agents / calls for n in range(agents)]
    assert min(shares) > 0.97 and max(shares) < 1.03


def test_an_idle_agent_never_leaves_a_caller_waiting() -> None:
    # Below one agent's worth of load, with one agent per call nearly always free,
    # almost every call is answered at once (Erlang C: P(wait) ~ 0.0006).
    queue = QueueSpec("q", wrap_up_s=0, announce_every_s=None)
    result = simulate(
        queue, identical_agents(10), arrival_rate=2 / 180, mean_handle_s=180, calls=5_000, seed=7
    )
    assert sum(1 for wait in result.waits_s if wait > 0) < 25


def test_a_hundred_thousand_calls_each_end_exactly_once_through_misses_and_abandons() -> None:
    # A rough day: agents take 2 s to answer, 5 % of offers ring out (the agent is
    # autopaused and back after 20 s), callers give up after 90 s on average,
    # wrap-up, announcements, ring-all-free longest-idle, 95 % offered load.
    queue = QueueSpec(
        "q", strategy=Strategy.LONGEST_IDLE, ring_timeout_s=10, wrap_up_s=5, announce_every_s=20
    )
    result = simulate(
        queue,
        identical_agents(12),
        arrival_rate=0.95 * 12 / (120 + 5 + 2),
        mean_handle_s=120,
        calls=100_000,
        seed=11,
        answer_delay_s=2.0,
        no_answer_probability=0.05,
        mean_patience_s=90,
        return_after_pause_s=20,
        check_every=5_000,
    )
    assert result.arrived == 100_000
    assert len(result.ended) == 100_000
    assert set(result.ended.values()) == {1}  # ended once: finished or abandoned
    assert set(result.connected.values()) == {1}  # never connected twice
    answered, abandoned = len(result.connected), len(result.abandoned_waits_s)
    assert answered + abandoned == 100_000
    assert result.missed > 1_000 and abandoned > 1_000  # the rough parts did happen
