"""A discrete-event simulation of one queue on a fake clock, driving a real ``Acd``.

Calls arrive as a Poisson process, talk for exponential times, and may give
up after an exponential patience; agents answer each offer after
``answer_delay_s`` or, with ``no_answer_probability``, let it ring out (and
come back ``return_after_pause_s`` after an autopause). With instant answers,
no wrap-up and infinite patience this is an M/M/c queue, so its mean wait
should match ``erlang.mean_wait_s``: the tests check the ACD that way, and an
operator can use it to size a queue with their own strategies and timers.

The simulation records how every call ended, so a caller can check that each
one ended exactly once (finished after Connected, or Abandoned).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from routing.acd import Acd
from routing.actions import Abandoned, Action, AgentStateChanged, Connected, Offer
from routing.specs import AgentSpec, AgentState, QueueSpec

_ARRIVE, _ANSWER, _FINISH, _GIVE_UP, _RETURN = range(5)


@dataclass
class SimulationResult:
    """What happened to the calls of one run."""

    waits_s: list[float] = field(default_factory=list)  # per answered call, in answer order
    abandoned_waits_s: list[float] = field(default_factory=list)
    answered_by: Counter[str] = field(default_factory=Counter)  # agent -> calls answered
    connected: Counter[str] = field(default_factory=Counter)  # item -> Connected actions
    ended: Counter[str] = field(default_factory=Counter)  # item -> finished + Abandoned
    offers: int = 0
    missed: int = 0
    arrived: int = 0
    last_arrival_s: float = 0.0
    handle_drawn_s: list[float] = field(default_factory=list)  # talk times, in answer order
    end_time_s: float = 0.0

    def realized_rates(self) -> tuple[float, float]:
        """The arrival rate and mean talk time this run actually drew (its sample path)."""
        rate = self.arrived / self.last_arrival_s if self.last_arrival_s else 0.0
        drawn = self.handle_drawn_s
        return rate, (sum(drawn) / len(drawn) if drawn else 0.0)

    def mean_wait_s(self, skip: int = 0) -> float:
        """Mean wait of the answered calls after the first ``skip`` (a warm-up)."""
        waits = self.waits_s[skip:]
        return sum(waits) / len(waits) if waits else 0.0


def simulate(
    queue: QueueSpec,
    agents: Sequence[AgentSpec],
    *,
    arrival_rate: float,
    mean_handle_s: float,
    calls: int,
    seed: int,
    answer_delay_s: float = 0.0,
    no_answer_probability: float = 0.0,
    mean_patience_s: float | None = None,
    return_after_pause_s: float = 30.0,
    check_every: int = 0,
) -> SimulationResult:
    """Run ``calls`` arrivals through an ``Acd`` with ``queue`` and ``agents`` (all AVAILABLE).

    ``check_every`` > 0 runs ``Acd.check_invariants`` every that many events.
    """
    rng = random.Random(seed)
    acd = Acd([queue], agents, 0.0)
    result = SimulationResult()
    events: list[tuple[float, int, int, str, str]] = []
    seq = 0

    def schedule(when: float, kind: int, item: str, agent: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, kind, item, agent))

    live: set[str] = set()  # arrived, not yet ended
    talking: set[str] = set()

    def act(actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, Offer):
                result.offers += 1
                if rng.random() >= no_answer_probability:
                    schedule(now + answer_delay_s, _ANSWER, action.item, action.agent)
            elif isinstance(action, Connected):
                result.connected[action.item] += 1
                result.waits_s.append(action.waited_s)
                result.answered_by[action.agent] += 1
                talking.add(action.item)
                handle_s = rng.expovariate(1.0 / mean_handle_s)
                result.handle_drawn_s.append(handle_s)
                schedule(now + handle_s, _FINISH, action.item)
            elif isinstance(action, Abandoned):
                result.ended[action.item] += 1
                result.abandoned_waits_s.append(action.waited_s)
                live.discard(action.item)
            elif isinstance(action, AgentStateChanged) and action.reason == "missed":
                result.missed += 1
                schedule(now + return_after_pause_s, _RETURN, "", action.agent)

    for spec in agents:
        act(acd.set_state(spec.name, AgentState.AVAILABLE, 0.0), 0.0)
    schedule(rng.expovariate(arrival_rate), _ARRIVE, "")
    steps = 0
    now = 0.0
    while True:
        deadline = acd.next_deadline()
        if events and (deadline is None or events[0][0] < deadline):
            now, _, kind, item, agent = heapq.heappop(events)
            if kind == _ARRIVE:
                result.arrived += 1
                result.last_arrival_s = now
                item = f"c{result.arrived}"
                live.add(item)
                act(acd.enqueue(item, queue.name, now), now)
                if mean_patience_s is not None:
                    schedule(now + rng.expovariate(1.0 / mean_patience_s), _GIVE_UP, item)
                if result.arrived < calls:
                    schedule(now + rng.expovariate(arrival_rate), _ARRIVE, "")
            elif kind == _ANSWER:
                act(acd.answered(item, agent, now), now)
            elif kind == _FINISH:
                act(acd.finished(item, now), now)
                talking.discard(item)
                live.discard(item)
                result.ended[item] += 1
            elif kind == _GIVE_UP:
                if item in live and item not in talking:
                    act(acd.left(item, now), now)
            else:
                act(acd.set_state(agent, AgentState.AVAILABLE, now), now)
        elif deadline is not None and (live or events):
            now = deadline
            act(acd.on_timer(now), now)
        else:
            break
        steps += 1
        if check_every and steps % check_every == 0:
            acd.check_invariants()
    acd.check_invariants()
    result.end_time_s = now
    return result
