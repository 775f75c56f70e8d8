"""What the contact center tells agents' phones, and how config becomes the ACD's."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bridge.hub import Hub, agent_topic
from hotline.config import AgentConfig, Config, QueueConfig, RoutingConfig
from hotline.contact_center import ContactCenter, acd_specs, announcement, context_headers
from routing import AgentState, Strategy

CONTEXT = {
    "intent": "prescription_refill",
    "queue": "pharmacy",
    "customer": "+15551230001",
    "confidence": 0.8712,
    "transcript": ["I need a prescription refill", "yes"],
}


def test_the_invite_carries_a_link_to_the_conversation_and_the_callers_words():
    headers = dict(context_headers(CONTEXT, "http://10.0.0.5:8080/api/conversations/42"))
    assert headers["Call-Info"] == "<http://10.0.0.5:8080/api/conversations/42>;purpose=info"
    assert headers["X-Hotline-Intent"] == "prescription_refill"
    assert headers["X-Hotline-Queue"] == "pharmacy"
    assert headers["X-Hotline-Customer"] == "+15551230001"
    assert headers["X-Hotline-Confidence"] == "0.87"
    assert headers["X-Hotline-Transcript"] == "I need a prescription refill / yes"


def test_context_headers_leave_out_what_is_unknown():
    headers = dict(context_headers({"queue": "operator", "transcript": []}, None))
    assert headers == {"X-Hotline-Queue": "operator"}


def test_a_transcript_cannot_break_the_header_or_grow_without_bound():
    said = "my chest hurts\r\nX-Evil: 1\x00" + " and more" * 100
    value = dict(context_headers({"transcript": [said]}, None))["X-Hotline-Transcript"]
    assert "\r" not in value and "\n" not in value and "\x00" not in value
    assert value.startswith("my chest hurts X-Evil: 1 and more")
    assert len(value) <= 200 and value.endswith("…")


def test_announcements_say_the_place_and_a_rounded_wait():
    assert announcement(1, 20.0) == (
        "You are next in line. The expected wait is about one minute. Thank you for holding."
    )
    assert announcement(3, 250.0) == (
        "You are number 3 in line. The expected wait is about 4 minutes. Thank you for holding."
    )


def test_configured_queues_keep_their_settings_and_the_flows_get_defaults():
    config = Config(
        agents=[AgentConfig("alice", "pw", skills={"pharmacy": 5}, queues=["pharmacy"])],
        routing=RoutingConfig(
            queues=[
                QueueConfig(
                    "pharmacy",
                    strategy="ring-all",
                    overflow_to="operator",
                    max_wait_s=30.0,
                    required_skills={"pharmacy": 2},
                )
            ],
            chat_queue="webchat",
        ),  # fmt: skip
    )
    queues, agents = acd_specs(config, ("pharmacy", "billing"))
    by_name = {q.name: q for q in queues}
    assert by_name["pharmacy"].strategy is Strategy.RING_ALL
    assert by_name["pharmacy"].required_skills == {"pharmacy": 2}
    assert by_name["pharmacy"].overflow_to == "operator"
    # the flow's, the overflow target and the chat queue exist with defaults
    assert {"billing", "operator", "webchat"} <= by_name.keys()
    assert by_name["billing"].strategy is Strategy.LONGEST_IDLE
    # every agent has a personal queue, for transfers to that person
    (alice,) = agents
    assert alice.queues == ("pharmacy", "@alice") and "@alice" in by_name
    assert alice.skills == {"pharmacy": 5}


class _Registrar:
    def lookup(self, aor: str, now: float) -> list[object]:
        return []


def _center_with_agents(*names: str) -> tuple[ContactCenter, Hub]:
    hub = Hub()
    config = Config(
        agents=[AgentConfig(n, "pw", queues=["operator"]) for n in names],
        routing=RoutingConfig(queues=[QueueConfig("operator", ring_timeout_s=30.0)]),
    )
    server = SimpleNamespace(
        config=config, hub=hub, records=None, browser_phones=None,
        registration=SimpleNamespace(registrar=_Registrar()), endpoint=SimpleNamespace(now=0.0),
    )  # fmt: skip
    center = ContactCenter(server, ())  # type: ignore[arg-type]
    for name in names:
        center._apply(center.acd.set_state(name, AgentState.AVAILABLE, center._now()))
    return center, hub


async def test_a_waiting_chat_is_offered_to_one_agent_who_takes_it():
    center, hub = _center_with_agents("ann")
    pops = hub.subscribe([agent_topic("ann")])
    center.chat_waiting(7)
    offer = await asyncio.wait_for(pops.get(), 1.0)
    assert offer == {"type": "chat.offer", "conversation_id": 7, "queue": "operator"}
    center.chat_taken(7, "ann")
    assert center.acd.agent("ann").active_chats == 1
    center.chat_ended(7)
    assert center.acd.agent("ann").active_chats == 0
    center.acd.check_invariants()


async def test_a_chat_taken_by_another_agent_leaves_the_queue_and_the_offer_is_withdrawn():
    center, hub = _center_with_agents("ann", "bob")
    center.chat_waiting(8)
    offered = center.chats["chat:8"]
    other = "bob" if offered == "ann" else "ann"
    pops = hub.subscribe([agent_topic(offered)])
    center.chat_taken(8, other)
    cancel = await asyncio.wait_for(pops.get(), 1.0)
    assert cancel["type"] == "chat.offer.cancel" and cancel["conversation_id"] == 8
    assert "chat:8" not in center.chats
    assert center.acd.queue_status()[0]["waiting"] == 0
