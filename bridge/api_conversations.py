"""Conversation routes: list and read (audited), open text chats, post, take, close."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.chat import ENDED_STATUSES, ChatConflict, normalized_identity
from bridge.errors import ApiError
from bridge.keys import CHANNELS
from bridge.operations import ApiRequest, OperationHandler
from bridge.pii import unredacted_read
from bridge.serialize import (
    conversation_json,
    customer_json,
    event_json,
    message_json,
)
from conversations import ConversationFilter, NotFound

__all__ = ["HANDLERS", "may_search_all"]

_FILTERS = ("customer_id", "channel", "status", "queue", "agent", "intent", "since", "until")
_DEFAULT_LIMIT = 50


def may_search_all(call: ApiRequest) -> bool:
    """QA staff, admins and tokens with conversations:read may search every conversation."""
    principal = call.caller
    return principal.kind != "user" or bool(principal.roles & {"qa", "admin"})


async def list_conversations(call: ApiRequest) -> web.Response:
    """``GET /api/conversations``: one page, newest first."""
    filters: dict[str, Any] = {name: call.params[name] for name in _FILTERS if name in call.params}
    if not may_search_all(call):
        own = filters.get("agent") == call.caller.name
        if not (own or "customer_id" in filters or filters.get("status") == "queued"):
            raise ApiError(
                403,
                "searching all conversations needs the qa role; agents may list their own "
                "(agent=NAME), one customer's (customer_id) or the waiting ones (status=queued)",
            )
    if "customer_id" in filters:
        # A merged customer's conversations moved to the survivor: list those.
        customer = await call.store.get_customer(filters["customer_id"])
        if customer is None:
            return web.json_response({"conversations": [], "next_before_id": None})
        filters["customer_id"] = customer.id
    limit = call.params.get("limit", _DEFAULT_LIMIT)
    rows = await call.store.list_conversations(
        ConversationFilter(**filters, limit=limit + 1, before_id=call.params.get("before_id"))
    )
    page = rows[:limit]
    next_before_id = page[-1].id if len(rows) > limit else None
    return web.json_response(
        {"conversations": [conversation_json(c) for c in page], "next_before_id": next_before_id}
    )


async def get_conversation(call: ApiRequest) -> web.Response:
    """``GET /api/conversations/{id}``: with customer, messages and events; audited.

    Messages are redacted (``bridge.pii``) unless an admin asks for them unredacted.
    """
    conversation_id = call.params["conversation_id"]
    conversation = await call.store.get_conversation(conversation_id)
    if conversation is None:
        raise ApiError(404, f"no conversation {conversation_id}", field="conversation_id")
    unredacted = unredacted_read(call)
    customer = await call.store.get_customer(conversation.customer_id)
    if unredacted:
        messages = await call.store.messages(conversation_id, unredacted=True)
    else:
        messages = await call.store.messages(conversation_id)  # redacted: the store's default
    events = await call.store.events(conversation_id)
    detail = {"customer_id": conversation.customer_id, "channel": conversation.channel}
    if unredacted:
        detail["unredacted"] = True
    # Written (committed) before the data leaves, so no read goes unrecorded.
    await call.store.audit(
        call.actor, "conversation.read", f"conversation:{conversation_id}", detail
    )
    return web.json_response(
        {
            "conversation": conversation_json(conversation),
            "customer": customer_json(customer) if customer is not None else None,
            "messages": [message_json(m) for m in messages],
            "events": [event_json(e) for e in events],
        }
    )


async def open_conversation(call: ApiRequest) -> web.Response:
    """``POST /api/conversations``: a text channel's conversation for an identity."""
    identity = call.body["identity"]
    value = normalized_identity(
        identity["kind"],
        identity["value"],
        call.settings.default_country_code,
        "identity.value",
    )
    customer = await call.store.customer_for(
        identity["kind"], value, display_name=call.body.get("display_name")
    )
    conversation, created = await call.request.app[CHANNELS].open_conversation(
        customer.id, call.body["channel"]
    )
    return web.json_response(conversation_json(conversation), status=201 if created else 200)


async def _conversation(call: ApiRequest) -> Any:
    conversation_id = call.params["conversation_id"]
    conversation = await call.store.get_conversation(conversation_id)
    if conversation is None:
        raise ApiError(404, f"no conversation {conversation_id}", field="conversation_id")
    return conversation


async def post_message(call: ApiRequest) -> web.Response:
    """``POST /api/conversations/{id}/messages``: stored, acknowledged, pushed."""
    conversation = await _conversation(call)
    principal = call.caller
    speaker = call.body.get("speaker")
    if principal.kind == "user":
        if speaker not in (None, "agent"):
            raise ApiError(403, "agents post as agent", field="speaker")
        speaker = "agent"
        if conversation.channel == "voice":
            raise ApiError(409, "a voice call takes no typed replies")
        if conversation.agent != principal.name:
            taken = f"{conversation.agent} has it" if conversation.agent else "take it first"
            raise ApiError(409, f"not your conversation ({taken})")
    if conversation.status in ENDED_STATUSES:
        raise ApiError(409, f"the conversation is {conversation.status}")
    message = await call.request.app[CHANNELS].add_message(
        conversation, speaker or "customer", call.body["text"], at=call.body.get("at")
    )
    return web.json_response(
        {"message": message_json(message), "conversation": conversation_json(conversation)},
        status=201,
    )


async def take_conversation(call: ApiRequest) -> web.Response:
    """``POST /api/conversations/{id}/take``: the agent takes a waiting chat."""
    try:
        conversation = await call.request.app[CHANNELS].take(
            call.params["conversation_id"], call.caller.name
        )
    except NotFound as exc:
        raise ApiError(404, str(exc), field="conversation_id") from None
    except ChatConflict as exc:
        raise ApiError(409, str(exc)) from None
    return web.json_response(conversation_json(conversation))


async def close_conversation(call: ApiRequest) -> web.Response:
    """``POST /api/conversations/{id}/close``: end a text conversation."""
    conversation = await _conversation(call)
    principal = call.caller
    if conversation.channel == "voice":
        raise ApiError(409, "a voice call ends when it hangs up")
    if (
        principal.kind == "user"
        and "admin" not in principal.roles
        and conversation.agent != principal.name
    ):
        raise ApiError(403, "only the agent who has the conversation (or an admin) may close it")
    conversation = await call.request.app[CHANNELS].close(conversation)
    return web.json_response(conversation_json(conversation))


HANDLERS: dict[str, OperationHandler] = {
    "listConversations": list_conversations,
    "getConversation": get_conversation,
    "openConversation": open_conversation,
    "postMessage": post_message,
    "takeConversation": take_conversation,
    "closeConversation": close_conversation,
}
