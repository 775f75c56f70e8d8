"""``/ws/chat``: the customer's chat widget.

The visitor is known by the signed ``hotline_visitor`` cookie that ``/chat``
sets (no account); the handshake's ``Origin`` must be ours. The customer is
the one holding the visitor's ``webchat`` identity, created at the first
frame that needs it.

Client frames:
- ``{"type": "hello", "name"?, "email"?, "phone"?}``: who the visitor says they
  are. The e-mail and phone become identities of the customer; one that
  already belongs to a customer (a caller, say) merges the visitor into that
  customer (``chat.identify``). Answered ``identified``.
- ``{"type": "message", "text", "client_id"?}``: stored in the visitor's open
  chat (opened, queued for agents, if there is none), then answered ``ack``
  with the message id and the ``client_id`` given.
- ``{"type": "ping"}``: answered ``pong``.

Server frames: ``welcome`` (on connect: ``conversation`` and its ``messages``,
or null and []), ``message`` (every message of the visitor's chat, theirs
included, with its id so tabs can de-duplicate), ``conversation`` (``status``,
and ``agent`` once an agent took it), ``identified``, ``ack``, ``pong`` and
``error`` (``{error, field}``, the REST errors' twin).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMsgType, web

from bridge.auth import VISITOR_COOKIE, unsign_visitor
from bridge.chat import ENDED_STATUSES, identify, normalized_identity
from bridge.errors import ApiError
from bridge.hub import conversation_topic
from bridge.keys import CHANNELS, HUB, SETTINGS, STORE
from bridge.sockets import (
    check_origin,
    open_socket,
    pump,
    read_frame,
    send,
    send_error,
    serve_socket,
)
from bridge.validation import ValidationError, validate
from conversations import ConversationFilter

__all__ = ["FRAME_SCHEMAS", "chat_socket"]

log = logging.getLogger(__name__)

FRAME_SCHEMAS: dict[str, dict[str, Any]] = {
    "hello": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string"},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "email": {"type": "string", "minLength": 3, "maxLength": 254, "pattern": "@"},
            "phone": {"type": "string", "minLength": 3, "maxLength": 40},
        },
    },
    "message": {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string"},
            "text": {"type": "string", "minLength": 1, "maxLength": 4000},
            "client_id": {"type": "string", "minLength": 1, "maxLength": 64},
        },
    },
    "ping": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"type": {"type": "string"}},
    },
}


def _public_conversation(conversation: Any) -> dict[str, Any]:
    """What the visitor may see of their conversation."""
    return {"id": conversation.id, "status": conversation.status, "agent": conversation.agent}


def _public_message(message: dict[str, Any]) -> dict[str, Any]:
    return {key: message[key] for key in ("id", "speaker", "text", "at")}


class ChatSession:
    """One widget connection: the visitor, their customer and their open chat."""

    def __init__(self, request: web.Request, socket: web.WebSocketResponse, visitor: str) -> None:
        self.app = request.app
        self.socket = socket
        self.visitor = visitor
        self.store = request.app[STORE]
        self.subscription = request.app[HUB].subscribe(())
        self.conversation: Any = None

    async def start(self) -> None:
        """Find the visitor's open chat and send ``welcome`` with its messages."""
        customer = await self.store.find_customer("webchat", self.visitor)
        messages: list[dict[str, Any]] = []
        if customer is not None:
            conversation = await self._latest_open(customer.id)
            if conversation is not None:
                self._follow(conversation)
                stored = await self.store.messages(conversation.id)
                messages = [
                    {"id": m.id, "speaker": m.speaker, "text": m.text, "at": m.at} for m in stored
                ]
        await send(
            self.socket,
            {
                "type": "welcome",
                "conversation": _public_conversation(self.conversation)
                if self.conversation is not None
                else None,
                "messages": messages,
            },
        )

    async def _latest_open(self, customer_id: int) -> Any:
        latest = await self.store.list_conversations(
            ConversationFilter(customer_id=customer_id, channel="webchat", limit=1)
        )
        return latest[0] if latest and latest[0].status not in ENDED_STATUSES else None

    def _follow(self, conversation: Any) -> None:
        if self.conversation is not None and self.conversation.id != conversation.id:
            self.subscription.discard(conversation_topic(self.conversation.id))
        self.conversation = conversation
        self.subscription.add(conversation_topic(conversation.id))

    async def _customer(self, display_name: str | None = None) -> Any:
        return await self.store.customer_for("webchat", self.visitor, display_name=display_name)

    async def hello(self, frame: dict[str, Any]) -> None:
        """Attach the identities the visitor gave."""
        country = self.app[SETTINGS].default_country_code
        identities = []
        if "email" in frame:
            identities.append(
                ("email", normalized_identity("email", frame["email"], country, "email"))
            )
        if "phone" in frame:
            identities.append(
                ("phone", normalized_identity("phone", frame["phone"], country, "phone"))
            )
        customer = await self._customer(frame.get("name"))
        customer = await identify(self.store, customer, identities)
        await send(
            self.socket,
            {"type": "identified", "name": customer.display_name or frame.get("name")},
        )

    async def message(self, frame: dict[str, Any]) -> None:
        """Store the visitor's message in their open chat (opening one if needed)."""
        customer = await self._customer()
        conversation, created = await self.app[CHANNELS].open_conversation(customer.id, "webchat")
        self._follow(conversation)
        if created:  # published before this socket followed it
            await send(
                self.socket,
                {"type": "conversation", "conversation": _public_conversation(conversation)},
            )
        message = await self.app[CHANNELS].add_message(conversation, "customer", frame["text"])
        ack: dict[str, Any] = {"type": "ack", "id": message.id, "conversation_id": conversation.id}
        if "client_id" in frame:
            ack["client_id"] = frame["client_id"]
        await send(self.socket, ack)

    async def translate(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Hub events as the widget sees them (nothing of other customers reaches here)."""
        kind = event.get("type")
        if kind == "chat.message":
            return {"type": "message", "message": _public_message(event["message"])}
        if kind == "conversation.updated":
            conversation = event["conversation"]
            return {
                "type": "conversation",
                "conversation": {
                    "id": conversation["id"],
                    "status": conversation["status"],
                    "agent": conversation["agent"],
                },
            }
        return None


async def chat_socket(request: web.Request) -> web.StreamResponse:
    """The handshake and the socket's life; see the module docstring."""
    check_origin(request)
    cookie = request.cookies.get(VISITOR_COOKIE)
    visitor = unsign_visitor(request.app[SETTINGS].secret_key, cookie) if cookie else None
    if visitor is None:
        raise ApiError(401, "no chat visitor cookie; open /chat first")
    socket = await open_socket(request)
    session = ChatSession(request, socket, visitor)

    async def read() -> None:
        async for raw in socket:
            if raw.type != WSMsgType.TEXT:
                continue
            try:
                frame = read_frame(raw.data)
                schema = FRAME_SCHEMAS.get(frame["type"])
                if schema is None:
                    raise ValidationError("type", "must be hello, message or ping")
                validate(frame, schema)
                if frame["type"] == "hello":
                    await session.hello(frame)
                elif frame["type"] == "message":
                    await session.message(frame)
                else:
                    await send(socket, {"type": "pong"})
            except ValidationError as exc:
                await send_error(socket, exc.message, exc.field)
            except Exception:  # a bug or a store failure: this frame fails, the chat goes on
                log.exception("chat frame failed (visitor %s)", visitor)
                await send_error(socket, "internal error (logged on the server)")

    try:
        await session.start()
        await serve_socket(socket, read(), pump(socket, session.subscription, session.translate))
    finally:
        session.subscription.close()
    return socket
