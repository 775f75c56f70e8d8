"""In-process publish/subscribe from the server and the API to open WebSockets.

``Hub.publish(topic, event)`` is a plain (non-async) call that returns at once,
so the server can call it from any callback on the loop. Each WebSocket holds
a ``Subscription`` to a few topics, with a bounded queue: a client that stops
reading is marked ``overflowed`` and its socket is closed (it reconnects and
fetches the state again over REST) instead of the hub buffering without end.

Topics (audiences):
- ``agents``: every agent page. ``conversation.updated`` (metadata, no
  text), ``agent.state``, the server's ``call.event``, and ``chat.message`` of
  chats still waiting for an agent.
- ``agent:NAME``: one agent's pages. ``chat.message`` of the chats that agent
  has, and the server's ``screen_pop`` when a call is offered to that agent.
- ``session:HASH``: the sockets of one browser session. ``session.ended`` on logout.
- ``conversation:ID``: the chat widgets showing that conversation (and agent
  pages that opened it). ``chat.message`` and ``conversation.updated``.

Events are JSON objects with a ``type``; see ``/agent``'s ``agent.js`` for what
each carries. The server's two, for reference::

    {"type": "call.event", "call_id": str, "conversation_id": int | None,
     "kind": str, "data": {...}, "at": float}
    {"type": "screen_pop", "call_id": str, "conversation_id": int | None,
     "customer": {...} | None, "intent": str | None, "queue": str | None,
     "transcript": [str, ...]}
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AGENTS",
    "Hub",
    "Subscription",
    "agent_topic",
    "conversation_topic",
    "session_topic",
]

AGENTS = "agents"
_QUEUE_EVENTS = 256  # per subscriber; an agent page reads far faster than events come


def agent_topic(name: str) -> str:
    """The topic of one agent's pages."""
    return f"agent:{name}"


def session_topic(session_hash: str) -> str:
    """The topic of one browser session's sockets (logout publishes ``session.ended``)."""
    return f"session:{session_hash}"


def conversation_topic(conversation_id: int) -> str:
    """The topic of one conversation's chat widgets."""
    return f"conversation:{conversation_id}"


class Subscription:
    """One subscriber's topics and pending events."""

    def __init__(self, hub: Hub, topics: Iterable[str], max_events: int) -> None:
        self._hub = hub
        self.topics: set[str] = set()
        self.overflowed = False
        self.closed = False
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_events)
        for topic in topics:
            self.add(topic)

    def add(self, topic: str) -> None:
        """Also receive ``topic``."""
        if not self.closed and topic not in self.topics:
            self.topics.add(topic)
            self._hub._subscribers.setdefault(topic, set()).add(self)

    def discard(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        self.topics.discard(topic)
        subscribers = self._hub._subscribers.get(topic)
        if subscribers is not None:
            subscribers.discard(self)
            if not subscribers:
                del self._hub._subscribers[topic]

    def deliver(self, event: dict[str, Any]) -> bool:
        """Queue ``event``; on a full queue mark the subscription overflowed and close it."""
        if self.closed:
            return False
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()
            return False
        return True

    async def get(self) -> dict[str, Any] | None:
        """The next event, or None once the subscription is closed."""
        if self.closed and self._events.empty():
            return None
        return await self._events.get()

    def close(self) -> None:
        """Leave every topic and wake a pending ``get`` with None."""
        if self.closed:
            return
        for topic in list(self.topics):
            self.discard(topic)
        self.closed = True
        # Wake the reader even when the queue is full: drop one event to make room.
        if self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(None)


class Hub:
    """Topics to subscriptions; see the module docstring."""

    def __init__(self, max_events: int = _QUEUE_EVENTS) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._max_events = max_events
        self.published = 0
        self.overflows = 0

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        """A new subscription to ``topics`` (more can be added later)."""
        return Subscription(self, topics, self._max_events)

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Deliver ``event`` to every subscriber of ``topic``; return how many got it."""
        self.published += 1
        delivered = 0
        for subscription in list(self._subscribers.get(topic, ())):
            if subscription.deliver(event):
                delivered += 1
            elif subscription.overflowed:
                self.overflows += 1
        return delivered

    def publish_many(self, topics: Iterable[str], event: dict[str, Any]) -> int:
        """Deliver ``event`` once to each subscriber of any of ``topics``."""
        targets: set[Subscription] = set()
        for topic in topics:
            targets.update(self._subscribers.get(topic, ()))
        self.published += 1
        delivered = 0
        for subscription in targets:
            if subscription.deliver(event):
                delivered += 1
            elif subscription.overflowed:
                self.overflows += 1
        return delivered

    def subscriber_count(self, prefix: str = "") -> int:
        """How many distinct subscriptions listen to a topic starting with ``prefix``."""
        found: set[Subscription] = set()
        for topic, subscribers in self._subscribers.items():
            if topic.startswith(prefix):
                found.update(subscribers)
        return len(found)
