"""The automatic call distributor: a sans-IO state machine fed events and a clock.

Inputs are the customer's and the agents' events (``enqueue``, ``answered``,
``declined``, ``left``, ``finished``, ``transfer``, ``set_state``) and the
clock (``on_timer`` at ``next_deadline``). Each returns the actions for the
I/O shell, in order. Nothing here sleeps, reads a clock or does I/O.

Choices where a contact centre could go either way (Asterisk app_queue and
Genesys users would expect these):

- Chats do not change presence: an agent with chats stays AVAILABLE and may
  still be offered calls; chats are offered only to an agent AVAILABLE and with
  no call (ringing or connected). Wrap-up follows calls only: it starts when the
  agent's last call ends, with the agent's ``wrap_up_s`` or else the queue's;
  a chat's slot frees at once. A wrap-up of 0 makes the agent available at once.
- Pausing or going offline during a call takes effect when the last call ends
  (the agent then skips wrap-up); during ringing it cancels the offers at once
  and the items are offered elsewhere.
- A decline, a miss, or a cancel because the agent paused keeps the item away
  from that agent until the agent becomes newly available (enters AVAILABLE from
  another state); a missed offer also pauses the agent ("missed") when its spec
  says so. Ring-all rings the eligible agents available when it offers; each
  one that lets it ring out is missed (and paused), like Asterisk's autopause.
- ``max_wait_s`` counts from when the item entered its current queue; an item
  ringing at that moment overflows only if the ring ends unanswered. An item
  never overflows into a queue it has already been in.
- Positions count the items of the same kind ahead in the queue, waiting or
  ringing. ``estimated_wait_s = position * (AHT + wrap_up_s) / max(1, staffed)``
  where AHT is the queue's mean talk time so far (180 s before any) and staffed
  are the agents serving the queue who are logged in and not paused.
- Agent and customer events race with the ACD's own (a caller hangs up as the
  agent answers), so ``declined``, ``left`` and ``finished`` of an unknown item
  return nothing, and ``answered`` of an offer already gone returns
  ``CancelOffer(reason="not-offered")``; operator calls (``enqueue``,
  ``transfer``, ``set_state``) raise ``KeyError`` / ``ValueError`` on bad names.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Any

from routing.actions import (
    Abandoned,
    Action,
    AgentStateChanged,
    Announce,
    CancelOffer,
    Connected,
    Missed,
    Offer,
    Overflowed,
)
from routing.ranked import Ranked
from routing.records import (
    CONNECTED,
    KINDS,
    RINGING,
    WAITING,
    AgentRecord,
    AgentView,
    ItemRecord,
    QueueRecord,
)
from routing.specs import AgentSpec, AgentState, QueueSpec, Strategy
from routing.strategies import agent_key, serves, skill_score

DEFAULT_HANDLE_S = 180.0  # the AHT an estimate assumes before a queue has finished a call

# Timer kinds in the heap: (when, seq, kind, name, generation, agent name)
_RING, _OVERFLOW, _ANNOUNCE, _WRAP = 0, 1, 2, 3
_Timer = tuple[float, int, int, str, int, str]

_AVAILABLE = AgentState.AVAILABLE
_PAUSED = AgentState.PAUSED
_OFFLINE = AgentState.OFFLINE
_WRAP_UP = AgentState.WRAP_UP
_BUSY = AgentState.BUSY
_RINGING_STATE = AgentState.RINGING
_REQUESTABLE = (_AVAILABLE, _PAUSED, _OFFLINE)  # BUSY, RINGING, WRAP_UP are the ACD's to set


class Acd:
    """Queues, agents and the offers between them; see the module docstring."""

    def __init__(self, queues: Iterable[QueueSpec], agents: Iterable[AgentSpec], now: float):
        self._now = now
        self._queues: dict[str, QueueRecord] = {}
        for spec in queues:
            if spec.name in self._queues:
                raise ValueError(f"queue {spec.name!r} is defined twice")
            self._queues[spec.name] = QueueRecord(spec)
        for queue in self._queues.values():
            target = queue.spec.overflow_to
            if target is not None and target not in self._queues:
                raise ValueError(f"queue {queue.name!r}: overflow_to {target!r} is not a queue")
        self._agents: dict[str, AgentRecord] = {}
        self._by_ordinal: list[AgentRecord] = []
        self._items: dict[str, ItemRecord] = {}
        self._by_seq: dict[int, ItemRecord] = {}
        self._timers: list[_Timer] = []
        self._seq = 0
        self._to_route: deque[ItemRecord] = deque()
        self._to_feed: dict[str, AgentRecord] = {}
        self.decisions = 0  # Offers made so far (one per agent rung)
        self.enqueued = 0
        self.finished_count = 0
        self.abandoned_count = 0
        for agent in agents:
            self.add_agent(agent, now)

    # ------------------------------------------------------------------ inputs

    def add_agent(self, spec: AgentSpec, now: float) -> list[Action]:
        """Add an agent, OFFLINE until ``set_state(AVAILABLE)``."""
        if spec.name in self._agents:
            raise ValueError(f"agent {spec.name!r} already exists")
        for name in spec.queues:
            if name not in self._queues:
                raise ValueError(f"agent {spec.name!r}: queue {name!r} does not exist")
        self._tick(now)
        queues = [self._queues[name] for name in spec.queues]
        served = [queue for queue in queues if serves(queue.spec, spec)]
        agent = AgentRecord(spec, len(self._by_ordinal), served, now)
        for queue in agent.served:
            agent.scores[queue.name] = skill_score(queue.spec, spec.skills)
            queue.members.append(agent)
        self._agents[spec.name] = agent
        self._by_ordinal.append(agent)
        return []

    def set_state(
        self, agent: str, state: AgentState, now: float, reason: str | None = None
    ) -> list[Action]:
        """The agent asks for AVAILABLE, PAUSED (with a reason) or OFFLINE.

        AVAILABLE also ends wrap-up early. Offers ringing at the agent are
        cancelled (reason "paused" / "offline") and go to other agents.
        """
        record = self._agent(agent)
        state = AgentState(state)
        if state not in _REQUESTABLE:
            raise ValueError(f"agent {agent!r}: {state} is set by the ACD, not requested")
        self._tick(now)
        out: list[Action] = []
        if state is not _AVAILABLE:
            for item in list(record.offers.values()):
                self._drop_offer(item, record)
                item.declined[record.name] = record.epoch
                out.append(CancelOffer(item.name, record.name, str(state)))
                self._unring_if_unoffered(item)
        self._set_base(record, state, reason)
        self._sync(record, out)
        self._drain(now, out)
        return out

    def enqueue(
        self, item: str, queue: str, now: float, *, priority: int = 0, kind: str = "call"
    ) -> list[Action]:
        """A customer joins ``queue``; higher ``priority`` waits ahead of lower."""
        if kind not in KINDS:
            raise ValueError(f"item {item!r}: kind must be 'call' or 'chat', not {kind!r}")
        record = self._queue(queue)
        if item in self._items:
            raise ValueError(f"item {item!r} is already queued or connected")
        self._tick(now)
        it = ItemRecord(item, kind, priority, record, now, self._next_seq())
        self._items[item] = it
        self._by_seq[it.seq] = it
        self.enqueued += 1
        record.waiting[kind].add(it.key)
        self._arm_queue_timers(it, now)
        self._to_route.append(it)
        out: list[Action] = []
        self._drain(now, out)
        return out

    def answered(self, item: str, agent: str, now: float) -> list[Action]:
        """``agent`` took ``item``: Connected, and CancelOffer to the others rung with it."""
        it = self._items.get(item)
        record = self._agents.get(agent)
        if it is None or record is None or agent not in it.offers:
            return [CancelOffer(item, agent, "not-offered")]
        self._tick(now)
        queue = it.queue
        waited_s = now - it.waiting_since
        out: list[Action] = [Connected(item, agent, queue.name, waited_s)]
        self._drop_offer(it, record)
        others = [self._agents[name] for name in it.offers]
        for other in others:
            self._drop_offer(it, other)
            out.append(CancelOffer(item, other.name, "answered-elsewhere"))
        queue.ringing[it.kind].discard(it.seq)
        it.state = CONNECTED
        it.agent = agent
        it.connected_at = now
        it.gen += 1
        record.connected[item] = it
        if it.kind == "call":
            record.calls += 1
            record.calls_taken += 1
        else:
            record.chats += 1
            record.chats_taken += 1
        queue.answered += 1
        queue.wait_total_s += waited_s
        self._sync(record, out)
        for other in others:
            self._sync(other, out)
        self._drain(now, out)
        return out

    def declined(self, item: str, agent: str, now: float, reason: str = "rejected") -> list[Action]:
        """The agent rejected the offer (busy, rejected...): it moves on to the next agent.

        Reason "dnd" also pauses the agent with reason "dnd".
        """
        it = self._items.get(item)
        record = self._agents.get(agent)
        if it is None or record is None or agent not in it.offers:
            return []
        self._tick(now)
        out: list[Action] = []
        self._drop_offer(it, record)
        it.declined[agent] = record.epoch
        if reason == "dnd":
            self._set_base(record, _PAUSED, "dnd")
        self._sync(record, out)
        self._unring_if_unoffered(it)
        self._drain(now, out)
        return out

    def left(self, item: str, now: float) -> list[Action]:
        """The customer went away: Abandoned if not yet connected, else as ``finished``."""
        it = self._items.get(item)
        if it is None:
            return []
        self._tick(now)
        out: list[Action] = []
        if it.state == CONNECTED:
            self._end_connection(it, now, out)
            self._forget(it)
            self.finished_count += 1
        else:
            rung = self._cancel_all(it, "abandoned", out)
            queue = it.queue
            queue.waiting[it.kind].discard(it.seq)
            out.append(Abandoned(item, queue.name, now - it.waiting_since))
            queue.abandoned += 1
            self.abandoned_count += 1
            self._forget(it)
            for agent in rung:
                self._sync(agent, out)
        self._drain(now, out)
        return out

    def finished(self, item: str, now: float) -> list[Action]:
        """The conversation is over: the agent goes to wrap-up (calls), the item is gone.

        An item not connected yet is treated as ``left`` (the customer is gone).
        """
        return self.left(item, now)

    def transfer(self, item: str, queue: str, now: float) -> list[Action]:
        """Requeue a waiting, ringing or connected item into ``queue``.

        It keeps its arrival time (so it goes ahead of later arrivals of its
        priority); its agent, if connected, goes to wrap-up.
        """
        it = self._items.get(item)
        if it is None:
            raise KeyError(f"item {item!r} is not queued or connected")
        target = self._queue(queue)
        self._tick(now)
        out: list[Action] = []
        rung: list[AgentRecord] = []
        if it.state == CONNECTED:
            self._end_connection(it, now, out)
        else:
            rung = self._cancel_all(it, "transferred", out)
            it.queue.waiting[it.kind].discard(it.seq)
        it.queue = target
        it.state = WAITING
        it.waiting_since = now
        it.queue_since = now
        it.visited = {target.name}
        it.declined.clear()
        target.waiting[it.kind].add(it.key)
        self._arm_queue_timers(it, now)
        for agent in rung:
            self._sync(agent, out)
        self._to_route.append(it)
        self._drain(now, out)
        return out

    def on_timer(self, now: float) -> list[Action]:
        """Run every timer due by ``now``: ring timeouts, overflow, wrap-up ends, announcements."""
        self._tick(now)
        out: list[Action] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, kind, name, gen, agent = heapq.heappop(timers)
            if kind == _RING:
                self._ring_timeout(name, agent, gen, out)
            elif kind == _WRAP:
                record = self._agents[name]
                if record.base is _WRAP_UP and record.wrap_gen == gen:
                    self._set_base(record, _AVAILABLE, None)
                    self._sync(record, out)
            else:
                it = self._items.get(name)
                if it is None or it.gen != gen:
                    continue
                if kind == _OVERFLOW:
                    if it.state == WAITING:
                        self._overflow(it, now, out)
                    else:
                        it.overflow_due = True
                else:
                    self._announce(it, when, now, out)
            self._drain(now, out)
        return out

    def next_deadline(self) -> float | None:
        """When ``on_timer`` next has something to do, None when nothing is pending."""
        timers = self._timers
        while timers and self._is_stale(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    # ------------------------------------------------------------------ queries

    def position(self, item: str) -> int | None:
        """1-based place among the queue's items of the same kind; None once connected."""
        it = self._items.get(item)
        if it is None or it.state == CONNECTED:
            return None
        queue = it.queue
        return queue.waiting[it.kind].rank(it.key) + queue.ringing[it.kind].rank(it.key) + 1

    def estimated_wait_s(self, item: str) -> float:
        """The estimate announced to the caller (module docstring); 0 once connected."""
        position = self.position(item)
        if position is None:
            return 0.0
        queue = self._items[item].queue
        return position * self._cycle_s(queue) / max(1, queue.staffed)

    def agent(self, name: str) -> AgentView:
        """A snapshot of one agent."""
        record = self._agent(name)
        state, reason = record.reported
        return AgentView(
            name=record.name,
            state=state,
            reason=reason,
            active_calls=record.calls,
            active_chats=record.chats,
            calls_taken=record.calls_taken,
            missed=record.missed,
            idle_since=record.idle_since,
            chats_taken=record.chats_taken,
            queues=tuple(queue.name for queue in record.served),
        )

    def queue_status(self, now: float | None = None) -> list[dict[str, Any]]:
        """Per queue: load, staffing and counters; waits at ``now`` (default: the latest input)."""
        at = self._now if now is None else now
        rows = []
        for queue in self._queues.values():
            seqs = [
                seq
                for kind in KINDS
                for ranked in (queue.waiting[kind], queue.ringing[kind])
                for seq in ranked.ids()
            ]
            oldest = min((self._by_seq[seq].waiting_since for seq in seqs), default=at)
            rows.append(
                {
                    "name": queue.name,
                    "strategy": str(queue.spec.strategy),
                    "waiting": len(seqs),
                    "ringing": len(queue.ringing["call"]) + len(queue.ringing["chat"]),
                    "oldest_wait_s": max(0.0, at - oldest),
                    "agents_available": len(queue.ready["call"]),
                    "agents_staffed": queue.staffed,
                    "answered": queue.answered,
                    "abandoned": queue.abandoned,
                    "overflowed": queue.overflowed,
                    "avg_wait_s": queue.wait_total_s / queue.answered if queue.answered else 0.0,
                    "avg_handle_s": (
                        queue.handle_total_s / queue.handled if queue.handled else 0.0
                    ),
                }
            )
        return rows

    def agent_status(self) -> list[dict[str, Any]]:
        """Every agent's snapshot as a dict (``AgentView`` fields), in the order added."""
        rows = []
        for record in self._by_ordinal:
            view = self.agent(record.name)
            rows.append(
                {
                    "name": view.name,
                    "state": str(view.state),
                    "reason": view.reason,
                    "active_calls": view.active_calls,
                    "active_chats": view.active_chats,
                    "calls_taken": view.calls_taken,
                    "chats_taken": view.chats_taken,
                    "missed": view.missed,
                    "idle_since": view.idle_since,
                    "queues": list(view.queues),
                }
            )
        return rows

    def check_invariants(self) -> None:
        """Raise AssertionError if the records disagree with each other (tests call this)."""
        from routing.invariants import check

        check(self)

    # ------------------------------------------------------------------ agents

    def _agent(self, name: str) -> AgentRecord:
        try:
            return self._agents[name]
        except KeyError:
            raise KeyError(f"no agent {name!r}") from None

    def _queue(self, name: str) -> QueueRecord:
        try:
            return self._queues[name]
        except KeyError:
            raise KeyError(f"no queue {name!r}") from None

    def _set_base(self, agent: AgentRecord, base: AgentState, reason: str | None) -> None:
        if base is _AVAILABLE and agent.base is not _AVAILABLE:
            agent.epoch += 1  # newly available: earlier declines no longer count
        if agent.base is _WRAP_UP or base is _WRAP_UP:
            agent.wrap_gen += 1  # voids a pending wrap-up timer
        agent.base = base
        agent.reason = reason if base is _PAUSED or base is _OFFLINE else None

    def _sync(self, agent: AgentRecord, out: list[Action]) -> None:
        """Report a presence change, and bring the agent's ready indexes up to date."""
        calls = agent.calls
        ringing_calls = agent.ringing_calls
        base = agent.base
        state = _BUSY if calls else _RINGING_STATE if ringing_calls else base
        reason = agent.reason if state is _PAUSED or state is _OFFLINE else None
        if agent.reported[0] is not state or agent.reported[1] != reason:
            agent.reported = (state, reason)
            out.append(AgentStateChanged(agent.name, state, reason))
        available = base is _AVAILABLE
        ready_call = available and calls + ringing_calls < agent.spec.max_calls
        ready_chat = (
            available
            and not calls
            and not ringing_calls
            and agent.chats + agent.ringing_chats < agent.spec.max_chats
        )
        staffed = available or base is _WRAP_UP
        if staffed is not agent.staffed:
            agent.staffed = staffed
            step = 1 if staffed else -1
            for queue in agent.served:
                queue.staffed += step
        if ready_call or ready_chat or agent.ready_call or agent.ready_chat:
            ordinal = agent.ordinal
            for queue in agent.served:
                key = agent_key(
                    queue.spec.strategy,
                    idle_since=agent.idle_since,
                    calls_taken=agent.calls_taken,
                    score=agent.scores[queue.name],
                    ordinal=ordinal,
                )
                _place(queue.ready["call"], ordinal, key if ready_call else None)
                _place(queue.ready["chat"], ordinal, key if ready_chat else None)
        agent.ready_call = ready_call
        agent.ready_chat = ready_chat
        if ready_call or ready_chat:
            self._to_feed[agent.name] = agent

    def _feed(self, agent: AgentRecord, now: float, out: list[Action]) -> None:
        """Offer a ready agent the best waiting item across its queues, while it has room.

        Best is the queue's priority, then the item's priority, then arrival.
        """
        while agent.ready_call or agent.ready_chat:
            best: ItemRecord | None = None
            best_rank: tuple[float, ...] = ()
            for queue in agent.served:
                if best is not None and -queue.priority > best_rank[0]:
                    break  # queues are in priority order: no better one below
                for kind, ready in (("call", agent.ready_call), ("chat", agent.ready_chat)):
                    if not ready:
                        continue
                    it = self._first_not_declined(queue.waiting[kind], agent)
                    if it is not None:
                        rank = (-queue.priority, *it.key)
                        if best is None or rank < best_rank:
                            best, best_rank = it, rank
            if best is None:
                return
            if best.queue.spec.strategy is Strategy.RING_ALL:
                self._offer(best, self._pick_agents(best), now, out)
            else:
                self._offer(best, [agent], now, out)

    def _first_not_declined(self, waiting: Ranked, agent: AgentRecord) -> ItemRecord | None:
        for seq in waiting.ids():
            it = self._by_seq[seq]
            if it.declined.get(agent.name) != agent.epoch:
                return it
        return None

    # ------------------------------------------------------------------ items

    def _route(self, it: ItemRecord, now: float, out: list[Action]) -> None:
        if it.state != WAITING or self._items.get(it.name) is not it:
            return
        if it.overflow_due:
            self._overflow(it, now, out)
            return
        agents = self._pick_agents(it)
        if agents:
            self._offer(it, agents, now, out)

    def _pick_agents(self, it: ItemRecord) -> list[AgentRecord]:
        """The agents the queue's strategy rings for ``it`` now (all of them for ring-all)."""
        queue = it.queue
        ranked = queue.ready[it.kind]
        if not ranked:
            return []
        strategy = queue.spec.strategy
        ordinals = (
            ranked.ids_after((queue.rr_last,)) if strategy is Strategy.ROUND_ROBIN else ranked.ids()
        )
        chosen = []
        declined = it.declined
        for ordinal in ordinals:
            agent = self._by_ordinal[ordinal]
            if agent.name in it.offers:
                continue
            if declined and declined.get(agent.name) == agent.epoch:
                continue
            chosen.append(agent)
            if strategy is not Strategy.RING_ALL:
                break
        return chosen

    def _offer(
        self, it: ItemRecord, agents: list[AgentRecord], now: float, out: list[Action]
    ) -> None:
        queue = it.queue
        kind = it.kind
        if it.state == WAITING:
            queue.waiting[kind].discard(it.seq)
            queue.ringing[kind].add(it.key)
            it.state = RINGING
        deadline = now + queue.spec.ring_timeout_s
        for agent in agents:
            token = self._next_seq()
            it.offers[agent.name] = token
            agent.offers[it.name] = it
            if kind == "call":
                agent.ringing_calls += 1
            else:
                agent.ringing_chats += 1
            heapq.heappush(self._timers, (deadline, token, _RING, it.name, token, agent.name))
            out.append(Offer(it.name, agent.name, kind, queue.name, deadline))
            queue.rr_last = agent.ordinal
        self.decisions += len(agents)
        for agent in agents:
            self._sync(agent, out)

    def _drop_offer(self, it: ItemRecord, agent: AgentRecord) -> None:
        del it.offers[agent.name]
        del agent.offers[it.name]
        if it.kind == "call":
            agent.ringing_calls -= 1
        else:
            agent.ringing_chats -= 1

    def _cancel_all(self, it: ItemRecord, reason: str, out: list[Action]) -> list[AgentRecord]:
        """Cancel every offer of ``it`` and take it out of its ringing list (not synced yet)."""
        rung = [self._agents[name] for name in it.offers]
        for agent in rung:
            self._drop_offer(it, agent)
            out.append(CancelOffer(it.name, agent.name, reason))
        if it.state == RINGING:
            it.queue.ringing[it.kind].discard(it.seq)
            it.queue.waiting[it.kind].add(it.key)
            it.state = WAITING
        return rung

    def _unring_if_unoffered(self, it: ItemRecord) -> None:
        """An item whose last offer ended without an answer waits again, and is routed."""
        if it.state == RINGING and not it.offers:
            it.queue.ringing[it.kind].discard(it.seq)
            it.queue.waiting[it.kind].add(it.key)
            it.state = WAITING
            self._to_route.append(it)

    def _ring_timeout(self, name: str, agent_name: str, token: int, out: list[Action]) -> None:
        it = self._items.get(name)
        if it is None or it.offers.get(agent_name) != token:
            return
        agent = self._agents[agent_name]
        self._drop_offer(it, agent)
        out.append(CancelOffer(name, agent_name, "timeout"))
        out.append(Missed(name, agent_name))
        agent.missed += 1
        it.declined[agent_name] = agent.epoch
        if agent.spec.autopause_on_miss:
            self._set_base(agent, _PAUSED, "missed")
        self._sync(agent, out)
        self._unring_if_unoffered(it)

    def _end_connection(self, it: ItemRecord, now: float, out: list[Action]) -> None:
        """The agent is done with ``it``: counters, handle time, and wrap-up after a last call."""
        assert it.agent is not None
        agent = self._agents[it.agent]
        del agent.connected[it.name]
        queue = it.queue
        queue.handled += 1
        queue.handle_total_s += now - it.connected_at
        it.agent = None
        if it.kind == "call":
            agent.calls -= 1
            if not agent.calls:
                agent.idle_since = now
                if agent.base is _AVAILABLE:
                    wrap_s = agent.spec.wrap_up_s
                    if wrap_s is None:
                        wrap_s = queue.spec.wrap_up_s
                    if wrap_s > 0:
                        self._set_base(agent, _WRAP_UP, None)
                        heapq.heappush(
                            self._timers,
                            (now + wrap_s, self._next_seq(), _WRAP, agent.name, agent.wrap_gen, ""),
                        )
                    else:
                        agent.epoch += 1  # free again at once: newly available
        else:
            agent.chats -= 1
        self._sync(agent, out)

    def _forget(self, it: ItemRecord) -> None:
        del self._items[it.name]
        del self._by_seq[it.seq]
        it.gen += 1

    def _overflow(self, it: ItemRecord, now: float, out: list[Action]) -> None:
        source = it.queue
        target_name = source.spec.overflow_to
        assert target_name is not None
        target = self._queues[target_name]
        source.waiting[it.kind].discard(it.seq)
        source.overflowed += 1
        it.queue = target
        it.visited.add(target.name)
        it.queue_since = now
        target.waiting[it.kind].add(it.key)
        self._arm_queue_timers(it, now)
        out.append(Overflowed(it.name, source.name, target.name))
        self._to_route.append(it)

    def _arm_queue_timers(self, it: ItemRecord, now: float) -> None:
        """(Re)start the item's overflow and announcement timers for the queue it is in now."""
        it.gen += 1
        it.overflow_due = False
        spec = it.queue.spec
        if (
            spec.max_wait_s is not None
            and spec.overflow_to is not None
            and spec.overflow_to not in it.visited
        ):
            when = it.queue_since + spec.max_wait_s
            heapq.heappush(self._timers, (when, self._next_seq(), _OVERFLOW, it.name, it.gen, ""))
        if it.kind == "call" and spec.announce_every_s is not None:
            when = now + spec.announce_every_s
            heapq.heappush(self._timers, (when, self._next_seq(), _ANNOUNCE, it.name, it.gen, ""))

    def _announce(self, it: ItemRecord, when: float, now: float, out: list[Action]) -> None:
        every_s = it.queue.spec.announce_every_s
        assert every_s is not None
        if it.state == WAITING:  # a caller being rung hears ringback, not their position
            position = self.position(it.name)
            assert position is not None
            estimate = position * self._cycle_s(it.queue) / max(1, it.queue.staffed)
            out.append(Announce(it.name, it.queue.name, position, estimate))
        following = when + every_s
        if following <= now:  # the shell was late: do not announce twice in a row
            following = now + every_s
        heapq.heappush(self._timers, (following, self._next_seq(), _ANNOUNCE, it.name, it.gen, ""))

    # ------------------------------------------------------------------ plumbing

    def _drain(self, now: float, out: list[Action]) -> None:
        """Route the items and feed the agents that the input made ready, until none are left."""
        to_route = self._to_route
        to_feed = self._to_feed
        while to_route or to_feed:
            if to_route:
                self._route(to_route.popleft(), now, out)
            else:
                name = next(iter(to_feed))
                self._feed(to_feed.pop(name), now, out)

    def _is_stale(self, timer: _Timer) -> bool:
        _, _, kind, name, gen, agent = timer
        if kind == _RING:
            it = self._items.get(name)
            return it is None or it.offers.get(agent) != gen
        if kind == _WRAP:
            record = self._agents[name]
            return record.base is not _WRAP_UP or record.wrap_gen != gen
        it = self._items.get(name)
        return it is None or it.gen != gen

    def _cycle_s(self, queue: QueueRecord) -> float:
        talk_s = queue.handle_total_s / queue.handled if queue.handled else DEFAULT_HANDLE_S
        return talk_s + queue.spec.wrap_up_s

    def _tick(self, now: float) -> None:
        if now > self._now:
            self._now = now

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq


def _place(ranked: Ranked, ordinal: int, key: tuple[float, ...] | None) -> None:
    """Make ``ordinal`` ranked by ``key`` in ``ranked``, or absent when ``key`` is None."""
    old = ranked.key_of(ordinal)
    if old == key:
        return
    if old is not None:
        ranked.discard(ordinal)
    if key is not None:
        ranked.add(key)
