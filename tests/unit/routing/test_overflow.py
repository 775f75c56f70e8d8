"""Overflow after max_wait_s: not while ringing, keeping arrival order, never in a cycle."""

from acd_fixtures import agents, make, offered_to

from routing import AgentState, CancelOffer, Connected, Missed, Overflowed, QueueSpec


def q(name: str, **kwargs: object) -> QueueSpec:
    return QueueSpec(name, wrap_up_s=0, announce_every_s=None, **kwargs)  # type: ignore[arg-type]


def test_a_call_waiting_max_wait_s_overflows_and_keeps_its_wait() -> None:
    queues = [q("first", max_wait_s=30, overflow_to="second"), q("second")]
    acd = make(queues, agents("b", queues=("second",)))
    take_b = acd.enqueue("other", "second", 0)  # b is busy with another call
    acd.answered("other", "b", 0)
    assert offered_to(take_b) == ["b"]
    acd.enqueue("c1", "first", 5)
    assert acd.next_deadline() == 35
    actions = acd.on_timer(35)
    assert actions == [Overflowed("c1", "first", "second")]
    assert acd.position("c1") == 1
    actions = acd.finished("other", 40)
    assert offered_to(actions) == ["b"]
    assert acd.answered("c1", "b", 41)[0] == Connected("c1", "b", "second", 36)
    status = {row["name"]: row for row in acd.queue_status()}
    assert status["first"]["overflowed"] == 1
    assert status["second"]["answered"] == 2


def test_an_overflowed_call_goes_ahead_of_later_arrivals_in_its_new_queue() -> None:
    queues = [q("first", max_wait_s=30, overflow_to="second"), q("second")]
    acd = make(queues, [])
    acd.enqueue("early", "first", 0)
    acd.enqueue("late", "second", 10)
    acd.on_timer(30)
    assert acd.position("early") == 1
    assert acd.position("late") == 2


def test_max_wait_during_ringing_waits_for_the_ring_to_end() -> None:
    queues = [q("first", max_wait_s=10, overflow_to="second", ring_timeout_s=20), q("second")]
    acd = make(queues, agents("a", queues=("first",)) + agents("b", queues=("second",)))
    assert offered_to(acd.enqueue("c1", "first", 0)) == ["a"]
    assert acd.on_timer(10) == []  # still ringing a
    actions = acd.on_timer(20)
    assert actions[:2] == [CancelOffer("c1", "a", "timeout"), Missed("c1", "a")]
    assert Overflowed("c1", "first", "second") in actions
    assert offered_to(actions) == ["b"]  # not rung in "first" again


def test_max_wait_during_ringing_does_not_overflow_an_answered_call() -> None:
    queues = [q("first", max_wait_s=10, overflow_to="second"), q("second")]
    acd = make(queues, agents("a", queues=("first",)))
    acd.enqueue("c1", "first", 0)
    acd.on_timer(10)
    assert acd.answered("c1", "a", 12)[0] == Connected("c1", "a", "first", 12)


def test_overflow_chains_but_stops_at_a_queue_already_visited() -> None:
    queues = [
        q("a", max_wait_s=10, overflow_to="b"),
        q("b", max_wait_s=10, overflow_to="c"),
        q("c", max_wait_s=10, overflow_to="a"),
    ]
    acd = make(queues, [])
    acd.enqueue("c1", "a", 0)
    assert acd.on_timer(10) == [Overflowed("c1", "a", "b")]
    assert acd.on_timer(20) == [Overflowed("c1", "b", "c")]
    assert acd.next_deadline() is None  # c -> a would be a cycle: it stays in c
    assert acd.on_timer(1000) == []
    assert acd.position("c1") == 1
    [row] = [row for row in acd.queue_status() if row["name"] == "c"]
    assert row["waiting"] == 1 and row["oldest_wait_s"] == 1000


def test_a_two_queue_cycle_overflows_once() -> None:
    queues = [q("a", max_wait_s=5, overflow_to="b"), q("b", max_wait_s=5, overflow_to="a")]
    acd = make(queues, agents("x", queues=("a",)))
    acd.set_state("x", AgentState.PAUSED, 0, reason="away")
    acd.enqueue("c1", "a", 0)
    assert acd.on_timer(100) == [Overflowed("c1", "a", "b")]
    assert acd.next_deadline() is None
    # x serves only "a": coming back does not fetch a call that now waits in "b".
    assert offered_to(acd.set_state("x", AgentState.AVAILABLE, 101)) == []
