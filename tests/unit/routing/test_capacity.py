"""Calls and chats: separate capacities, chats do not change presence, multi-call agents."""

from acd_fixtures import agents, make, offered_to

from routing import AgentState, Offer, QueueSpec

Q = QueueSpec("q", wrap_up_s=10, announce_every_s=None)


def chat(acd, item: str, now: float) -> list[str]:  # type: ignore[no-untyped-def]
    return offered_to(acd.enqueue(item, "q", now, kind="chat"))


def test_chats_fill_max_chats_without_changing_presence() -> None:
    acd = make([Q], agents("a", max_chats=2))
    assert chat(acd, "w1", 0) == ["a"]
    assert chat(acd, "w2", 0) == ["a"]
    assert chat(acd, "w3", 0) == []  # a is full
    assert acd.agent("a").state == AgentState.AVAILABLE
    acd.answered("w1", "a", 1)
    acd.answered("w2", "a", 1)
    view = acd.agent("a")
    assert (view.state, view.active_chats, view.active_calls) == ("available", 2, 0)
    # A finished chat frees its slot at once: no wrap-up for chats.
    assert offered_to(acd.finished("w1", 5)) == ["a"]
    assert acd.agent("a").state == AgentState.AVAILABLE


def test_an_agent_with_chats_may_still_be_offered_a_call_but_not_the_reverse() -> None:
    acd = make([Q], agents("a", max_chats=3))
    chat(acd, "w1", 0)
    acd.answered("w1", "a", 0)
    assert offered_to(acd.enqueue("c1", "q", 1)) == ["a"]
    assert acd.agent("a").state == AgentState.RINGING
    assert chat(acd, "w2", 2) == []  # a call rings: no more chats
    acd.answered("c1", "a", 3)
    assert chat(acd, "w3", 4) == []  # on a call: no more chats
    actions = acd.finished("c1", 5)
    assert acd.agent("a").state == AgentState.WRAP_UP
    assert offered_to(actions) == []
    actions = acd.on_timer(15)
    assert [(a.item, a.kind) for a in actions if isinstance(a, Offer)] == [
        ("w2", "chat"),
        ("w3", "chat"),
    ]


def test_an_agent_with_max_calls_two_is_offered_a_second_call_while_busy() -> None:
    acd = make([Q], agents("a", max_calls=2))
    acd.enqueue("c1", "q", 0)
    acd.answered("c1", "a", 0)
    assert offered_to(acd.enqueue("c2", "q", 1)) == ["a"]
    assert acd.agent("a").state == AgentState.BUSY  # busy shows over ringing
    assert offered_to(acd.enqueue("c3", "q", 2)) == []
    acd.answered("c2", "a", 2)
    assert acd.agent("a").active_calls == 2
    # Wrap-up waits for the last call.
    acd.finished("c1", 10)
    assert acd.agent("a").state == AgentState.BUSY
    assert acd.position("c3") == 1
    assert offered_to(acd.on_timer(10)) == []


def test_an_agent_with_max_calls_zero_takes_only_chats() -> None:
    acd = make([Q], agents("chatter", max_calls=0))
    assert offered_to(acd.enqueue("c1", "q", 0)) == []
    assert chat(acd, "w1", 0) == ["chatter"]
    [row] = acd.queue_status()
    assert row["agents_available"] == 0  # for calls
