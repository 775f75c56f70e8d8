"""The store's records: frozen, slotted dataclasses, and the vocabularies they use.

Records are snapshots: a ``Conversation`` read a moment ago does not change when
the row does. Times are float seconds since the epoch (``time.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANNELS",
    "IDENTITY_KINDS",
    "ROLES",
    "SPEAKERS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "ApiToken",
    "AuditEntry",
    "Conversation",
    "ConversationFilter",
    "Customer",
    "Event",
    "Identity",
    "Message",
    "User",
]

IDENTITY_KINDS = frozenset({"phone", "email", "webchat", "account"})
CHANNELS = frozenset({"voice", "webchat"})
STATUSES = frozenset({"ivr", "queued", "ringing", "connected", "wrap-up", "closed", "abandoned"})
TERMINAL_STATUSES = frozenset({"closed", "abandoned"})  # reaching one sets ended_at
SPEAKERS = frozenset({"customer", "agent", "ivr", "system"})
ROLES = frozenset({"agent", "qa", "admin"})


@dataclass(frozen=True, slots=True)
class Identity:
    """One way to recognise a customer, already normalised (``normalize_identity``)."""

    kind: str  # one of IDENTITY_KINDS
    value: str


@dataclass(frozen=True, slots=True)
class Customer:
    """A person, known by one or more identities.

    ``merged_into`` is set on a customer that was absorbed by another; the store
    never returns one from ``get_customer`` (it follows the link), but the field
    says where the history went.
    """

    id: int
    display_name: str | None
    created_at: float
    identities: tuple[Identity, ...]  # sorted by (kind, value)
    merged_into: int | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """One call or one chat, from first contact to the end of wrap-up."""

    id: int
    customer_id: int
    channel: str  # one of CHANNELS
    status: str  # one of STATUSES
    intent: str | None
    queue: str | None
    agent: str | None
    recording: str | None
    call_id: str | None  # the SIP Call-ID of a voice conversation
    started_at: float
    updated_at: float
    ended_at: float | None  # set when the status becomes closed or abandoned


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message or a transcribed utterance."""

    id: int
    conversation_id: int
    speaker: str  # one of SPEAKERS
    text: str
    at: float
    offset_ms: int | None  # where the utterance starts in the call's recording
    confidence: float | None  # ASR confidence in [0, 1]; None for typed text


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a conversation's timeline (``ringing``, ``dtmf``, ``transfer``...)."""

    id: int
    conversation_id: int
    kind: str
    at: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class User:
    """Somebody who logs in: an agent, QA staff, an administrator."""

    id: int
    name: str
    roles: frozenset[str]  # a subset of ROLES
    password_hash: str
    agent_state: str
    created_at: float
    disabled: bool


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A scoped bearer token for a text channel; only its hash is stored."""

    id: int
    name: str
    scopes: frozenset[str]
    created_at: float
    revoked: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which record (reads of conversations included)."""

    id: int
    at: float
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What ``list_conversations`` returns: every given field must match.

    ``since`` (inclusive) and ``until`` (exclusive) bound ``started_at``. Pages
    are newest first; pass the last id of a page as ``before_id`` for the next.
    """

    customer_id: int | None = None
    channel: str | None = None
    status: str | None = None
    queue: str | None = None
    agent: str | None = None
    intent: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    before_id: int | None = None
