"""Builders for the routing tests: an Acd that checks its invariants after every input."""

from __future__ import annotations

from collections.abc import Iterable

from routing import Acd, Action, AgentSpec, AgentState, Offer, QueueSpec

AVAILABLE = AgentState.AVAILABLE


class CheckedAcd(Acd):
    """An Acd whose every input ends with check_invariants()."""

    def _checked(self, actions: list[Action]) -> list[Action]:
        self.check_invariants()
        return actions

    def set_state(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().set_state(*args, **kwargs))

    def enqueue(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().enqueue(*args, **kwargs))

    def answered(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().answered(*args, **kwargs))

    def declined(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().declined(*args, **kwargs))

    def left(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().left(*args, **kwargs))

    def finished(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().finished(*args, **kwargs))

    def transfer(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().transfer(*args, **kwargs))

    def on_timer(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._checked(super().on_timer(*args, **kwargs))


def agents(*names: str, queues: tuple[str, ...] = ("q",), **kwargs: object) -> list[AgentSpec]:
    return [AgentSpec(name, queues=queues, **kwargs) for name in names]  # type: ignore[arg-type]


def make(queues: Iterable[QueueSpec], specs: Iterable[AgentSpec], now: float = 0.0) -> CheckedAcd:
    """An Acd with every agent logged in (AVAILABLE), in the order given."""
    specs = list(specs)
    acd = CheckedAcd(queues, specs, now)
    for spec in specs:
        acd.set_state(spec.name, AVAILABLE, now)
    return acd


def offered_to(actions: list[Action]) -> list[str]:
    """The agents rung by these actions, in order."""
    return [action.agent for action in actions if isinstance(action, Offer)]


def take(acd: Acd, item: str, now: float) -> str:
    """Enqueue a call, have the agent it is offered to answer, and return that agent."""
    [agent] = offered_to(acd.enqueue(item, "q", now))
    acd.answered(item, agent, now)
    return agent
