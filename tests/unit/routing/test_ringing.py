"""Ring timeouts, missed offers and autopause, declines, dnd, and late answers."""

from acd_fixtures import agents, make, offered_to

from routing import (
    AgentState,
    AgentStateChanged,
    CancelOffer,
    Connected,
    Missed,
    Offer,
    QueueSpec,
    Strategy,
)

Q = QueueSpec("q", ring_timeout_s=15, wrap_up_s=0, announce_every_s=None)


def test_a_ring_timeout_misses_pauses_the_agent_and_offers_the_next() -> None:
    acd = make([Q], agents("a", "b"))
    assert acd.enqueue("c1", "q", 0) == [
        Offer("c1", "a", "call", "q", 15.0),
        AgentStateChanged("a", AgentState.RINGING, None),
    ]
    assert acd.next_deadline() == 15
    assert acd.on_timer(14.99) == []
    assert acd.on_timer(15) == [
        CancelOffer("c1", "a", "timeout"),
        Missed("c1", "a"),
        AgentStateChanged("a", AgentState.PAUSED, "missed"),
        Offer("c1", "b", "call", "q", 30.0),
        AgentStateChanged("b", AgentState.RINGING, None),
    ]
    assert acd.agent("a").missed == 1
    # The answer that comes after the timeout is told to hang up.
    assert acd.answered("c1", "a", 16) == [CancelOffer("c1", "a", "not-offered")]
    assert acd.answered("c1", "b", 17)[0] == Connected("c1", "b", "q", 17)


def test_without_autopause_the_agent_stays_available_but_is_not_rung_again_for_that_call() -> None:
    acd = make([Q], agents("a", "b", autopause_on_miss=False))
    acd.enqueue("c1", "q", 0)
    actions = acd.on_timer(15)
    assert AgentStateChanged("a", AgentState.AVAILABLE, None) in actions
    assert offered_to(actions) == ["b"]
    # b misses too: nobody is left who has not missed c1, so it waits: no ring loop.
    actions = acd.on_timer(30)
    assert offered_to(actions) == []
    assert acd.position("c1") == 1
    # A new call still goes to a.
    assert offered_to(acd.enqueue("c2", "q", 31)) == ["a"]


def test_a_decline_moves_on_and_the_agent_is_not_offered_the_same_call_again() -> None:
    acd = make([Q], agents("a", "b", "c"))
    acd.enqueue("c1", "q", 0)
    actions = acd.declined("c1", "a", 1)
    assert actions == [
        AgentStateChanged("a", AgentState.AVAILABLE, None),
        Offer("c1", "b", "call", "q", 16.0),
        AgentStateChanged("b", AgentState.RINGING, None),
    ]
    assert offered_to(acd.declined("c1", "b", 2, reason="busy")) == ["c"]
    assert offered_to(acd.declined("c1", "c", 3)) == []  # everyone declined: it waits
    assert acd.next_deadline() is None
    # a is free for other calls meanwhile.
    assert offered_to(acd.enqueue("c2", "q", 4)) == ["a"]
    # b becomes newly available (paused, then back): c1 may go to b again.
    acd.set_state("b", AgentState.PAUSED, 5, reason="coffee")
    assert offered_to(acd.set_state("b", AgentState.AVAILABLE, 6)) == ["b"]


def test_an_agent_added_while_everyone_declined_gets_the_call() -> None:
    acd = make([Q], agents("a"))
    acd.enqueue("c1", "q", 0)
    acd.declined("c1", "a", 1)
    acd.add_agent(agents("b")[0], 2)
    assert offered_to(acd.set_state("b", AgentState.AVAILABLE, 3)) == ["b"]


def test_declining_with_dnd_pauses_the_agent() -> None:
    acd = make([Q], agents("a", "b"))
    acd.enqueue("c1", "q", 0)
    actions = acd.declined("c1", "a", 1, reason="dnd")
    assert actions[0] == AgentStateChanged("a", AgentState.PAUSED, "dnd")
    assert offered_to(actions) == ["b"]
    assert acd.agent("a").reason == "dnd"


def test_a_decline_or_answer_of_an_unknown_offer_changes_nothing() -> None:
    acd = make([Q], agents("a", "b"))
    acd.enqueue("c1", "q", 0)
    assert acd.declined("c1", "b", 1) == []  # b was not rung
    assert acd.declined("nope", "a", 1) == []
    assert acd.answered("c1", "b", 1) == [CancelOffer("c1", "b", "not-offered")]
    assert acd.agent("a").state == AgentState.RINGING


def test_ring_all_timeout_misses_every_agent_rung() -> None:
    q = QueueSpec("q", strategy=Strategy.RING_ALL, ring_timeout_s=10, announce_every_s=None)
    acd = make([q], agents("a", "b"))
    acd.enqueue("c1", "q", 0)
    actions = acd.on_timer(10)
    assert [a for a in actions if isinstance(a, Missed)] == [Missed("c1", "a"), Missed("c1", "b")]
    assert [acd.agent(n).state for n in "ab"] == ["paused", "paused"]
    assert acd.position("c1") == 1
    # One comes back: the call rings there alone.
    assert offered_to(acd.set_state("b", AgentState.AVAILABLE, 11)) == ["b"]


def test_ring_all_decline_by_one_leaves_the_others_ringing() -> None:
    q = QueueSpec("q", strategy=Strategy.RING_ALL, announce_every_s=None)
    acd = make([q], agents("a", "b"))
    acd.enqueue("c1", "q", 0)
    assert offered_to(acd.declined("c1", "a", 1)) == []
    assert acd.agent("b").state == AgentState.RINGING
    assert acd.answered("c1", "b", 2)[0] == Connected("c1", "b", "q", 2)
