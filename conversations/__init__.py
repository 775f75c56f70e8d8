"""The unified conversation store: one history per customer, across voice and web chat.

Customers, their identities (phone in E.164, e-mail, web-chat visitor id,
account id), conversations, messages and ASR utterances, call events, users,
API tokens, browser sessions and the audit log, in SQLite (the embedded
default, ``./var/hotline.db``) or PostgreSQL (for several nodes). The chain:
``Store`` (``store``: checks arguments) -> reads straight to the backend,
writes through ``BatchWriter`` (``writer``: one task, one queue, one
transaction per batch) -> ``operations`` (each transaction once, as a sans-IO
generator of SQL) -> ``backend_sqlite`` (sqlite3 on one dedicated thread) or
``backend_postgres`` (an asyncpg pool). ``migrations`` versions the schema.

May import: the standard library, asyncpg, nothing else of ours.

API (times are float seconds since the epoch, ids are ints; all async unless noted)::

    store = open_store(url)   # "sqlite:///var/hotline.db" (default) | "postgresql://u@h:p/db"
    await store.start()       # connect, migrate, start the writer;  await store.close()
    # (or: async with open_store(url) as store: ...)

    normalize_phone(raw, default_country_code="1") -> "+15551234567"   (not async)
    normalize_identity(kind, value) -> str    kind: phone | email | webchat | account

    customer_for(kind, value, display_name=None) -> Customer         find or create
    find_customer(kind, value) -> Customer | None
    get_customer(customer_id) -> Customer | None        follows merged_into
    add_identity(customer_id, kind, value) -> Customer  IdentityTaken
    merge_customers(keep_id, absorbed_id) -> Customer   moves identities + conversations

    open_conversation(customer_id, channel, status="ivr", call_id=None) -> Conversation
    update_conversation(id, *, status=, intent=, queue=, agent=, recording=) -> Conversation
    get_conversation(id) / conversation_for_call(call_id) -> Conversation | None
    list_conversations(ConversationFilter(...)) -> list[Conversation]   newest first

    add_message(conversation_id, speaker, text, *, at=, offset_ms=, confidence=) -> Message
    messages(conversation_id) -> list[Message]                    time order
    record_event(conversation_id, kind, data, at=None) -> Future[None]   NOT async
    events(conversation_id) -> list[Event]

    add_user(name, roles, password_hash) -> User; get_user(name); list_users()
    set_password(name, hash); set_agent_state(name, state) -> User
    set_roles(name, roles) -> User; set_user_disabled(name, disabled) -> User
    add_token(name, scopes, token_hash) -> ApiToken; token_by_hash(hash); list_tokens()
    revoke_token(token_id)
    add_session(session_hash, user_name, expires_at); get_session(hash) -> User | None
    delete_session(hash)
    audit(actor, action, target, detail=None) -> AuditEntry; audit_log(*, target=,
        actor=, limit=100, before_id=None) -> list[AuditEntry]   newest first
    ping() -> bool; schema_version() -> int
    stats() -> {"pending_writes", "write_lag_ms", "batches", "events_written", ...}  NOT async

Acknowledged means committed: ``add_message``, ``audit`` and every other change
return, and ``record_event``'s future resolves, only after COMMIT. Errors:
``StoreError`` and its subclasses ``InvalidValue`` (also a ValueError),
``NotFound``, ``Conflict`` (``IdentityTaken``, ``UserExists``), ``StoreClosed``,
``StoreOverloaded``.
"""

from conversations.errors import (
    Conflict,
    IdentityTaken,
    InvalidValue,
    NotFound,
    StoreClosed,
    StoreError,
    StoreOverloaded,
    UserExists,
)
from conversations.identity import normalize_identity, normalize_phone
from conversations.model import (
    CHANNELS,
    IDENTITY_KINDS,
    ROLES,
    SPEAKERS,
    STATUSES,
    ApiToken,
    AuditEntry,
    Conversation,
    ConversationFilter,
    Customer,
    Event,
    Identity,
    Message,
    User,
)
from conversations.redaction import RedactionPolicy
from conversations.store import DEFAULT_URL, Store, open_store

__all__ = [
    "CHANNELS",
    "DEFAULT_URL",
    "IDENTITY_KINDS",
    "ROLES",
    "SPEAKERS",
    "STATUSES",
    "ApiToken",
    "AuditEntry",
    "Conflict",
    "Conversation",
    "ConversationFilter",
    "Customer",
    "Event",
    "Identity",
    "IdentityTaken",
    "InvalidValue",
    "Message",
    "NotFound",
    "RedactionPolicy",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreOverloaded",
    "User",
    "UserExists",
    "normalize_identity",
    "normalize_phone",
    "open_store",
]
