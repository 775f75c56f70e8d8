"""Customers leaving (waiting, ringing, connected) and transfers between queues."""

import pytest
from acd_fixtures import agents, make, offered_to, take

from routing import (
    Abandoned,
    AgentState,
    AgentStateChanged,
    CancelOffer,
    Connected,
    QueueSpec,
    Strategy,
)

Q = QueueSpec("q", wrap_up_s=5, announce_every_s=None)


def test_leaving_while_waiting_is_abandoned_and_those_behind_move_up() -> None:
    acd = make([Q], [])
    for n, item in enumerate(("c1", "c2", "c3")):
        acd.enqueue(item, "q", n)
    assert acd.left("c1", 12) == [Abandoned("c1", "q", 12)]
    assert [acd.position(item) for item in ("c1", "c2", "c3")] == [None, 1, 2]
    assert acd.left("c1", 13) == []  # already gone
    [row] = acd.queue_status()
    assert (row["abandoned"], row["waiting"]) == (1, 2)


def test_leaving_while_ringing_cancels_every_offer_then_abandons() -> None:
    ring_all = QueueSpec("q", strategy=Strategy.RING_ALL, announce_every_s=None)
    acd = make([ring_all], agents("a", "b"))
    acd.enqueue("c1", "q", 0)
    actions = acd.left("c1", 3)
    assert actions == [
        CancelOffer("c1", "a", "abandoned"),
        CancelOffer("c1", "b", "abandoned"),
        Abandoned("c1", "q", 3),
        AgentStateChanged("a", AgentState.AVAILABLE, None),
        AgentStateChanged("b", AgentState.AVAILABLE, None),
    ]
    assert acd.next_deadline() is None  # the ring timers are void
    assert acd.on_timer(100) == []


def test_leaving_once_connected_is_the_same_as_finished() -> None:
    acd = make([Q], agents("a"))
    take(acd, "c1", 0)
    assert acd.left("c1", 60) == [AgentStateChanged("a", AgentState.WRAP_UP, None)]
    assert acd.finished("c1", 61) == []
    [row] = acd.queue_status()
    assert (row["answered"], row["abandoned"], row["avg_handle_s"]) == (1, 0, 60)


def test_finished_before_connected_counts_as_abandoned() -> None:
    acd = make([Q], [])
    acd.enqueue("c1", "q", 0)
    assert acd.finished("c1", 4) == [Abandoned("c1", "q", 4)]


def test_transfer_of_a_connected_call_wraps_the_agent_up_and_queues_it_again() -> None:
    queues = [Q, QueueSpec("billing", wrap_up_s=0, announce_every_s=None)]
    specs = agents("a") + agents("b", queues=("billing",))
    acd = make(queues, specs)
    take(acd, "c1", 0)
    acd.enqueue("held", "billing", 1)  # b takes "held"; "late" waits behind c1 later
    acd.answered("held", "b", 1)
    acd.enqueue("late", "billing", 2)
    actions = acd.transfer("c1", "billing", 30)
    assert actions == [AgentStateChanged("a", AgentState.WRAP_UP, None)]
    # c1 keeps its arrival time (0): it waits ahead of "late" (2).
    assert acd.position("c1") == 1 and acd.position("late") == 2
    actions = acd.finished("held", 40)
    assert offered_to(actions) == ["b"] and actions[1].item == "c1"  # type: ignore[union-attr]
    # Its wait in the new queue starts at the transfer.
    assert acd.answered("c1", "b", 41)[0] == Connected("c1", "b", "billing", 11)


def test_transfer_of_a_ringing_call_cancels_the_offer() -> None:
    queues = [Q, QueueSpec("billing", announce_every_s=None)]
    acd = make(queues, agents("a") + agents("b", queues=("billing",)))
    acd.enqueue("c1", "q", 0)
    actions = acd.transfer("c1", "billing", 1)
    assert actions[0] == CancelOffer("c1", "a", "transferred")
    assert offered_to(actions) == ["b"]
    assert acd.agent("a").state == AgentState.AVAILABLE


def test_transfer_of_a_waiting_call_and_to_unknown_places() -> None:
    queues = [Q, QueueSpec("billing", announce_every_s=None)]
    acd = make(queues, agents("b", queues=("billing",)))
    acd.enqueue("c1", "q", 0)
    assert offered_to(acd.transfer("c1", "billing", 1)) == ["b"]
    with pytest.raises(KeyError, match="no queue 'nowhere'"):
        acd.transfer("c1", "nowhere", 2)
    with pytest.raises(KeyError, match="'ghost'"):
        acd.transfer("ghost", "q", 2)
