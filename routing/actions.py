"""What the ACD tells its I/O shell to do, in the order it says it.

Every ``Acd`` input returns a list of these. The shell rings agents on
``Offer`` (until ``deadline``), stops ringing on ``CancelOffer``, bridges on
``Connected``, plays ``Announce`` to the caller, and shows
``AgentStateChanged`` on the agent page.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.specs import AgentState


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``agent`` with ``item`` until ``deadline`` (then the ACD times it out)."""

    item: str
    agent: str
    kind: str  # "call" | "chat"
    queue: str
    deadline: float


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing ``agent`` with ``item``.

    ``reason``: "answered-elsewhere", "timeout", "abandoned", "transferred",
    "paused", "offline", or "not-offered" (an ``answered`` that came after the
    offer was gone: hang up that agent's leg).
    """

    item: str
    agent: str
    reason: str


@dataclass(frozen=True, slots=True)
class Connected:
    """``agent`` took ``item`` from ``queue`` after the customer waited ``waited_s``."""

    item: str
    agent: str
    queue: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class Missed:
    """``agent`` let the offer of ``item`` ring until its deadline."""

    item: str
    agent: str


@dataclass(frozen=True, slots=True)
class Overflowed:
    """``item`` waited ``max_wait_s`` in ``from_queue`` and now waits in ``to_queue``."""

    item: str
    from_queue: str
    to_queue: str


@dataclass(frozen=True, slots=True)
class Abandoned:
    """The customer of ``item`` went away before an agent took it."""

    item: str
    queue: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell a waiting caller their place in ``queue`` and the estimated wait."""

    item: str
    queue: str
    position: int
    estimated_wait_s: float


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """``agent`` is now in ``state`` (``reason`` is set for PAUSED and OFFLINE only)."""

    agent: str
    state: AgentState
    reason: str | None


Action = (
    Offer | CancelOffer | Connected | Missed | Overflowed | Abandoned | Announce | AgentStateChanged
)
