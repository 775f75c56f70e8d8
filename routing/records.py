"""The ACD's mutable records of agents, items and queues, and the read-only AgentView.

These are private to ``acd``: plain ``__slots__`` objects that it keeps
consistent (``Acd.check_invariants`` says how). An item is one customer
contact, a call or a chat, from ``enqueue`` until it is finished or abandoned.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.ranked import Key, Ranked
from routing.specs import AgentSpec, AgentState, QueueSpec

KINDS = ("call", "chat")

# An item's life: WAITING <-> RINGING (offered to one agent, or several for ring-all)
# -> CONNECTED -> gone (finished), or gone from WAITING/RINGING (abandoned).
# A transfer puts a CONNECTED or RINGING item back to WAITING in another queue.
WAITING = "waiting"
RINGING = "ringing"
CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class AgentView:
    """A snapshot of one agent for the agent page and the status API."""

    name: str
    state: AgentState
    reason: str | None
    active_calls: int
    active_chats: int
    calls_taken: int
    missed: int
    idle_since: float  # when the agent's last call ended (or when they were added)
    chats_taken: int = 0
    queues: tuple[str, ...] = ()  # the queues this agent serves (listed and skilled for)


class QueueRecord:
    """A queue: its waiting and ringing items, its ready agents, and its counters."""

    __slots__ = (
        "abandoned",
        "answered",
        "handle_total_s",
        "handled",
        "members",
        "name",
        "overflowed",
        "priority",
        "ready",
        "ringing",
        "rr_last",
        "spec",
        "staffed",
        "wait_total_s",
        "waiting",
    )

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.priority = spec.priority
        self.members: list[AgentRecord] = []  # agents who serve it, in any state
        # Ready agents by kind, sorted by the queue's strategy key (strategies.agent_key).
        self.ready: dict[str, Ranked] = {kind: Ranked() for kind in KINDS}
        # Items by kind, sorted by (-priority, arrival, seq): waiting ones may be offered.
        self.waiting: dict[str, Ranked] = {kind: Ranked() for kind in KINDS}
        self.ringing: dict[str, Ranked] = {kind: Ranked() for kind in KINDS}
        self.rr_last = -1  # round-robin: ordinal of the agent offered last
        self.staffed = 0  # members logged in and not paused
        self.answered = 0
        self.abandoned = 0
        self.overflowed = 0
        self.wait_total_s = 0.0
        self.handled = 0
        self.handle_total_s = 0.0


class AgentRecord:
    """An agent: the presence they asked for (``base``) and what they hold now.

    The state shown is derived: BUSY while on a call, else RINGING while a call
    is offered, else ``base`` (OFFLINE, AVAILABLE, PAUSED or WRAP_UP). Chats do
    not change it. A pause asked for during a call is kept in ``base`` and shows
    when the last call ends.
    """

    __slots__ = (
        "base",
        "calls",
        "calls_taken",
        "chats",
        "chats_taken",
        "connected",
        "epoch",
        "idle_since",
        "missed",
        "name",
        "offers",
        "ordinal",
        "reason",
        "ready_call",
        "ready_chat",
        "reported",
        "ringing_calls",
        "ringing_chats",
        "scores",
        "served",
        "spec",
        "staffed",
        "wrap_gen",
    )

    def __init__(self, spec: AgentSpec, ordinal: int, served: list[QueueRecord], now: float):
        self.spec = spec
        self.name = spec.name
        self.ordinal = ordinal
        self.base = AgentState.OFFLINE
        self.reason: str | None = None
        self.reported: tuple[AgentState, str | None] = (AgentState.OFFLINE, None)
        self.calls = 0
        self.chats = 0
        self.ringing_calls = 0
        self.ringing_chats = 0
        self.offers: dict[str, ItemRecord] = {}  # item name -> item ringing here
        self.connected: dict[str, ItemRecord] = {}
        self.calls_taken = 0
        self.chats_taken = 0
        self.missed = 0
        self.idle_since = now
        # Bumped each time the agent becomes newly available: a decline recorded
        # in an earlier epoch no longer keeps an item away from them.
        self.epoch = 0
        self.wrap_gen = 0
        self.served = tuple(sorted(served, key=lambda q: (-q.priority, q.name)))
        self.scores: dict[str, int] = {}
        self.ready_call = False
        self.ready_chat = False
        self.staffed = False


class ItemRecord:
    """A call or chat from enqueue until finished or abandoned."""

    __slots__ = (
        "agent",
        "arrival",
        "connected_at",
        "declined",
        "gen",
        "key",
        "kind",
        "name",
        "offers",
        "overflow_due",
        "priority",
        "queue",
        "queue_since",
        "seq",
        "state",
        "visited",
        "waiting_since",
    )

    def __init__(
        self, name: str, kind: str, priority: int, queue: QueueRecord, now: float, seq: int
    ) -> None:
        self.name = name
        self.kind = kind
        self.priority = priority
        self.arrival = now  # kept through overflow and transfer: the order in any queue
        self.seq = seq
        self.key: Key = (-priority, now, seq)
        self.queue = queue
        self.state = WAITING
        self.waiting_since = now  # reset by a transfer: what Connected/Abandoned report
        self.queue_since = now  # reset on entering a queue: what max_wait_s counts from
        self.offers: dict[str, int] = {}  # agent name -> offer token (its ring timer)
        self.declined: dict[str, int] = {}  # agent name -> the agent's epoch at decline
        self.visited = {queue.name}
        self.agent: str | None = None
        self.connected_at = 0.0
        self.overflow_due = False  # max_wait_s passed while ringing: overflow if unanswered
        self.gen = 0  # bumped to void this item's overflow and announcement timers
