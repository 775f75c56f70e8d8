"""Text conversations: one way to find the customer, open the chat, add a message.

Both the chat widget (``ws_chat``) and the REST API (text channels with a
token, agents replying) go through these functions, so a message is stored,
then pushed to the same audiences, whichever way it came in.

Identities: a visitor is first a ``webchat`` identity. A phone number or
e-mail address the visitor gives that already belongs to another customer
(typically one who phoned before) merges the visitor into that customer, so
the agent sees the voice calls and the chats as one history. The visitor
never sees that history: only agents do.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from bridge.hub import AGENTS, Hub, agent_topic, conversation_topic
from bridge.live import Live
from bridge.serialize import conversation_json, message_json
from bridge.validation import ValidationError
from conversations import (
    ConversationFilter,
    IdentityTaken,
    NotFound,
    normalize_identity,
)

__all__ = [
    "ENDED_STATUSES",
    "ChatConflict",
    "TextChannels",
    "identify",
    "normalized_identity",
    "publish_conversation",
]

ENDED_STATUSES = frozenset({"closed", "abandoned"})


def normalized_identity(kind: str, value: str, default_country_code: str, field: str) -> str:
    """The stored form of an identity; ``ValidationError`` on ``field`` if it has none."""
    try:
        return normalize_identity(kind, value, default_country_code=default_country_code)
    except ValueError as exc:
        raise ValidationError(field, str(exc)) from None


async def identify(store: Any, customer: Any, identities: list[tuple[str, str]]) -> Any:
    """Attach normalized ``identities`` to ``customer``; merge into whoever already has one.

    The customer who already holds the identity is kept (it has the history, e.g.
    the voice calls of that phone number) and ``customer`` is merged into it.
    Returns the customer that survives.
    """
    for kind, value in identities:
        for _attempt in range(3):  # another request may take the identity in between
            holder = await store.find_customer(kind, value)
            if holder is not None and holder.id == customer.id:
                break
            if holder is not None:
                customer = await store.merge_customers(holder.id, customer.id)
                break
            try:
                customer = await store.add_identity(customer.id, kind, value)
                break
            except IdentityTaken:
                continue
    return customer


def publish_conversation(hub: Hub, conversation: Any) -> None:
    """Tell agent pages and the conversation's widgets that it changed."""
    event = {"type": "conversation.updated", "conversation": conversation_json(conversation)}
    hub.publish_many([AGENTS, conversation_topic(conversation.id)], event)


class TextChannels:
    """Opens, takes and writes text conversations for one app (see the module docstring).

    Opening and taking are check-then-write sequences over the store; a lock
    each serializes them within this process (the bridge runs as one process
    per store), so two first messages open one conversation and two agents
    cannot both take the same chat.
    """

    def __init__(self, store: Any, hub: Hub, live: Live | None = None) -> None:
        """``live``, when given, routes waiting chats to agents (``Live.chat_waiting``)."""
        self.store = store
        self.hub = hub
        self.live = live
        self._open_lock = asyncio.Lock()
        self._take_lock = asyncio.Lock()

    async def open_conversation(self, customer_id: int, channel: str) -> tuple[Any, bool]:
        """The customer's open conversation on ``channel``, or a new queued one.

        Returns ``(conversation, created)``.
        """
        async with self._open_lock:
            latest = await self.store.list_conversations(
                ConversationFilter(customer_id=customer_id, channel=channel, limit=1)
            )
            if latest and latest[0].status not in ENDED_STATUSES:
                return latest[0], False
            conversation = await self.store.open_conversation(customer_id, channel, status="queued")
        publish_conversation(self.hub, conversation)
        if self.live is not None:
            self.live.chat_waiting(conversation.id)
        return conversation, True

    async def take(self, conversation_id: int, agent: str) -> Any:
        """Give a waiting chat to ``agent`` (status connected).

        Raises:
            NotFound: no such conversation.
            ChatConflict: it is not a chat, has ended, or another agent has it.
        """
        async with self._take_lock:
            conversation = await self.store.get_conversation(conversation_id)
            if conversation is None:
                raise NotFound(f"no conversation {conversation_id}")
            if conversation.channel == "voice":
                raise ChatConflict("voice calls are offered by the call router, not taken here")
            if conversation.status in ENDED_STATUSES:
                raise ChatConflict(f"the conversation is {conversation.status}")
            if conversation.agent not in (None, agent):
                raise ChatConflict(f"{conversation.agent} has taken this conversation")
            if conversation.agent == agent and conversation.status == "connected":
                return conversation
            conversation = await self.store.update_conversation(
                conversation_id, status="connected", agent=agent
            )
        if self.live is not None:
            self.live.chat_taken(conversation_id, agent)
        publish_conversation(self.hub, conversation)
        return conversation

    async def close(self, conversation: Any) -> Any:
        """End a conversation (status closed); an ended one is returned as it is."""
        if conversation.status in ENDED_STATUSES:
            return conversation
        conversation = await self.store.update_conversation(conversation.id, status="closed")
        if self.live is not None:
            self.live.chat_ended(conversation.id)
        publish_conversation(self.hub, conversation)
        return conversation

    async def add_message(
        self, conversation: Any, speaker: str, text: str, at: float | None = None
    ) -> Any:
        """Store a message (returns once committed), then push it to who may see it.

        The conversation's widgets always; of the agents, the one who has the
        chat, or all of them while it waits (any may take it). Other agents do
        not get the text of a chat that is not theirs: reading it is an
        audited ``GET``. What is pushed and returned is the redacted text, as
        every later read shows it (a card number typed in reads ``[card]``).
        """
        written = await self.store.add_message(conversation.id, speaker, text, at=at)
        # The store returns the message as written; nobody is shown that but an admin who asks.
        message = dataclasses.replace(written, text=self.store.redaction.text(written.text))
        event = {
            "type": "chat.message",
            "conversation_id": conversation.id,
            "customer_id": conversation.customer_id,
            "message": message_json(message),
        }
        agents = agent_topic(conversation.agent) if conversation.agent else AGENTS
        self.hub.publish_many([agents, conversation_topic(conversation.id)], event)
        return message


class ChatConflict(Exception):
    """The conversation is not in a state that allows the action (409)."""
