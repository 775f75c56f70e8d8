"""An agent's presence: logging in, pausing with a reason, wrap-up, going offline mid-offer."""

import pytest
from acd_fixtures import CheckedAcd, agents, make, offered_to, take

from routing import AgentSpec, AgentState, AgentStateChanged, CancelOffer, Offer, QueueSpec

Q = QueueSpec("q", wrap_up_s=10, announce_every_s=None)


def test_agents_start_offline_and_are_offered_nothing_until_available() -> None:
    acd = CheckedAcd([Q], agents("a"), 0)
    assert acd.agent("a").state == AgentState.OFFLINE
    assert acd.enqueue("c1", "q", 1) == []
    actions = acd.set_state("a", AgentState.AVAILABLE, 2)
    assert actions == [
        AgentStateChanged("a", AgentState.AVAILABLE, None),
        Offer("c1", "a", "call", "q", 17.0),
        AgentStateChanged("a", AgentState.RINGING, None),
    ]


def test_wrap_up_follows_a_call_and_ends_by_itself_after_the_queues_wrap_up_s() -> None:
    acd = make([Q], agents("a"))
    take(acd, "c1", 1)
    assert acd.finished("c1", 61) == [AgentStateChanged("a", AgentState.WRAP_UP, None)]
    assert acd.agent("a").idle_since == 61
    assert offered_to(acd.enqueue("c2", "q", 62)) == []  # not during wrap-up
    assert acd.next_deadline() == 71
    assert acd.on_timer(70.9) == []
    actions = acd.on_timer(71)
    assert actions[0] == AgentStateChanged("a", AgentState.AVAILABLE, None)
    assert offered_to(actions) == ["a"]


def test_the_agents_own_wrap_up_overrides_the_queues() -> None:
    acd = make([Q], agents("a", wrap_up_s=3.0))
    take(acd, "c1", 1)
    acd.finished("c1", 5)
    assert acd.next_deadline() == 8


def test_ending_wrap_up_early_voids_the_timer() -> None:
    acd = make([Q], agents("a"))
    take(acd, "c1", 1)
    acd.finished("c1", 5)
    assert acd.set_state("a", AgentState.AVAILABLE, 6) == [
        AgentStateChanged("a", AgentState.AVAILABLE, None)
    ]
    assert acd.next_deadline() is None
    assert acd.on_timer(100) == []  # no second AVAILABLE at 15


def test_a_paused_agent_keeps_its_reason_and_is_offered_nothing() -> None:
    acd = make([Q], agents("a"))
    assert acd.set_state("a", AgentState.PAUSED, 1, reason="lunch") == [
        AgentStateChanged("a", AgentState.PAUSED, "lunch")
    ]
    view = acd.agent("a")
    assert (view.state, view.reason) == ("paused", "lunch")
    assert acd.enqueue("c1", "q", 2) == []
    assert offered_to(acd.set_state("a", AgentState.AVAILABLE, 3)) == ["a"]


def test_going_offline_while_ringing_cancels_and_offers_the_call_elsewhere() -> None:
    acd = make([Q], agents("a", "b"))
    assert offered_to(acd.enqueue("c1", "q", 1)) == ["a"]
    actions = acd.set_state("a", AgentState.OFFLINE, 2)
    assert actions[0] == CancelOffer("c1", "a", "offline")
    assert AgentStateChanged("a", AgentState.OFFLINE, None) in actions
    assert offered_to(actions) == ["b"]
    assert acd.position("c1") == 1


def test_pausing_while_ringing_cancels_with_reason_paused() -> None:
    acd = make([Q], agents("a", "b"))
    acd.enqueue("c1", "q", 1)
    actions = acd.set_state("a", AgentState.PAUSED, 2, reason="break")
    assert actions[0] == CancelOffer("c1", "a", "paused")
    assert AgentStateChanged("a", AgentState.PAUSED, "break") in actions
    assert offered_to(actions) == ["b"]


def test_a_pause_asked_during_a_call_shows_when_the_call_ends_without_wrap_up() -> None:
    acd = make([Q], agents("a"))
    take(acd, "c1", 1)
    assert acd.set_state("a", AgentState.PAUSED, 2, reason="meeting") == []  # still BUSY
    assert acd.agent("a").state == AgentState.BUSY
    assert acd.finished("c1", 3) == [AgentStateChanged("a", AgentState.PAUSED, "meeting")]
    assert acd.next_deadline() is None


def test_the_acd_states_cannot_be_requested_and_unknown_agents_are_named() -> None:
    acd = make([Q], agents("a"))
    for state in (AgentState.BUSY, AgentState.RINGING, AgentState.WRAP_UP):
        with pytest.raises(ValueError, match="set by the ACD"):
            acd.set_state("a", state, 1)
    with pytest.raises(KeyError, match="no agent 'zed'"):
        acd.set_state("zed", AgentState.AVAILABLE, 1)
    with pytest.raises(ValueError, match="already exists"):
        acd.add_agent(AgentSpec("a"), 1)


def test_an_agent_added_later_serves_its_queues_once_available() -> None:
    acd = make([Q], [])
    acd.enqueue("c1", "q", 1)
    assert acd.add_agent(AgentSpec("late", queues=("q",)), 2) == []
    assert offered_to(acd.set_state("late", AgentState.AVAILABLE, 3)) == ["late"]
