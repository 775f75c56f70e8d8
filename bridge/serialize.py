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
    "recording_json",
    "search_hit_json",
    "segment_json",
    "transcription_json",
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


def recording_json(recording: Any, job: Any = None) -> dict[str, Any]:
    """A ``Recording`` with its transcription job (schema ``Recording``).

    The file's path stays on the server: clients fetch the audio by id.
    """
    return {
        "id": recording.id,
        "conversation_id": recording.conversation_id,
        "call_id": recording.call_id,
        "format": recording.fmt,
        "duration_s": recording.duration_s,
        "size_bytes": recording.size_bytes,
        "started_at": recording.started_at,
        "ended_at": recording.ended_at,
        "node": recording.node,
        "deleted_at": recording.deleted_at,
        "audio_url": None
        if recording.deleted_at is not None
        else f"/api/recordings/{recording.id}/audio",
        "transcription": transcription_json(job) if job is not None else None,
    }


def transcription_json(job: Any) -> dict[str, Any]:
    """A ``TranscriptionJob``'s progress (schema ``Transcription``); no lease token."""
    return {
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "error": job.error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def segment_json(segment: Any) -> dict[str, Any]:
    """A ``TranscriptSegment`` (schema ``TranscriptSegment``).

    Words a redaction emptied (a masked number's second and later words) are
    left out: the first word of the span carries the mask and its start time.
    """
    return {
        "id": segment.id,
        "recording_id": segment.recording_id,
        "channel": segment.channel,
        "speaker": segment.speaker,
        "start_ms": segment.start_ms,
        "end_ms": segment.end_ms,
        "text": segment.text,
        "confidence": segment.confidence,
        "words": [
            {
                "text": word.text,
                "start_ms": word.start_ms,
                "end_ms": word.end_ms,
                "confidence": word.confidence,
            }
            for word in segment.words
            if word.text
        ],
    }


def search_hit_json(hit: Any) -> dict[str, Any]:
    """A ``SearchHit`` (schema ``SearchHit``) with the QA page link that opens it."""
    link = f"/qa?conversation={hit.conversation_id}"
    if hit.recording_id is not None:
        link += f"&recording={hit.recording_id}"
    if hit.offset_ms is not None:
        link += f"&offset_ms={hit.offset_ms}"
    return {
        "conversation_id": hit.conversation_id,
        "recording_id": hit.recording_id,
        "kind": hit.kind,
        "item_id": hit.item_id,
        "channel": hit.channel,
        "speaker": hit.speaker,
        "offset_ms": hit.offset_ms,
        "at": hit.at,
        "snippet": [{"text": text, "match": bool(match)} for text, match in hit.snippet],
        "rank": hit.rank,
        "started_at": hit.started_at,
        "duration_s": hit.duration_s,
        "queue": hit.queue,
        "agent": hit.agent,
        "intent": hit.intent,
        "link": link,
    }
