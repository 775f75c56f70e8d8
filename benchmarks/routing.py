#!/usr/bin/env python3
"""The ACD: routing decisions per second on one core, 1,000 agents in 50 queues.

The process is pinned to one CPU and drives one ``routing.Acd`` on a fake
clock, as the server would: Poisson arrivals (9 calls in 10, the rest chats)
spread over 50 queues by their staffing, agents who answer after 1-4 s and
let 2 % of offers ring out (autopaused, back after 30 s), talk times
exponential around 180 s, wrap-up, customers who give up after 2 minutes on
average, announcements every 30 s, and queues that overflow after 60 s.

Queues mix the five strategies (one in ten rings all), require skills at
various levels, and have priorities 0..3; each agent lists 4 random queues
and has 3 random skills, so some agents do not qualify for some queues they
list. The offered load is 95 % of the agents' capacity.

A *decision* is one ``Offer``. The figure is decisions per second of CPU time
spent inside ``Acd`` methods (the driver's own heap and random numbers are
timed apart and shown beside it), after a warm-up of 10 simulated minutes.
Every ``Acd`` input is timed too: p50/p99/max is how long the server's loop
would be held by one input at this size. ``--quick`` runs 1,000 agents for
10 s of wall time; the full run adds 4,000 agents in 200 queues, to show the
cost per decision does not grow with the number of agents.

Output: a table, ``benchmarks/out/routing.png`` when matplotlib is there, and
one JSON line: ``{"bench": "routing", "decisions_per_s": N, "agents": 1000,
"queues": 50, "decisions": N, ...}``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from routing import (  # noqa: E402
    Abandoned,
    Acd,
    Action,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    Connected,
    Offer,
    QueueSpec,
    Strategy,
)

OUT = REPO / "benchmarks" / "out"
GOAL = 5_000
SKILLS = [f"skill{n}" for n in range(10)]
STRATEGIES = [
    Strategy.LONGEST_IDLE,
    Strategy.ROUND_ROBIN,
    Strategy.LEAST_CALLS,
    Strategy.SKILL_WEIGHTED,
]
MEAN_TALK_S = 180.0
WRAP_UP_S = 8.0
MEAN_PATIENCE_S = 120.0
NO_ANSWER = 0.02
WARMUP_SIM_S = 600.0
LOAD = 0.95

_ARRIVE, _ANSWER, _FINISH, _GIVE_UP, _RETURN = range(5)


def pin_to_one_core() -> int | None:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return None
    return cpu


def build(agent_count: int, queue_count: int, rng: random.Random) -> tuple[Acd, list[str], float]:
    """The contact centre: queues, agents, and the arrival rate for LOAD."""
    queues = []
    for n in range(queue_count):
        strategy = Strategy.RING_ALL if n % 10 == 9 else STRATEGIES[n % len(STRATEGIES)]
        required = {rng.choice(SKILLS): rng.randint(1, 4)} if n % 3 else {}
        queues.append(
            QueueSpec(
                f"queue{n}",
                priority=rng.randint(0, 3),
                required_skills=required,
                strategy=strategy,
                ring_timeout_s=15,
                max_wait_s=60,
                overflow_to=f"queue{(n + 1) % queue_count}",
                wrap_up_s=WRAP_UP_S,
                announce_every_s=30,
            )
        )
    names = [q.name for q in queues]
    agents = [
        AgentSpec(
            f"agent{n}",
            skills={skill: rng.randint(1, 10) for skill in rng.sample(SKILLS, 3)},
            queues=tuple(rng.sample(names, 4)),
            max_chats=2,
        )
        for n in range(agent_count)
    ]
    acd = Acd(queues, agents, 0.0)
    for spec in agents:
        acd.set_state(spec.name, AgentState.AVAILABLE, 0.0)
    # Arrivals go to queues in proportion to the agents who serve them.
    weights = [row["agents_staffed"] for row in acd.queue_status()]
    targets = [name for name, weight in zip(names, weights, strict=True) for _ in range(weight)]
    serving = sum(1 for row in acd.agent_status() if row["queues"])
    rate = LOAD * serving / (MEAN_TALK_S + WRAP_UP_S + 2.5)
    return acd, targets, rate


def run(agent_count: int, queue_count: int, wall_s: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    acd, targets, rate = build(agent_count, queue_count, rng)
    events: list[tuple[float, int, int, str, str]] = []
    seq = 0

    def schedule(when: float, kind: int, item: str = "", agent: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, kind, item, agent))

    talking: set[str] = set()
    live: set[str] = set()
    latencies: list[float] = []
    acd_s = 0.0
    offers = connected = abandoned = arrived = 0
    counting = False
    windows: list[tuple[float, int, float]] = []  # (sim time, offers so far, acd_s so far)

    def react(actions: list[Action], now: float) -> None:
        nonlocal offers, connected, abandoned
        for action in actions:
            if isinstance(action, Offer):
                offers += counting
                if rng.random() >= NO_ANSWER:
                    schedule(now + rng.uniform(1, 4), _ANSWER, action.item, action.agent)
            elif isinstance(action, Connected):
                connected += counting
                talking.add(action.item)
                schedule(now + rng.expovariate(1 / MEAN_TALK_S), _FINISH, action.item)
            elif isinstance(action, Abandoned):
                abandoned += counting
                live.discard(action.item)
            elif isinstance(action, AgentStateChanged) and action.reason == "missed":
                schedule(now + 30, _RETURN, agent=action.agent)

    schedule(rng.expovariate(rate), _ARRIVE)
    clock = time.perf_counter
    started = clock()
    loop_started = started
    now = 0.0
    while clock() - started < wall_s:
        deadline = acd.next_deadline()
        if deadline is not None and (not events or deadline <= events[0][0]):
            now = deadline
            t0 = clock()
            actions = acd.on_timer(now)
        else:
            now, _, kind, item, agent = heapq.heappop(events)
            t0 = clock()
            if kind == _ARRIVE:
                arrived += 1
                item = f"i{arrived}"
                kind_name = "chat" if arrived % 10 == 0 else "call"
                actions = acd.enqueue(item, rng.choice(targets), now, kind=kind_name)
                t1 = clock()
                live.add(item)
                schedule(now + rng.expovariate(rate), _ARRIVE)
                schedule(now + rng.expovariate(1 / MEAN_PATIENCE_S), _GIVE_UP, item)
                t0 = clock() - (t1 - t0)  # the driver's scheduling is not the ACD's time
            elif kind == _ANSWER:
                actions = acd.answered(item, agent, now)
            elif kind == _FINISH:
                actions = acd.finished(item, now)
                talking.discard(item)
                live.discard(item)
            elif kind == _GIVE_UP:
                if item not in live or item in talking:
                    continue
                actions = acd.left(item, now)
            else:
                actions = acd.set_state(agent, AgentState.AVAILABLE, now)
        spent = clock() - t0
        if not counting and now >= WARMUP_SIM_S:
            counting = True
            loop_started = clock()
        if counting:
            acd_s += spent
            latencies.append(spent)
            if not windows or now - windows[-1][0] >= 60:
                windows.append((now, offers, acd_s))
        react(actions, now)
    loop_s = clock() - loop_started
    acd.check_invariants()
    latencies.sort()
    status = acd.queue_status()

    def pct(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1e6

    return {
        "agents": agent_count,
        "queues": queue_count,
        "decisions": offers,
        "decisions_per_s": round(offers / acd_s) if acd_s else 0,
        "decisions_per_s_with_driver": round(offers / loop_s) if loop_s else 0,
        "inputs": len(latencies),
        "input_p50_us": round(pct(0.50), 1),
        "input_p99_us": round(pct(0.99), 1),
        "input_max_us": round(latencies[-1] * 1e6, 1) if latencies else 0.0,
        "simulated_s": round(now - WARMUP_SIM_S),
        "connected": connected,
        "abandoned": abandoned,
        "waiting_at_end": sum(row["waiting"] for row in status),
        "overflowed": sum(row["overflowed"] for row in status),
        "windows": windows,
    }


def plot(results: list[dict[str, Any]]) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for result in results:
        windows = result["windows"]
        xs, ys = [], []
        for (_, n0, s0), (t1, n1, s1) in zip(windows, windows[1:], strict=False):
            if s1 > s0:
                xs.append(t1 / 60)
                ys.append((n1 - n0) / (s1 - s0))
        label = f"{result['agents']} agents, {result['queues']} queues"
        ax.plot(xs, ys, label=label)
    ax.axhline(GOAL, color="grey", linestyle="--", label=f"goal {GOAL}/s")
    ax.set_xlabel("simulated minutes")
    ax.set_ylabel("decisions per CPU-second in the ACD")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title("routing: Offers per second over the run")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "routing.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 agents for 10 s (< 60 s)")
    parser.add_argument("--seconds", type=float, default=None, help="wall time per size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    wall_s = args.seconds or (10.0 if args.quick else 30.0)
    sizes = [(1000, 50)] if args.quick else [(1000, 50), (4000, 200)]
    cpu = pin_to_one_core()
    print(f"routing: one Acd on CPU {cpu}, {wall_s:.0f} s of wall time per size, load {LOAD}")
    print(
        f"{'agents':>7} {'queues':>6} {'decisions':>10} {'per ACD s':>10} {'w/ driver':>10}"
        f" {'p50 us':>7} {'p99 us':>7} {'max us':>8} {'sim min':>8} {'abandon':>8}"
    )
    results = []
    for agents, queues in sizes:
        result = run(agents, queues, wall_s, args.seed)
        results.append(result)
        answered_or_gone = result["connected"] + result["abandoned"]
        abandon_rate = result["abandoned"] / answered_or_gone if answered_or_gone else 0.0
        print(
            f"{agents:>7} {queues:>6} {result['decisions']:>10} {result['decisions_per_s']:>10}"
            f" {result['decisions_per_s_with_driver']:>10} {result['input_p50_us']:>7}"
            f" {result['input_p99_us']:>7} {result['input_max_us']:>8}"
            f" {result['simulated_s'] / 60:>8.0f} {abandon_rate:>8.1%}"
        )
    path = plot(results)
    if path:
        print(f"plot: {path.relative_to(REPO)}")
    main_result = results[0]
    verdict = "meets" if main_result["decisions_per_s"] >= GOAL else "misses"
    print(f"goal >= {GOAL} decisions/s with 1,000 agents and 50 queues: {verdict}")
    summary = {"bench": "routing"}
    summary.update({k: v for k, v in main_result.items() if k != "windows"})
    summary["by_size"] = [{k: v for k, v in r.items() if k != "windows"} for r in results]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
