"""Waiting order, positions, estimated waits and periodic announcements."""

import pytest
from acd_fixtures import agents, make, offered_to, take

from routing import DEFAULT_HANDLE_S, AgentState, Announce, QueueSpec


def test_higher_priority_waits_ahead_then_arrival_order() -> None:
    acd = make([QueueSpec("q", announce_every_s=None)], agents("a"))
    acd.set_state("a", AgentState.PAUSED, 0, reason="away")
    acd.enqueue("first", "q", 1)
    acd.enqueue("second", "q", 2)
    acd.enqueue("urgent", "q", 3, priority=5)
    acd.enqueue("urgent2", "q", 4, priority=5)
    assert [acd.position(i) for i in ("urgent", "urgent2", "first", "second")] == [1, 2, 3, 4]
    assert offered_to(acd.set_state("a", AgentState.AVAILABLE, 5)) == ["a"]
    acd.answered("urgent", "a", 6)
    assert acd.position("urgent") is None
    assert acd.position("urgent2") == 1
    assert acd.position("unknown") is None


def test_an_agent_in_several_queues_takes_the_higher_priority_queue_first() -> None:
    queues = [
        QueueSpec("low", priority=0, announce_every_s=None),
        QueueSpec("high", priority=5, announce_every_s=None),
    ]
    acd = make(queues, agents("a", queues=("low", "high")))
    acd.set_state("a", AgentState.PAUSED, 0, reason="away")
    acd.enqueue("old-low", "low", 1, priority=9)
    acd.enqueue("new-high", "high", 2)
    actions = acd.set_state("a", AgentState.AVAILABLE, 3)
    assert [a.item for a in actions if hasattr(a, "deadline")] == ["new-high"]


def test_equal_queue_priority_takes_the_longest_waiting_item() -> None:
    queues = [QueueSpec("x", announce_every_s=None), QueueSpec("y", announce_every_s=None)]
    acd = make(queues, agents("a", queues=("x", "y")))
    acd.set_state("a", AgentState.PAUSED, 0, reason="away")
    acd.enqueue("y-old", "y", 1)
    acd.enqueue("x-new", "x", 2)
    actions = acd.set_state("a", AgentState.AVAILABLE, 3)
    assert [a.item for a in actions if hasattr(a, "deadline")] == ["y-old"]


def test_estimated_wait_is_position_times_handle_plus_wrap_over_staffed_agents() -> None:
    q = QueueSpec("q", wrap_up_s=10, announce_every_s=None)
    acd = make([q], agents("a", "b", "paused"))
    acd.set_state("paused", AgentState.PAUSED, 0, reason="lunch")  # not staffed
    take(acd, "c1", 0)
    take(acd, "c2", 0)
    for n in range(3, 6):
        acd.enqueue(f"c{n}", "q", 1)
    cycle = DEFAULT_HANDLE_S + 10  # no call has finished yet
    assert acd.estimated_wait_s("c3") == pytest.approx(1 * cycle / 2)
    assert acd.estimated_wait_s("c5") == pytest.approx(3 * cycle / 2)
    acd.finished("c1", 60)  # a talked 60 s; the average handle time is now 60 s
    assert acd.estimated_wait_s("c3") == pytest.approx(1 * (60 + 10) / 2)
    assert acd.estimated_wait_s("c1") == 0.0
    [row] = acd.queue_status(now=61)
    assert row["agents_staffed"] == 2
    assert row["avg_handle_s"] == 60 and row["oldest_wait_s"] == 60


def test_the_estimate_never_divides_by_zero_agents() -> None:
    acd = make([QueueSpec("q", wrap_up_s=0, announce_every_s=None)], [])
    acd.enqueue("c1", "q", 0)
    assert acd.estimated_wait_s("c1") == DEFAULT_HANDLE_S


def test_waiting_calls_hear_their_position_every_announce_every_s() -> None:
    q = QueueSpec("q", wrap_up_s=0, announce_every_s=30)
    acd = make([q], agents("a"))
    take(acd, "c0", 0)  # a is busy
    assert acd.enqueue("c1", "q", 5) == []  # nothing at once
    acd.enqueue("c2", "q", 10)
    acd.enqueue("w1", "q", 10, kind="chat")  # chats are not announced
    assert acd.next_deadline() == 35
    # One agent staffed, no call finished yet: 180 s a place.
    assert acd.on_timer(35) == [Announce("c1", "q", 1, 180.0)]
    assert acd.on_timer(40) == [Announce("c2", "q", 2, 360.0)]
    assert acd.on_timer(65) == [Announce("c1", "q", 1, 180.0)]
    # Once c1 is offered and answered, it is no longer announced.
    acd.finished("c0", 66)
    acd.answered("c1", "a", 67)
    assert acd.on_timer(70) == [Announce("c2", "q", 1, 66.0)]  # c0 talked 66 s
    assert acd.on_timer(95) == []  # c1's would have been now


def test_a_late_timer_call_announces_once_not_for_every_period_missed() -> None:
    acd = make([QueueSpec("q", announce_every_s=10)], [])
    acd.enqueue("c1", "q", 0)
    assert len(acd.on_timer(55)) == 1
    assert acd.next_deadline() == 65
