"""What an operator configures: agents, queues, and the names of states and strategies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

SKILL_LEVELS = range(1, 11)


class AgentState(StrEnum):
    """An agent's presence as the ACD sees it (and shows it on the agent page)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    BUSY = "busy"
    WRAP_UP = "wrap-up"
    PAUSED = "paused"


class Strategy(StrEnum):
    """How a queue picks among the agents who can take an item now."""

    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    RING_ALL = "ring-all"
    LEAST_CALLS = "least-calls"
    SKILL_WEIGHTED = "skill-weighted"


def _frozen_levels(levels: Mapping[str, int], what: str) -> Mapping[str, int]:
    for skill, level in levels.items():
        if not isinstance(skill, str) or not skill:
            raise ValueError(f"{what}: a skill name must be a non-empty string, not {skill!r}")
        if isinstance(level, bool) or not isinstance(level, int) or level not in SKILL_LEVELS:
            raise ValueError(f"{what}: skill {skill!r} level must be an int 1..10, not {level!r}")
    return MappingProxyType(dict(levels))


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent: who they are, what they can do, and which queues they serve.

    An agent serves a queue when the queue is in ``queues`` and the agent meets
    every one of the queue's ``required_skills`` minimums.
    """

    name: str
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> level 1..10
    queues: tuple[str, ...] = ()
    max_calls: int = 1
    max_chats: int = 3
    wrap_up_s: float | None = None  # None: the wrap-up of the queue the call came from
    autopause_on_miss: bool = True  # a missed offer pauses the agent (reason "missed")

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("agent: name must not be empty")
        object.__setattr__(self, "skills", _frozen_levels(self.skills, f"agent {self.name!r}"))
        object.__setattr__(self, "queues", tuple(self.queues))
        if self.max_calls < 0 or self.max_chats < 0:
            raise ValueError(f"agent {self.name!r}: max_calls and max_chats must be >= 0")
        if self.wrap_up_s is not None and self.wrap_up_s < 0:
            raise ValueError(f"agent {self.name!r}: wrap_up_s must be >= 0")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue: its rank among queues, who may serve it and how it rings them."""

    name: str
    priority: int = 0  # higher is served first when an agent serves several queues
    required_skills: Mapping[str, int] = field(default_factory=dict)  # skill -> minimum
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout_s: float = 15.0
    max_wait_s: float | None = None  # then overflow to overflow_to
    overflow_to: str | None = None
    wrap_up_s: float = 10.0
    announce_every_s: float | None = 30.0  # position / estimated wait, calls only

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("queue: name must not be empty")
        what = f"queue {self.name!r}"
        object.__setattr__(self, "required_skills", _frozen_levels(self.required_skills, what))
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        if self.ring_timeout_s <= 0:
            raise ValueError(f"{what}: ring_timeout_s must be > 0")
        if self.max_wait_s is not None and self.max_wait_s < 0:
            raise ValueError(f"{what}: max_wait_s must be >= 0")
        if self.wrap_up_s < 0:
            raise ValueError(f"{what}: wrap_up_s must be >= 0")
        if self.announce_every_s is not None and self.announce_every_s <= 0:
            raise ValueError(f"{what}: announce_every_s must be > 0 (or None for no announcements)")
