"""The hub: topics reach their subscribers only, a slow subscriber is cut off."""

from __future__ import annotations

import asyncio

from bridge.hub import AGENTS, Hub, agent_topic, conversation_topic


async def test_events_reach_the_subscribers_of_their_topic_only() -> None:
    hub = Hub()
    agents = hub.subscribe([AGENTS])
    ann = hub.subscribe([agent_topic("ann")])
    assert hub.publish(AGENTS, {"type": "a"}) == 1
    assert hub.publish(agent_topic("ann"), {"type": "b"}) == 1
    assert hub.publish(agent_topic("bob"), {"type": "c"}) == 0
    assert await agents.get() == {"type": "a"}
    assert await ann.get() == {"type": "b"}
    assert ann._events.empty() and agents._events.empty()


async def test_publish_many_delivers_once_to_a_subscriber_of_several_topics() -> None:
    hub = Hub()
    both = hub.subscribe([AGENTS, conversation_topic(7)])
    widget = hub.subscribe([conversation_topic(7)])
    delivered = hub.publish_many([AGENTS, conversation_topic(7)], {"type": "m"})
    assert delivered == 2
    assert await both.get() == {"type": "m"}
    assert both._events.empty()
    assert await widget.get() == {"type": "m"}


async def test_topics_can_be_added_and_dropped() -> None:
    hub = Hub()
    subscription = hub.subscribe(())
    subscription.add(conversation_topic(1))
    hub.publish(conversation_topic(1), {"n": 1})
    subscription.discard(conversation_topic(1))
    hub.publish(conversation_topic(1), {"n": 2})
    assert await subscription.get() == {"n": 1}
    assert subscription._events.empty()
    assert hub.subscriber_count() == 0


async def test_a_subscriber_that_stops_reading_is_closed_not_buffered() -> None:
    hub = Hub(max_events=3)
    slow = hub.subscribe([AGENTS])
    fast = hub.subscribe([AGENTS])
    for n in range(4):
        hub.publish(AGENTS, {"n": n})
        assert await fast.get() == {"n": n}
    assert slow.overflowed and slow.closed
    assert hub.overflows == 1
    assert hub.subscriber_count(AGENTS) == 1
    received = []
    while (event := await slow.get()) is not None:
        received.append(event["n"])
    assert received == [1, 2]  # one dropped to make room for the wake-up


async def test_close_wakes_a_waiting_reader() -> None:
    hub = Hub()
    subscription = hub.subscribe([AGENTS])
    waiter = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    subscription.close()
    assert await asyncio.wait_for(waiter, 1) is None
    assert hub.publish(AGENTS, {"type": "late"}) == 0
