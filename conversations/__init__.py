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
Recordings, the durable transcription job queue and transcripts are
``operations_recordings``; the search index and search ``operations_search``,
over ``search_query`` (the query language) and ``search_match`` (snippets).
``redaction`` masks PII before anything is stored or indexed.

May import: the standard library, asyncpg, nothing else of ours.

API (times are float seconds since the epoch, ids are ints; all async unless noted)::

    store = open_store(url, redaction=RedactionPolicy())   # url: "sqlite:///var/hotline.db"
                              # (default) | "postgresql://u@h:p/db"; redaction None = defaults
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
        stores the text and its redaction; indexes the redacted text for search
    messages(conversation_id, *, unredacted=False) -> list[Message]   time order, redacted
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

    RedactionPolicy(cards=True, phones=True, ids=True, id_patterns=(SSN,), enabled=True)
        .text(text) -> str; .words(words) -> list[str] (same length)    (not async)

    register_recording(conversation_id, call_id, path, *, fmt, duration_s, size_bytes,
        started_at, ended_at, node=None, transcribe=True, max_attempts=3) -> Recording
        idempotent per call_id; its pending TranscriptionJob in the same commit
    get_recording(id) -> Recording | None; recordings_of(conversation_id) -> list
    expired_recordings(before, limit=100) -> list; mark_recording_deleted(id) -> Recording
    claim_transcription(worker, lease_s) -> TranscriptionJob | None    new token each claim
    renew_transcription(job_id, token, lease_s) -> bool      False: the lease was lost
    release_transcriptions(worker) -> int                    start-up: running -> pending
    complete_transcription(job_id, token, segments: [SegmentInput]) -> bool
        one commit: segments (raw + redacted), index, done; False and nothing written
        unless the token holds the running job
    fail_transcription(job_id, token, error, retry_in_s) -> TranscriptionJob
    transcription_job(recording_id) -> TranscriptionJob | None
    transcription_jobs(status=None, limit=100) -> list[TranscriptionJob]   oldest first
    transcript(conversation_id, *, unredacted=False) -> list[TranscriptSegment]  time order
    search(SearchQuery(text, since=, until=, queue=, agent=, intent=, channel=,
        min_duration_s=, max_duration_s=, limit=20, offset=0)) -> SearchPage(hits, total)
        words, "phrases", OR, NOT/-word, prefix*, ( ); bad syntax -> InvalidValue;
        a hit per transcript (at its first matched word) or message; total None only
        past 5,000 matches with a filter checked outside the index (see Store.search)
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
from conversations.model_search import HIT_KINDS, SearchHit, SearchPage, SearchQuery
from conversations.model_transcripts import (
    JOB_STATUSES,
    TRANSCRIPT_CHANNELS,
    Recording,
    SegmentInput,
    TimedWord,
    TranscriptionJob,
    TranscriptSegment,
    WordInput,
)
from conversations.redaction import RedactionPolicy
from conversations.store import DEFAULT_URL, Store, open_store

__all__ = [
    "CHANNELS",
    "DEFAULT_URL",
    "HIT_KINDS",
    "IDENTITY_KINDS",
    "JOB_STATUSES",
    "ROLES",
    "SPEAKERS",
    "STATUSES",
    "TRANSCRIPT_CHANNELS",
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
    "Recording",
    "RedactionPolicy",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SegmentInput",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreOverloaded",
    "TimedWord",
    "TranscriptSegment",
    "TranscriptionJob",
    "User",
    "UserExists",
    "WordInput",
    "normalize_identity",
    "normalize_phone",
    "open_store",
]
