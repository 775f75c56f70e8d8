"""Which agent each strategy rings, and who may serve a queue at all."""

from acd_fixtures import agents, make, offered_to, take

from routing import AgentSpec, CancelOffer, Connected, QueueSpec, Strategy


def queue(strategy: Strategy, **kwargs: object) -> QueueSpec:
    return QueueSpec("q", strategy=strategy, wrap_up_s=0, announce_every_s=None, **kwargs)  # type: ignore[arg-type]


def test_longest_idle_rings_the_agent_whose_last_call_ended_longest_ago() -> None:
    acd = make([queue(Strategy.LONGEST_IDLE)], agents("a", "b", "c"))
    # Nobody has had a call yet: ties go to the order the agents were added.
    assert take(acd, "c1", 1) == "a"
    assert take(acd, "c2", 2) == "b"
    acd.finished("c2", 3)  # b idle since 3
    acd.finished("c1", 4)  # a idle since 4
    assert take(acd, "c3", 5) == "c"  # c never had a call: idle since it was added
    assert take(acd, "c4", 6) == "b"  # then b (3) before a (4)
    assert take(acd, "c5", 7) == "a"


def test_round_robin_rotates_past_the_agent_offered_last() -> None:
    acd = make([queue(Strategy.ROUND_ROBIN)], agents("a", "b", "c"))
    assert take(acd, "c1", 1) == "a"
    acd.finished("c1", 2)  # a is free again, but b is next in the rotation
    assert take(acd, "c2", 3) == "b"
    assert take(acd, "c3", 4) == "c"
    acd.finished("c2", 5)
    acd.finished("c3", 5)
    assert take(acd, "c4", 6) == "a"  # wraps around
    assert take(acd, "c5", 7) == "b"


def test_round_robin_skips_agents_who_are_not_ready() -> None:
    acd = make([queue(Strategy.ROUND_ROBIN)], agents("a", "b", "c"))
    assert take(acd, "c1", 1) == "a"
    assert take(acd, "c2", 2) == "b"  # b busy now, c free
    acd.finished("c1", 3)
    assert take(acd, "c3", 4) == "c"
    assert take(acd, "c4", 5) == "a"  # b is busy: the rotation passes it


def test_ring_all_rings_every_ready_agent_and_the_first_answer_wins() -> None:
    acd = make([queue(Strategy.RING_ALL)], agents("a", "b", "c"))
    actions = acd.enqueue("c1", "q", 1)
    assert offered_to(actions) == ["a", "b", "c"]
    assert [agent.state for agent in map(acd.agent, "abc")] == ["ringing"] * 3
    actions = acd.answered("c1", "b", 2)
    assert actions[0] == Connected("c1", "b", "q", 1)
    assert [a for a in actions if isinstance(a, CancelOffer)] == [
        CancelOffer("c1", "a", "answered-elsewhere"),
        CancelOffer("c1", "c", "answered-elsewhere"),
    ]
    assert [acd.agent(name).state for name in "abc"] == ["available", "busy", "available"]
    # The losers were not missed and are not paused.
    assert acd.agent("a").missed == 0
    # A second answer arriving late is told to hang up.
    assert acd.answered("c1", "c", 2.1) == [CancelOffer("c1", "c", "not-offered")]


def test_least_calls_rings_the_agent_with_fewest_calls_taken_ties_longest_idle() -> None:
    acd = make([queue(Strategy.LEAST_CALLS)], agents("a", "b", "c"))
    assert take(acd, "c1", 1) == "a"
    acd.finished("c1", 2)
    assert take(acd, "c2", 3) == "b"
    acd.finished("c2", 4)
    assert take(acd, "c3", 5) == "c"
    acd.finished("c3", 6)
    # All took one call: longest idle is a (since 2).
    assert take(acd, "c4", 7) == "a"
    acd.finished("c4", 8)
    # a has two now; b (idle since 4) and c (since 6) have one.
    assert take(acd, "c5", 9) == "b"
    assert take(acd, "c6", 10) == "c"


def test_skill_weighted_rings_the_highest_sum_of_required_skills() -> None:
    q = queue(Strategy.SKILL_WEIGHTED, required_skills={"spanish": 3, "billing": 1})
    specs = [
        AgentSpec("low", skills={"spanish": 3, "billing": 1}, queues=("q",)),
        AgentSpec("high", skills={"spanish": 9, "billing": 5}, queues=("q",)),
        AgentSpec("mid", skills={"spanish": 5, "billing": 5, "french": 10}, queues=("q",)),
        AgentSpec("unskilled", skills={"spanish": 2, "billing": 10}, queues=("q",)),
    ]
    acd = make([q], specs)
    assert take(acd, "c1", 1) == "high"
    assert take(acd, "c2", 2) == "mid"  # french does not count for this queue
    assert take(acd, "c3", 3) == "low"
    # unskilled lists the queue but lacks spanish 3: never offered, the call waits.
    assert offered_to(acd.enqueue("c4", "q", 4)) == []
    assert acd.agent("unskilled").queues == ()


def test_skill_weighted_without_required_skills_uses_the_skill_named_like_the_queue() -> None:
    specs = [
        AgentSpec("none", queues=("q",)),
        AgentSpec("four", skills={"q": 4}, queues=("q",)),
        AgentSpec("eight", skills={"q": 8, "other": 10}, queues=("q",)),
    ]
    acd = make([queue(Strategy.SKILL_WEIGHTED)], specs)
    assert [take(acd, f"c{n}", n) for n in range(3)] == ["eight", "four", "none"]


def test_skill_weighted_ties_go_to_the_longest_idle() -> None:
    specs = [AgentSpec(name, skills={"q": 5}, queues=("q",)) for name in ("a", "b")]
    acd = make([queue(Strategy.SKILL_WEIGHTED)], specs)
    assert take(acd, "c1", 1) == "a"
    acd.finished("c1", 2)
    assert take(acd, "c2", 3) == "b"


def test_an_agent_serves_only_listed_queues_where_it_meets_every_minimum() -> None:
    queues = [
        QueueSpec("general"),
        QueueSpec("cardiology", required_skills={"nurse": 5, "cardio": 3}),
    ]
    specs = [
        AgentSpec("nurse", skills={"nurse": 7, "cardio": 3}, queues=("general", "cardiology")),
        AgentSpec("clerk", skills={"nurse": 7}, queues=("cardiology",)),
        AgentSpec("other", skills={"nurse": 9, "cardio": 9}, queues=("general",)),
    ]
    acd = make(queues, specs)
    assert acd.agent("nurse").queues == ("cardiology", "general")
    assert acd.agent("clerk").queues == ()
    assert acd.agent("other").queues == ("general",)
    assert offered_to(acd.enqueue("c1", "cardiology", 1)) == ["nurse"]
    assert offered_to(acd.enqueue("c2", "cardiology", 1)) == []  # only nurse serves it
