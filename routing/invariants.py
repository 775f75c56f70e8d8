"""Cross-checks of the ACD's records, cheap enough for tests to run after every input.

Each item is in exactly the place its state says (one waiting or ringing list
of its queue, or one agent's connected set), offers are recorded on both sides,
agents' counters match what they hold, the ready indexes hold exactly the
agents with room (ranked by their current strategy key), no waiting item is
left beside a ready agent who may take it, and every item enqueued is live,
finished or abandoned, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routing.records import CONNECTED, KINDS, RINGING, WAITING
from routing.specs import AgentState, Strategy
from routing.strategies import agent_key

if TYPE_CHECKING:
    from routing.acd import Acd


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check(acd: Acd) -> None:
    """Raise AssertionError naming the first record that disagrees."""
    items, agents, queues = acd._items, acd._agents, acd._queues
    _require(len(items) == len(acd._by_seq), "item indexes differ in size")
    _require(
        acd.enqueued == len(items) + acd.finished_count + acd.abandoned_count,
        f"enqueued {acd.enqueued} != live {len(items)} + finished {acd.finished_count}"
        f" + abandoned {acd.abandoned_count}",
    )
    listed: set[int] = set()
    for queue in queues.values():
        for kind in KINDS:
            for state, ranked in ((WAITING, queue.waiting[kind]), (RINGING, queue.ringing[kind])):
                keys = ranked.keys()
                _require(keys == sorted(keys), f"queue {queue.name}: {state} list out of order")
                for key in keys:
                    seq = int(key[-1])
                    it = acd._by_seq.get(seq)
                    _require(it is not None, f"queue {queue.name}: lists a gone item {seq}")
                    assert it is not None
                    _require(seq not in listed, f"item {it.name} listed twice")
                    listed.add(seq)
                    _require(
                        it.state == state and it.queue is queue and it.kind == kind,
                        f"item {it.name}: {it.state} in {it.queue.name}, listed {state} in"
                        f" {queue.name}",
                    )
                    _require(key == it.key, f"item {it.name}: listed under a stale key")
    for name, it in items.items():
        _require(acd._by_seq.get(it.seq) is it, f"item {name}: not indexed by seq")
        if it.state == CONNECTED:
            _require(it.seq not in listed, f"item {name}: connected but still listed")
            _require(not it.offers, f"item {name}: connected with offers left")
            _require(
                it.agent is not None and agents[it.agent].connected.get(name) is it,
                f"item {name}: its agent does not hold it",
            )
        else:
            _require(it.seq in listed, f"item {name}: {it.state} but in no list")
            _require(
                (it.state == RINGING) == bool(it.offers), f"item {name}: {it.state} with offers"
            )
        for agent_name in it.offers:
            _require(agents[agent_name].offers.get(name) is it, f"item {name}: one-sided offer")
    for agent in agents.values():
        _check_agent(acd, agent.name)
    for queue in queues.values():
        staffed = sum(1 for agent in queue.members if agent.staffed)
        _require(queue.staffed == staffed, f"queue {queue.name}: staffed {queue.staffed}")
        for kind in KINDS:
            ready = [acd._by_ordinal[ordinal] for ordinal in queue.ready[kind].ids()]
            for it in (acd._by_seq[seq] for seq in queue.waiting[kind].ids()):
                for agent in ready:
                    _require(
                        it.declined.get(agent.name) == agent.epoch,
                        f"item {it.name} waits in {queue.name} while {agent.name} is ready",
                    )


def _check_agent(acd: Acd, name: str) -> None:
    agent = acd._agents[name]
    offered = list(agent.offers.values())
    for it in offered:
        _require(name in it.offers, f"agent {name}: one-sided offer of {it.name}")
    ringing_calls = sum(1 for it in offered if it.kind == "call")
    _require(agent.ringing_calls == ringing_calls, f"agent {name}: ringing_calls")
    _require(agent.ringing_chats == len(offered) - ringing_calls, f"agent {name}: ringing_chats")
    held = list(agent.connected.values())
    calls = sum(1 for it in held if it.kind == "call")
    _require(agent.calls == calls and agent.chats == len(held) - calls, f"agent {name}: counts")
    for it in held:
        _require(it.state == CONNECTED and it.agent == name, f"agent {name}: holds {it.name}")
    _require(
        agent.calls + agent.ringing_calls <= max(agent.spec.max_calls, agent.calls),
        f"agent {name}: over max_calls",
    )
    available = agent.base is AgentState.AVAILABLE
    _require(
        not offered or available or agent.base is AgentState.PAUSED and agent.calls > 0,
        f"agent {name}: offered while {agent.base}",
    )
    ready_call = available and agent.calls + agent.ringing_calls < agent.spec.max_calls
    ready_chat = (
        available
        and agent.calls == 0
        and agent.ringing_calls == 0
        and agent.chats + agent.ringing_chats < agent.spec.max_chats
    )
    _require(
        (agent.ready_call, agent.ready_chat) == (ready_call, ready_chat), f"agent {name}: ready"
    )
    state = (
        AgentState.BUSY
        if agent.calls
        else AgentState.RINGING
        if agent.ringing_calls
        else agent.base
    )
    _require(agent.reported[0] is state, f"agent {name}: reported {agent.reported[0]}, is {state}")
    for queue in agent.served:
        key = agent_key(
            queue.spec.strategy,
            idle_since=agent.idle_since,
            calls_taken=agent.calls_taken,
            score=agent.scores[queue.name],
            ordinal=agent.ordinal,
        )
        for kind, ready in (("call", ready_call), ("chat", ready_chat)):
            ranked_key = queue.ready[kind].key_of(agent.ordinal)
            _require(
                ranked_key == (key if ready else None),
                f"agent {name}: {kind} index of {queue.name} says {ranked_key}",
            )
        _require(queue.spec.strategy in Strategy, "unknown strategy")
