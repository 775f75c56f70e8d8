"""Erlang C: the probability of waiting and the mean wait of an M/M/c queue.

Offered load ``A = arrival_rate * mean_handle_s`` Erlangs on ``c`` agents.
Erlang B by its recurrence ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))``
(stable for any c), then ``C(c, A) = c B / (c - A (1 - B))``; the mean wait
of all calls is ``Wq = C(c, A) / (c mu - lambda)`` with ``mu = 1 / mean_handle_s``.
"""

from __future__ import annotations


def erlang_b(agents: int, load_erlangs: float) -> float:
    """The probability that all ``agents`` are busy in a loss system (Erlang B)."""
    if agents < 0 or load_erlangs < 0:
        raise ValueError("agents and load must be >= 0")
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load_erlangs * blocking / (k + load_erlangs * blocking)
    return blocking


def erlang_c(agents: int, load_erlangs: float) -> float:
    """The probability that a call waits at all (Erlang C); 1 when the load is >= agents."""
    if load_erlangs >= agents:
        return 1.0
    blocking = erlang_b(agents, load_erlangs)
    return agents * blocking / (agents - load_erlangs * (1.0 - blocking))


def mean_wait_s(agents: int, arrival_rate: float, mean_handle_s: float) -> float:
    """The mean time in queue over all calls (those answered at once count 0): Wq."""
    load = arrival_rate * mean_handle_s
    if load >= agents:
        return float("inf")
    return erlang_c(agents, load) / (agents / mean_handle_s - arrival_rate)
