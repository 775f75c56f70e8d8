"""Bad configuration and bad calls get an error that names what is wrong; status reports."""

import pytest
from acd_fixtures import agents, make, take

from routing import Acd, AgentSpec, AgentState, QueueSpec


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AgentSpec("a", skills={"x": 11}), "skill 'x' level must be an int 1..10"),
        (lambda: AgentSpec("a", skills={"x": 0}), "level must be an int 1..10"),
        (lambda: AgentSpec("", queues=("q",)), "name must not be empty"),
        (lambda: AgentSpec("a", max_calls=-1), "max_calls and max_chats must be >= 0"),
        (lambda: QueueSpec("q", required_skills={"x": True}), "level must be an int"),
        (lambda: QueueSpec("q", ring_timeout_s=0), "ring_timeout_s must be > 0"),
        (lambda: QueueSpec("q", strategy="fastest"), "'fastest' is not a valid Strategy"),  # type: ignore[arg-type]
        (lambda: Acd([QueueSpec("q"), QueueSpec("q")], [], 0), "queue 'q' is defined twice"),
        (
            lambda: Acd([QueueSpec("q", overflow_to="nowhere")], [], 0),
            "queue 'q': overflow_to 'nowhere' is not a queue",
        ),
        (
            lambda: Acd([QueueSpec("q")], [AgentSpec("a", queues=("typo",))], 0),
            "agent 'a': queue 'typo' does not exist",
        ),
    ],
)
def test_bad_configuration_is_named(build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_enqueues_are_refused() -> None:
    acd = make([QueueSpec("q")], [])
    acd.enqueue("c1", "q", 0)
    with pytest.raises(KeyError, match="no queue 'nope'"):
        acd.enqueue("c2", "nope", 0)
    with pytest.raises(ValueError, match="'c1' is already queued"):
        acd.enqueue("c1", "q", 1)
    with pytest.raises(ValueError, match="kind must be 'call' or 'chat'"):
        acd.enqueue("c3", "q", 1, kind="fax")


def test_status_reports_what_the_agent_page_and_metrics_show() -> None:
    acd = make([QueueSpec("q", wrap_up_s=0, announce_every_s=None)], agents("a", "b"))
    acd.set_state("b", AgentState.PAUSED, 0, reason="training")
    take(acd, "c1", 10)
    acd.enqueue("c2", "q", 20)
    acd.finished("c1", 70)  # a takes c2 at once
    acd.answered("c2", "a", 71)
    assert acd.agent_status() == [
        {
            "name": "a",
            "state": "busy",
            "reason": None,
            "active_calls": 1,
            "active_chats": 0,
            "calls_taken": 2,
            "chats_taken": 0,
            "missed": 0,
            "idle_since": 70,
            "queues": ["q"],
        },
        {
            "name": "b",
            "state": "paused",
            "reason": "training",
            "active_calls": 0,
            "active_chats": 0,
            "calls_taken": 0,
            "chats_taken": 0,
            "missed": 0,
            "idle_since": 0,
            "queues": ["q"],
        },
    ]
    [row] = acd.queue_status()
    assert row == {
        "name": "q",
        "strategy": "longest-idle",
        "waiting": 0,
        "ringing": 0,
        "oldest_wait_s": 0.0,
        "agents_available": 0,
        "agents_staffed": 1,
        "answered": 2,
        "abandoned": 0,
        "overflowed": 0,
        "avg_wait_s": 25.5,  # (0 + 51) / 2
        "avg_handle_s": 60.0,
    }
