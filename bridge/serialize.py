"""The store's records as the JSON objects the API documents (``openapi`` schemas)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "agent_json",
    "audit_json",
    "conversation_json",
    "customer_json",
    "event_json",
    "message_json",
]


def customer_json(customer: Any) -> dict[str, Any]:
    """A ``Customer`` (schema ``Customer``)."""
    return {
        "id": customer.id,
        "display_name": customer.display_name,
        "created_at": customer.created_at,
        "identities": [
            {"kind": identity.kind, "value": identity.value} for identity in customer.identities
        ],
        "merged_into": customer.merged_into,
    }


def conversation_json(conversation: Any) -> dict[str, Any]:
    """A ``Conversation`` (schema ``Conversation``)."""
    return {
        "id": conversation.id,
        "customer_id": conversation.customer_id,
        "channel": conversation.channel,
        "status": conversation.status,
        "intent": conversation.intent,
        "queue": conversation.queue,
        "agent": conversation.agent,
        "recording": conversation.recording,
        "call_id": conversation.call_id,
        "started_at": conversation.started_at,
        "updated_at": conversation.updated_at,
        "ended_at": conversation.ended_at,
    }


def message_json(message: Any) -> dict[str, Any]:
    """A ``Message`` (schema ``Message``)."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "speaker": message.speaker,
        "text": message.text,
        "at": message.at,
        "offset_ms": message.offset_ms,
        "confidence": message.confidence,
    }


def event_json(event: Any) -> dict[str, Any]:
    """An ``Event`` (schema ``Event``)."""
    return {
        "id": event.id,
        "conversation_id": event.conversation_id,
        "kind": event.kind,
        "at": event.at,
        "data": event.data,
    }


def agent_json(user: Any, routed: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``User`` with the agent role (schema ``Agent``), in routing's state when routed."""
    state = routed["state"] if routed else user.agent_state
    reason = routed.get("reason") if routed else None
    return {"name": user.name, "roles": sorted(user.roles), "state": state, "reason": reason}


def audit_json(entry: Any) -> dict[str, Any]:
    """An ``AuditEntry`` (schema ``AuditEntry``)."""
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
    }
