"""The store's transactions, written once for both backends as sans-IO generators.

Each operation is a generator that yields ``Query`` objects and is sent back the
rows of each (a list of tuples; empty for statements that return none). It never
touches a connection: ``drive_sync`` runs it on SQLite's thread and
``drive_async`` on an asyncpg connection, inside a transaction the backend
opens. A driver turns a uniqueness or foreign-key failure into ``Conflict`` and
any other database error into ``StoreError`` and throws it into the generator,
so an operation can handle it like any exception.

The SQL is the common subset of SQLite (3.35+, for ``RETURNING``) and
PostgreSQL, with ``?`` placeholders that the PostgreSQL backend numbers. Arguments
arrive checked (``validation``): operations check only what needs the database.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Sequence, Set
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

from conversations.errors import Conflict, IdentityTaken, NotFound, StoreError, UserExists
from conversations.model import (
    TERMINAL_STATUSES,
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
from conversations.validation import parse_words

T = TypeVar("T")
Row: TypeAlias = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement: ``params`` is one tuple, or a list of tuples when ``many``."""

    sql: str
    params: Sequence[Any] = ()
    many: bool = False


Op: TypeAlias = Generator[Query, list[Row], T]
EventRow: TypeAlias = tuple[int, str, float, str]  # conversation_id, kind, at, data as JSON
Job: TypeAlias = "EventRow | Callable[[], Op[Any]]"
Outcome: TypeAlias = tuple[bool, Any]  # (True, result) or (False, exception)

_MAX_MERGE_HOPS = 64  # merges flatten chains, so more hops than this is a cycle
_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit

CUSTOMER_COLUMNS = "id, display_name, created_at, merged_into"
CONVERSATION_COLUMNS = (
    "id, customer_id, channel, status, intent, queue, agent, recording, call_id, "
    "started_at, updated_at, ended_at"
)
MESSAGE_COLUMNS = "id, conversation_id, speaker, text, at, offset_ms, confidence"
EVENT_COLUMNS = "id, conversation_id, kind, at, data"
USER_COLUMNS = "id, name, roles, password_hash, agent_state, created_at, disabled"
TOKEN_COLUMNS = "id, name, scopes, created_at, revoked"
AUDIT_COLUMNS = "id, at, actor, action, target, detail"
DEFAULT_AGENT_STATE = "offline"


# ---------------------------------------------------------------- drivers


class _Driven:
    """One operation being run: feeds it each query's rows or error, one step at a time."""

    __slots__ = ("op", "result")

    def __init__(self, op: Op[Any]) -> None:
        self.op = op
        self.result: Any = None

    def step(self, rows: list[Row] | None, error: StoreError | None) -> Query | None:
        """The next query, or None once the operation returned (``result``)."""
        try:
            return self.op.send(rows) if error is None else self.op.throw(error)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            return None


def drive_sync(execute: Callable[[Query], list[Row]], op: Op[T]) -> T:
    """Run ``op`` to completion with a blocking ``execute`` (SQLite's thread)."""
    driven = _Driven(op)
    query = driven.step(None, None)
    while query is not None:
        try:
            rows = execute(query)
        except StoreError as exc:  # the operation may handle it
            query = driven.step(None, exc)
        else:
            query = driven.step(rows, None)
    result: T = driven.result
    return result


async def drive_async(execute: Callable[[Query], Awaitable[list[Row]]], op: Op[T]) -> T:
    """Run ``op`` to completion with an awaitable ``execute`` (asyncpg)."""
    driven = _Driven(op)
    query = driven.step(None, None)
    while query is not None:
        try:
            rows = await execute(query)
        except StoreError as exc:  # the operation may handle it
            query = driven.step(None, exc)
        else:
            query = driven.step(rows, None)
    result: T = driven.result
    return result


# ---------------------------------------------------------------- rows


def _conversation(row: Row) -> Conversation:
    return Conversation(*row)


def _message(row: Row) -> Message:
    return Message(*row)


def _event(row: Row) -> Event:
    return Event(row[0], row[1], row[2], row[3], json.loads(row[4]))


def _user(row: Row) -> User:
    return User(row[0], row[1], parse_words(row[2]), row[3], row[4], row[5], bool(row[6]))


def _token(row: Row) -> ApiToken:
    return ApiToken(row[0], row[1], parse_words(row[2]), row[3], bool(row[4]))


def _audit(row: Row) -> AuditEntry:
    return AuditEntry(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


# ---------------------------------------------------------------- batches


def batch(jobs: Sequence[Job], known: Set[int] = frozenset()) -> Op[tuple[list[Outcome], set[int]]]:
    """Run a batch of writes in the caller's transaction; one outcome per job.

    Runs of events become one multi-row insert (executemany); their conversations are checked
    first, so an event for an unknown conversation fails alone (``NotFound``)
    instead of aborting the batch. ``known`` holds conversation ids that exist
    already (conversations are never deleted), so they need no check; the ids
    checked now are returned, for the caller to add once the batch committed.
    Every other job runs inside its own savepoint: when it raises, only its
    changes are rolled back and the rest still commit.
    """
    outcomes: list[Outcome] = []
    checked: set[int] = set()
    events: list[EventRow] = []
    for job in jobs:
        if isinstance(job, tuple):
            events.append(job)
            continue
        if events:
            outcomes.extend((yield from _insert_events(events, known, checked)))
            events = []
        yield Query("SAVEPOINT job")
        try:
            result = yield from job()
        except Exception as exc:  # the job's own answer (NotFound...) or a database error
            yield Query("ROLLBACK TO SAVEPOINT job")
            outcomes.append((False, exc))
        else:
            yield Query("RELEASE SAVEPOINT job")
            outcomes.append((True, result))
    if events:
        outcomes.extend((yield from _insert_events(events, known, checked)))
    return outcomes, checked


def _insert_events(events: list[EventRow], known: Set[int], checked: set[int]) -> Op[list[Outcome]]:
    wanted = sorted({event[0] for event in events} - known - checked)
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        rows = yield Query(
            f"SELECT id FROM conversations WHERE id IN ({_placeholders(len(chunk))})", chunk
        )
        checked.update(row[0] for row in rows)
    good = [event for event in events if event[0] in known or event[0] in checked]
    if good:
        yield Query(
            "INSERT INTO events (conversation_id, kind, at, data) VALUES (?, ?, ?, ?)",
            good,
            many=True,
        )
    return [
        (True, None)
        if event[0] in known or event[0] in checked
        else (False, NotFound(f"conversation {event[0]}"))
        for event in events
    ]


def ping() -> Op[bool]:
    """A round trip to the database."""
    rows = yield Query("SELECT 1")
    return bool(rows)


def schema_version() -> Op[int]:
    """The newest migration applied."""
    rows = yield Query("SELECT MAX(version) FROM schema_version")
    return int(rows[0][0] or 0)


# ---------------------------------------------------------------- customers


def survivor(customer_id: int) -> Op[int | None]:
    """The customer that ``customer_id`` is, or was merged into; None if unknown."""
    current = customer_id
    for _ in range(_MAX_MERGE_HOPS):
        rows = yield Query("SELECT merged_into FROM customers WHERE id = ?", (current,))
        if not rows:
            return None
        if rows[0][0] is None:
            return current
        current = rows[0][0]
    raise StoreError(f"customer {customer_id}: merge chain longer than {_MAX_MERGE_HOPS}")


def _existing_survivor(customer_id: int) -> Op[int]:
    found = yield from survivor(customer_id)
    if found is None:
        raise NotFound(f"customer {customer_id}")
    return found


def _load_customer(customer_id: int) -> Op[Customer | None]:
    rows = yield Query(f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?", (customer_id,))
    if not rows:
        return None
    identities = yield Query(
        "SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY kind, value",
        (customer_id,),
    )
    row = rows[0]
    return Customer(row[0], row[1], row[2], tuple(Identity(k, v) for k, v in identities), row[3])


def _loaded_customer(customer_id: int) -> Op[Customer]:
    customer = yield from _load_customer(customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id}")
    return customer


def get_customer(customer_id: int) -> Op[Customer | None]:
    """The customer, or the one it was merged into."""
    found = yield from survivor(customer_id)
    return None if found is None else (yield from _load_customer(found))


def _owner(kind: str, value: str) -> Op[int | None]:
    rows = yield Query(
        "SELECT customer_id FROM identities WHERE kind = ? AND value = ?", (kind, value)
    )
    return rows[0][0] if rows else None


def find_customer(kind: str, value: str) -> Op[Customer | None]:
    """The customer with this (normalized) identity."""
    owner = yield from _owner(kind, value)
    return None if owner is None else (yield from get_customer(owner))


def customer_for(kind: str, value: str, display_name: str | None, now: float) -> Op[Customer]:
    """Find the customer with this identity, or create one with it."""
    found = yield from find_customer(kind, value)
    if found is not None:
        if display_name is not None and found.display_name is None:
            yield Query(
                "UPDATE customers SET display_name = ? WHERE id = ?", (display_name, found.id)
            )
            return replace(found, display_name=display_name)
        return found
    rows = yield Query(
        "INSERT INTO customers (display_name, created_at) VALUES (?, ?) RETURNING id",
        (display_name, now),
    )
    customer_id = rows[0][0]
    claimed = yield Query(
        "INSERT INTO identities (kind, value, customer_id, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (kind, value) DO NOTHING RETURNING customer_id",
        (kind, value, customer_id, now),
    )
    if not claimed:
        # Another node created this customer since our lookup (PostgreSQL only: one
        # SQLite writer serializes everything): drop ours and return theirs.
        yield Query("DELETE FROM customers WHERE id = ?", (customer_id,))
        theirs = yield from find_customer(kind, value)
        if theirs is None:
            raise StoreError(f"{kind} identity {value!r} vanished while being claimed")
        return theirs
    return Customer(customer_id, display_name, now, (Identity(kind, value),), None)


def add_identity(customer_id: int, kind: str, value: str, now: float) -> Op[Customer]:
    """Give a customer one more identity; adding one it has already is a no-op."""
    target = yield from _existing_survivor(customer_id)
    owner = yield from _owner(kind, value)
    if owner is None:
        claimed = yield Query(
            "INSERT INTO identities (kind, value, customer_id, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, value) DO NOTHING RETURNING customer_id",
            (kind, value, target, now),
        )
        owner = claimed[0][0] if claimed else (yield from _owner(kind, value))
    if owner is not None and owner != target:
        raise IdentityTaken(kind, value, owner)
    return (yield from _loaded_customer(target))


def merge_customers(keep_id: int, absorbed_id: int) -> Op[Customer]:
    """Move the absorbed customer's identities and conversations to the kept one."""
    keep = yield from _existing_survivor(keep_id)
    absorbed = yield from _existing_survivor(absorbed_id)
    if keep != absorbed:
        params = (keep, absorbed)
        yield Query("UPDATE identities SET customer_id = ? WHERE customer_id = ?", params)
        yield Query("UPDATE conversations SET customer_id = ? WHERE customer_id = ?", params)
        # Flatten: whoever pointed at the absorbed customer now points at the survivor.
        yield Query("UPDATE customers SET merged_into = ? WHERE merged_into = ?", params)
        yield Query("UPDATE customers SET merged_into = ? WHERE id = ?", params)
        yield Query(
            "UPDATE customers SET display_name = "
            "(SELECT display_name FROM customers WHERE id = ?) "
            "WHERE id = ? AND display_name IS NULL",
            (absorbed, keep),
        )
    return (yield from _loaded_customer(keep))


# ---------------------------------------------------------------- conversations


def open_conversation(
    customer_id: int, channel: str, status: str, call_id: str | None, now: float
) -> Op[Conversation]:
    """Start a conversation for the (surviving) customer."""
    customer = yield from _existing_survivor(customer_id)
    if call_id is not None:
        rows = yield Query("SELECT id FROM conversations WHERE call_id = ?", (call_id,))
        if rows:
            raise Conflict(f"call {call_id!r} already has conversation {rows[0][0]}")
    ended_at = now if status in TERMINAL_STATUSES else None
    rows = yield Query(
        "INSERT INTO conversations (customer_id, channel, status, call_id, started_at, "
        "updated_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (customer, channel, status, call_id, now, now, ended_at),
    )
    return Conversation(
        rows[0][0], customer, channel, status, None, None, None, None, call_id, now, now, ended_at
    )


def update_conversation(
    conversation_id: int, changes: dict[str, str], now: float
) -> Op[Conversation]:
    """Set the given columns (only those, so concurrent updates of others survive).

    ``operations_search.update_conversation`` wraps it to keep the search index in step.
    """
    current = yield from get_conversation(conversation_id)
    if current is None:
        raise NotFound(f"conversation {conversation_id}")
    columns: dict[str, Any] = {**changes, "updated_at": now}
    if "status" in changes:
        if changes["status"] not in TERMINAL_STATUSES:
            columns["ended_at"] = None  # reopened
        elif current.ended_at is None:
            columns["ended_at"] = now
    assignments = ", ".join(f"{name} = ?" for name in columns)  # names come from our code
    rows = yield Query(
        f"UPDATE conversations SET {assignments} WHERE id = ? RETURNING {CONVERSATION_COLUMNS}",
        (*columns.values(), conversation_id),
    )
    return _conversation(rows[0])


def get_conversation(conversation_id: int) -> Op[Conversation | None]:
    """One conversation by id."""
    rows = yield Query(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
    )
    return _conversation(rows[0]) if rows else None


def conversation_for_call(call_id: str) -> Op[Conversation | None]:
    """The conversation of a SIP call."""
    rows = yield Query(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE call_id = ?", (call_id,)
    )
    return _conversation(rows[0]) if rows else None


def list_conversations(where: ConversationFilter) -> Op[list[Conversation]]:
    """A page of conversations, newest first (ids grow with time)."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.customer_id is not None:
        customer = yield from survivor(where.customer_id)
        if customer is None:
            return []
        clauses.append("customer_id = ?")
        params.append(customer)
    for column in ("channel", "status", "queue", "agent", "intent"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for clause, value in (
        ("started_at >= ?", where.since),
        ("started_at < ?", where.until),
        ("id < ?", where.before_id),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    sql = f"SELECT {CONVERSATION_COLUMNS} FROM conversations"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    rows = yield Query(sql + " ORDER BY id DESC LIMIT ?", (*params, where.limit))
    return [_conversation(row) for row in rows]


# ---------------------------------------------------------------- messages and events


def _require_conversation(conversation_id: int) -> Op[None]:
    rows = yield Query("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,))
    if not rows:
        raise NotFound(f"conversation {conversation_id}")


def add_message(
    conversation_id: int,
    speaker: str,
    text: str,
    at: float,
    offset_ms: int | None,
    confidence: float | None,
    now: float,
    *,
    redacted: str | None = None,
) -> Op[Message]:
    """Append a message (and its redacted text); the conversation's ``updated_at`` moves too.

    Returns the message as given (``text``); ``operations_search.add_message``
    also indexes it.
    """
    yield from _require_conversation(conversation_id)
    rows = yield Query(
        "INSERT INTO messages (conversation_id, speaker, text, redacted_text, at, offset_ms, "
        "confidence) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (conversation_id, speaker, text, redacted, at, offset_ms, confidence),
    )
    yield Query("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
    return Message(rows[0][0], conversation_id, speaker, text, at, offset_ms, confidence)


def messages(conversation_id: int, redact: Callable[[str], str] | None = None) -> Op[list[Message]]:
    """A conversation's messages in time order (insertion order breaks ties).

    With ``redact``, each message's stored redacted text, or ``redact(text)``
    for one stored before redaction existed (not yet back-filled); without it,
    the text as written.
    """
    rows = yield Query(
        f"SELECT {MESSAGE_COLUMNS}, redacted_text FROM messages WHERE conversation_id = ? "
        "ORDER BY at, id",
        (conversation_id,),
    )
    if redact is None:
        return [_message(row[:-1]) for row in rows]
    return [
        Message(row[0], row[1], row[2], row[7] if row[7] is not None else redact(row[3]), *row[4:7])
        for row in rows
    ]


def events(conversation_id: int) -> Op[list[Event]]:
    """A conversation's timeline in time order."""
    rows = yield Query(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE conversation_id = ? ORDER BY at, id",
        (conversation_id,),
    )
    return [_event(row) for row in rows]


# ---------------------------------------------------------------- users, tokens, sessions


def add_user(name: str, roles: str, password_hash: str, now: float) -> Op[User]:
    """Create a user; ``UserExists`` if the name is taken."""
    rows = yield Query(
        "INSERT INTO users (name, roles, password_hash, agent_state, created_at, disabled) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, roles, password_hash, DEFAULT_AGENT_STATE, now, False),
    )
    if not rows:
        raise UserExists(name)
    return User(
        rows[0][0], name, parse_words(roles), password_hash, DEFAULT_AGENT_STATE, now, False
    )


def get_user(name: str) -> Op[User | None]:
    """A user by name."""
    rows = yield Query(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
    return _user(rows[0]) if rows else None


def list_users() -> Op[list[User]]:
    """Every user, by name."""
    rows = yield Query(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")
    return [_user(row) for row in rows]


def update_user(name: str, column: str, value: Any) -> Op[User]:
    """Set one column of a user (``password_hash``, ``agent_state``, ``disabled``, ``roles``)."""
    rows = yield Query(
        f"UPDATE users SET {column} = ? WHERE name = ? RETURNING {USER_COLUMNS}", (value, name)
    )
    if not rows:
        raise NotFound(f"user {name!r}")
    user = _user(rows[0])
    if user.disabled:
        yield Query("DELETE FROM sessions WHERE user_id = ?", (user.id,))  # logged out at once
    return user


def add_token(name: str, scopes: str, token_hash: str, now: float) -> Op[ApiToken]:
    """Store a new API token's hash."""
    rows = yield Query(
        "INSERT INTO api_tokens (name, scopes, token_hash, created_at, revoked) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
        (name, scopes, token_hash, now, False),
    )
    if not rows:
        raise Conflict("a token with this hash exists already")
    return ApiToken(rows[0][0], name, parse_words(scopes), now, False)


def token_by_hash(token_hash: str) -> Op[ApiToken | None]:
    """The token with this hash, revoked or not."""
    rows = yield Query(
        f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,)
    )
    return _token(rows[0]) if rows else None


def list_tokens() -> Op[list[ApiToken]]:
    """Every token, oldest first."""
    rows = yield Query(f"SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id")
    return [_token(row) for row in rows]


def revoke_token(token_id: int) -> Op[ApiToken]:
    """Mark a token revoked (it stays listed)."""
    rows = yield Query(
        f"UPDATE api_tokens SET revoked = ? WHERE id = ? RETURNING {TOKEN_COLUMNS}",
        (True, token_id),
    )
    if not rows:
        raise NotFound(f"token {token_id}")
    return _token(rows[0])


def add_session(session_hash: str, user_name: str, expires_at: float, now: float) -> Op[None]:
    """Store a browser session; expired ones are swept out on the way."""
    yield Query("DELETE FROM sessions WHERE expires_at <= ?", (now,))
    rows = yield Query("SELECT id FROM users WHERE name = ?", (user_name,))
    if not rows:
        raise NotFound(f"user {user_name!r}")
    stored = yield Query(
        "INSERT INTO sessions (session_hash, user_id, created_at, expires_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (session_hash) DO NOTHING RETURNING user_id",
        (session_hash, rows[0][0], now, expires_at),
    )
    if not stored:
        raise Conflict("a session with this hash exists already")


def get_session(session_hash: str, now: float) -> Op[User | None]:
    """The user of a live session: not expired, user not disabled."""
    columns = ", ".join(f"users.{column.strip()}" for column in USER_COLUMNS.split(","))
    rows = yield Query(
        f"SELECT {columns} FROM sessions JOIN users ON users.id = sessions.user_id "
        "WHERE sessions.session_hash = ? AND sessions.expires_at > ? AND users.disabled = ?",
        (session_hash, now, False),
    )
    return _user(rows[0]) if rows else None


def delete_session(session_hash: str) -> Op[None]:
    """Forget a session (logging out twice is fine)."""
    yield Query("DELETE FROM sessions WHERE session_hash = ?", (session_hash,))


# ---------------------------------------------------------------- audit


def audit(actor: str, action: str, target: str | None, detail: str, now: float) -> Op[AuditEntry]:
    """Append to the audit log."""
    rows = yield Query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?) "
        "RETURNING id",
        (now, actor, action, target, detail),
    )
    return AuditEntry(rows[0][0], now, actor, action, target, json.loads(detail))


def audit_log(
    target: str | None, actor: str | None, limit: int, before_id: int | None
) -> Op[list[AuditEntry]]:
    """The newest matching audit entries first."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (("target = ?", target), ("actor = ?", actor), ("id < ?", before_id)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    sql = f"SELECT {AUDIT_COLUMNS} FROM audit_log"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    rows = yield Query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [_audit(row) for row in rows]
