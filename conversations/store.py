"""The ``Store`` interface, shared by both backends, and ``open_store``.

``Store`` checks arguments, hands reads to the backend's ``_transaction`` and
writes to the batching writer, whose batches also run through
``_transaction``. A backend only opens and closes its connection and runs an
operation (``operations``) in one transaction: the SQL and the semantics are
the same for SQLite and PostgreSQL.
"""

from __future__ import annotations

import abc
import asyncio
import re
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from conversations import operations as ops
from conversations import validation as check
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
from conversations.identity import normalize_identity
from conversations.migrations import migrate
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
    Message,
    User,
)
from conversations.operations import Job, Op, Outcome
from conversations.writer import BatchWriter

__all__ = [
    "DEFAULT_URL",
    "Conflict",
    "ConversationFilter",
    "IdentityTaken",
    "InvalidValue",
    "NotFound",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreOverloaded",
    "UserExists",
    "open_store",
]

T = TypeVar("T")
DEFAULT_URL = "sqlite:///var/hotline.db"  # relative: under the working directory's ./var/
_KNOWN_CONVERSATIONS = 100_000  # ids remembered to exist, so events need no check


class Store(abc.ABC):
    """The conversation store: customers, conversations, messages, events, users, audit.

    Use one instance per process, from one event loop: ``await start()``, the
    methods below, ``await close()`` (or ``async with``). Every change is
    committed before its coroutine returns, or before the future of
    ``record_event`` resolves. Bad arguments raise ``InvalidValue``; unknown ids
    in changes raise ``NotFound``; database failures raise ``StoreError``.
    """

    dialect: str  # "sqlite" or "postgresql"

    def __init__(
        self,
        *,
        default_country_code: str = "1",
        max_batch: int = 5000,
        max_pending_events: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure; nothing connects until ``start``.

        Args:
            default_country_code: the site's country, for phone numbers without one.
            max_batch: writes committed in one transaction at most.
            max_pending_events: queued events beyond which ``record_event`` refuses.
            clock: the wall clock (tests pass a fake one).
        """
        if not isinstance(default_country_code, str) or not re.fullmatch(
            r"[1-9][0-9]{0,2}", default_country_code
        ):
            raise InvalidValue(
                f"default_country_code must be 1 to 3 digits, not {default_country_code!r}"
            )
        self._country_code = default_country_code
        self._clock = clock
        self._writer = BatchWriter(
            self._commit_batch, max_batch=max_batch, max_pending_events=max_pending_events
        )
        self._state = "new"  # new -> started -> closed
        self._conversations: set[int] = set()

    # ------------------------------------------------------------ backend

    @abc.abstractmethod
    async def _open(self) -> None:
        """Connect (and create the database file or pool)."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Disconnect; called once, after the writer flushed."""

    @abc.abstractmethod
    async def _transaction(self, op: Op[T], *, readonly: bool = False) -> T:
        """Run ``op`` in one transaction and commit it; roll back if it raises.

        Raises:
            StoreError: the database failed (driver errors are never let out).
        """

    async def _commit_batch(self, jobs: Sequence[Job]) -> list[Outcome]:
        outcomes, checked = await self._transaction(ops.batch(jobs, self._conversations))
        # Committed: these conversations exist for good (none is ever deleted).
        if len(self._conversations) + len(checked) > _KNOWN_CONVERSATIONS:
            self._conversations.clear()
        self._conversations.update(checked)
        return outcomes

    # ------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Connect, bring the schema up to date and start the writer task.

        Raises:
            StoreError: cannot connect, or the schema is newer than this code.
        """
        if self._state != "new":
            raise StoreClosed(f"the store was {self._state} already")
        await self._open()
        try:
            await self._transaction(migrate(self.dialect))
        except BaseException:
            await self._close()
            self._state = "closed"
            raise
        self._writer.start()
        self._state = "started"

    async def close(self) -> None:
        """Commit the queued writes, then disconnect. Closing twice is harmless."""
        if self._state != "started":
            self._state = "closed"
            return
        self._state = "closing"
        await self._writer.close()
        await self._close()
        self._state = "closed"

    async def __aenter__(self) -> Store:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        """A round trip to the database (for ``/health``); False if it fails."""
        try:
            return await self._read(ops.ping())
        except StoreError:
            return False

    async def schema_version(self) -> int:
        """The newest schema migration applied to the database."""
        return await self._read(ops.schema_version())

    def stats(self) -> dict[str, Any]:
        """Writer counters for ``/metrics`` (not async).

        Returns:
            ``pending_writes``, ``write_lag_ms`` (age of the oldest write not yet
            committed, 0 when none), ``batches``, ``events_written``, and
            ``failed_writes``, ``last_batch_size``, ``last_commit_ms``.
        """
        return self._writer.stats()

    async def _read(self, op: Op[T]) -> T:
        if self._state != "started":
            raise StoreClosed(f"the store is {self._state}: call start() first")
        return await self._transaction(op, readonly=True)

    async def _write(self, op: Callable[[], Op[T]]) -> T:
        if self._state != "started":
            raise StoreClosed(f"the store is {self._state}: call start() first")
        # Shielded: a caller that stops waiting does not cancel the write (it may
        # still commit); it only loses the acknowledgement.
        return await asyncio.shield(self._writer.submit(op))

    def _identity(self, kind: str, value: str) -> tuple[str, str]:
        checked_kind = check.check_choice("kind", kind, IDENTITY_KINDS)
        try:
            normal = normalize_identity(
                checked_kind, value, default_country_code=self._country_code
            )
        except ValueError as exc:
            raise InvalidValue(str(exc)) from None
        return checked_kind, normal

    # ------------------------------------------------------------ customers

    async def customer_for(
        self, kind: str, value: str, display_name: str | None = None
    ) -> Customer:
        """Find the customer with this identity, or create one who has it.

        A found customer without a display name gets ``display_name``.
        """
        kind, value = self._identity(kind, value)
        name = check.check_optional_text("display_name", display_name)
        now = self._clock()
        return await self._write(lambda: ops.customer_for(kind, value, name, now))

    async def find_customer(self, kind: str, value: str) -> Customer | None:
        """The customer with this identity (normalized first), or None."""
        kind, value = self._identity(kind, value)
        return await self._read(ops.find_customer(kind, value))

    async def get_customer(self, customer_id: int) -> Customer | None:
        """A customer by id; an absorbed id gives the customer it was merged into."""
        return await self._read(ops.get_customer(check.check_id("customer_id", customer_id)))

    async def add_identity(self, customer_id: int, kind: str, value: str) -> Customer:
        """Give a customer another identity.

        Raises:
            IdentityTaken: another customer has it (merge them instead).
            NotFound: no such customer.
        """
        customer_id = check.check_id("customer_id", customer_id)
        kind, value = self._identity(kind, value)
        now = self._clock()
        return await self._write(lambda: ops.add_identity(customer_id, kind, value, now))

    async def merge_customers(self, keep_id: int, absorbed_id: int) -> Customer:
        """Move ``absorbed_id``'s identities and conversations to ``keep_id``.

        The absorbed customer remains, with ``merged_into`` set, so its old id
        still leads to the survivor. Merging two ids that are already one
        customer returns it unchanged.
        """
        keep_id = check.check_id("keep_id", keep_id)
        absorbed_id = check.check_id("absorbed_id", absorbed_id)
        if keep_id == absorbed_id:
            raise InvalidValue(f"cannot merge customer {keep_id} into itself")
        return await self._write(lambda: ops.merge_customers(keep_id, absorbed_id))

    # ------------------------------------------------------------ conversations

    async def open_conversation(
        self, customer_id: int, channel: str, status: str = "ivr", call_id: str | None = None
    ) -> Conversation:
        """Start a conversation.

        Raises:
            NotFound: no such customer.
            Conflict: ``call_id`` has a conversation already.
        """
        customer_id = check.check_id("customer_id", customer_id)
        channel = check.check_choice("channel", channel, CHANNELS)
        status = check.check_choice("status", status, STATUSES)
        call_id = check.check_optional_text("call_id", call_id, max_chars=check.MAX_NAME * 2)
        now = self._clock()
        return await self._write(
            lambda: ops.open_conversation(customer_id, channel, status, call_id, now)
        )

    async def update_conversation(
        self,
        conversation_id: int,
        *,
        status: str | None = None,
        intent: str | None = None,
        queue: str | None = None,
        agent: str | None = None,
        recording: str | None = None,
    ) -> Conversation:
        """Change the given fields (None leaves one as it is); returns the new state.

        Reaching ``closed`` or ``abandoned`` sets ``ended_at``; leaving them clears it.
        """
        conversation_id = check.check_id("conversation_id", conversation_id)
        changes: dict[str, str] = {}
        if status is not None:
            changes["status"] = check.check_choice("status", status, STATUSES)
        for name, value in (("intent", intent), ("queue", queue), ("agent", agent)):
            if value is not None:
                changes[name] = check.check_text(name, value)
        if recording is not None:
            changes["recording"] = check.check_text("recording", recording, max_chars=4096)
        now = self._clock()
        return await self._write(lambda: ops.update_conversation(conversation_id, changes, now))

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        """One conversation by id."""
        conversation_id = check.check_id("conversation_id", conversation_id)
        return await self._read(ops.get_conversation(conversation_id))

    async def conversation_for_call(self, call_id: str) -> Conversation | None:
        """The conversation of a SIP Call-ID."""
        call_id = check.check_text("call_id", call_id, max_chars=check.MAX_NAME * 2)
        return await self._read(ops.conversation_for_call(call_id))

    async def list_conversations(
        self, where: ConversationFilter | None = None
    ) -> list[Conversation]:
        """A page of conversations, newest first (keyset pagination by ``before_id``)."""
        where = where if where is not None else ConversationFilter()
        if not isinstance(where, ConversationFilter):
            raise InvalidValue(f"filter must be a ConversationFilter, not {type(where).__name__}")
        if where.customer_id is not None:
            check.check_id("customer_id", where.customer_id)
        if where.channel is not None:
            check.check_choice("channel", where.channel, CHANNELS)
        if where.status is not None:
            check.check_choice("status", where.status, STATUSES)
        for name in ("queue", "agent", "intent"):
            check.check_optional_text(name, getattr(where, name))
        for name in ("since", "until"):
            if getattr(where, name) is not None:
                check.check_time(name, getattr(where, name))
        if where.before_id is not None:
            check.check_id("before_id", where.before_id)
        check.check_limit(where.limit)
        return await self._read(ops.list_conversations(where))

    # ------------------------------------------------------------ messages and events

    async def add_message(
        self,
        conversation_id: int,
        speaker: str,
        text: str,
        *,
        at: float | None = None,
        offset_ms: int | None = None,
        confidence: float | None = None,
    ) -> Message:
        """Append a message or utterance; returns once it is committed."""
        conversation_id = check.check_id("conversation_id", conversation_id)
        speaker = check.check_choice("speaker", speaker, SPEAKERS)
        text = check.check_text("text", text, max_chars=check.MAX_TEXT, empty=True)
        now = self._clock()
        when = now if at is None else check.check_time("at", at)
        if offset_ms is not None and (
            isinstance(offset_ms, bool) or not isinstance(offset_ms, int) or offset_ms < 0
        ):
            raise InvalidValue(f"offset_ms must be an integer >= 0, not {offset_ms!r}")
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, int | float):
                raise InvalidValue(f"confidence must be a number, not {confidence!r}")
            if not 0.0 <= confidence <= 1.0:
                raise InvalidValue(f"confidence must be between 0 and 1, not {confidence}")
            confidence = float(confidence)
        return await self._write(
            lambda: ops.add_message(
                conversation_id, speaker, text, when, offset_ms, confidence, now
            )
        )

    async def messages(self, conversation_id: int) -> list[Message]:
        """A conversation's messages in time order (empty for an unknown id)."""
        conversation_id = check.check_id("conversation_id", conversation_id)
        return await self._read(ops.messages(conversation_id))

    def record_event(
        self, conversation_id: int, kind: str, data: dict[str, Any], at: float | None = None
    ) -> asyncio.Future[None]:
        """Queue an event for the batching writer and return at once (not async).

        Safe to call from the media loop and to ignore: the returned future
        resolves after the event's batch committed, or fails with ``NotFound``
        (unknown conversation), ``StoreOverloaded``, ``StoreClosed`` or
        ``StoreError``; a failure nobody awaits is logged by the writer, not by
        asyncio. Call it from the store's event loop thread.

        Raises:
            InvalidValue: bad arguments (a programming error, so it is raised here).
        """
        row = (
            check.check_id("conversation_id", conversation_id),
            check.check_text("kind", kind),
            self._clock() if at is None else check.check_time("at", at),
            check.check_json("data", data),
        )
        return self._writer.submit_event(row)

    async def events(self, conversation_id: int) -> list[Event]:
        """A conversation's events in time order (empty for an unknown id)."""
        conversation_id = check.check_id("conversation_id", conversation_id)
        return await self._read(ops.events(conversation_id))

    # ------------------------------------------------------------ users

    async def add_user(self, name: str, roles: Iterable[str], password_hash: str) -> User:
        """Create a user with at least one of the roles agent, qa, admin.

        Raises:
            UserExists: the name is taken.
        """
        name = _user_name(name)
        role_text = check.check_words("roles", roles, ROLES)
        if not role_text:
            raise InvalidValue(f"roles must name at least one of {sorted(ROLES)}")
        password_hash = check.check_text("password_hash", password_hash, max_chars=1024)
        now = self._clock()
        return await self._write(lambda: ops.add_user(name, role_text, password_hash, now))

    async def get_user(self, name: str) -> User | None:
        """A user by name."""
        return await self._read(ops.get_user(_user_name(name)))

    async def list_users(self) -> list[User]:
        """All users, by name."""
        return await self._read(ops.list_users())

    async def set_password(self, name: str, password_hash: str) -> None:
        """Replace a user's password hash (``NotFound`` for an unknown name)."""
        name = _user_name(name)
        password_hash = check.check_text("password_hash", password_hash, max_chars=1024)
        await self._write(lambda: ops.update_user(name, "password_hash", password_hash))

    async def set_agent_state(self, name: str, state: str) -> User:
        """Record an agent's presence state (``available``, ``away``...; free text)."""
        name = _user_name(name)
        state = check.check_text("state", state, max_chars=64)
        return await self._write(lambda: ops.update_user(name, "agent_state", state))

    async def set_roles(self, name: str, roles: Iterable[str]) -> User:
        """Replace a user's roles."""
        name = _user_name(name)
        role_text = check.check_words("roles", roles, ROLES)
        if not role_text:
            raise InvalidValue(f"roles must name at least one of {sorted(ROLES)}")
        return await self._write(lambda: ops.update_user(name, "roles", role_text))

    async def set_user_disabled(self, name: str, disabled: bool) -> User:
        """Disable (and log out at once) or re-enable a user."""
        name = _user_name(name)
        if not isinstance(disabled, bool):
            raise InvalidValue(f"disabled must be True or False, not {disabled!r}")
        return await self._write(lambda: ops.update_user(name, "disabled", disabled))

    # ------------------------------------------------------------ tokens and sessions

    async def add_token(self, name: str, scopes: Iterable[str], token_hash: str) -> ApiToken:
        """Store a new API token by its hash (the token itself is never stored)."""
        name = check.check_text("name", name)
        scope_text = check.check_words("scopes", scopes)
        token_hash = check.check_text("token_hash", token_hash, max_chars=1024)
        now = self._clock()
        return await self._write(lambda: ops.add_token(name, scope_text, token_hash, now))

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token with this hash, revoked ones included (check ``revoked``)."""
        token_hash = check.check_text("token_hash", token_hash, max_chars=1024)
        return await self._read(ops.token_by_hash(token_hash))

    async def list_tokens(self) -> list[ApiToken]:
        """All tokens, oldest first."""
        return await self._read(ops.list_tokens())

    async def revoke_token(self, token_id: int) -> None:
        """Revoke a token (``NotFound`` for an unknown id); revoking twice is fine."""
        token_id = check.check_id("token_id", token_id)
        await self._write(lambda: ops.revoke_token(token_id))

    async def add_session(self, session_hash: str, user_name: str, expires_at: float) -> None:
        """Store a browser session until ``expires_at`` (``NotFound``: unknown user)."""
        session_hash = check.check_text("session_hash", session_hash, max_chars=1024)
        user_name = _user_name(user_name)
        expires = check.check_time("expires_at", expires_at)
        now = self._clock()
        await self._write(lambda: ops.add_session(session_hash, user_name, expires, now))

    async def get_session(self, session_hash: str) -> User | None:
        """The session's user; None when missing, expired, or the user is disabled."""
        session_hash = check.check_text("session_hash", session_hash, max_chars=1024)
        return await self._read(ops.get_session(session_hash, self._clock()))

    async def delete_session(self, session_hash: str) -> None:
        """Log a session out (a missing one is fine)."""
        session_hash = check.check_text("session_hash", session_hash, max_chars=1024)
        await self._write(lambda: ops.delete_session(session_hash))

    # ------------------------------------------------------------ audit

    async def audit(
        self, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
    ) -> AuditEntry:
        """Append to the audit log; committed before it returns."""
        actor = check.check_text("actor", actor)
        action = check.check_text("action", action)
        target = check.check_optional_text("target", target, max_chars=1024)
        detail_text = check.check_json("detail", {} if detail is None else detail)
        now = self._clock()
        return await self._write(lambda: ops.audit(actor, action, target, detail_text, now))

    async def audit_log(
        self,
        *,
        target: str | None = None,
        actor: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Audit entries, newest first, optionally for one target or actor."""
        target = check.check_optional_text("target", target, max_chars=1024)
        actor = check.check_optional_text("actor", actor)
        limit = check.check_limit(limit)
        if before_id is not None:
            before_id = check.check_id("before_id", before_id)
        return await self._read(ops.audit_log(target, actor, limit, before_id))


def _user_name(name: object) -> str:
    text = check.check_text("name", name, max_chars=64)
    if text != text.strip() or any(char.isspace() or ord(char) < 32 for char in text):
        raise InvalidValue(f"user name {name!r} must not contain white space")
    return text


def open_store(url: str | None = None, **options: Any) -> Store:
    """A store for ``url`` (not started yet: ``await store.start()``).

    Args:
        url: ``sqlite:///var/hotline.db`` (the default; relative to the working
            directory; ``sqlite:////abs/file.db`` for an absolute path,
            ``sqlite:///:memory:`` for a private in-memory database) or
            ``postgresql://user@host:port/db`` (``postgres://`` too).
        **options: ``Store`` options (``default_country_code``, ``max_batch``,
            ``max_pending_events``, ``clock``), and for PostgreSQL
            ``min_connections``/``max_connections``.

    Raises:
        InvalidValue: an unknown scheme.
    """
    url = DEFAULT_URL if url is None else url
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "sqlite":
        from conversations.backend_sqlite import SqliteStore

        path = rest[1:] if rest.startswith("/") else rest  # sqlite:///x -> x, sqlite:////x -> /x
        if not path:
            raise InvalidValue(f"no database file in {url!r}")
        return SqliteStore(path, **options)
    if sep and scheme in ("postgresql", "postgres"):
        from conversations.backend_postgres import PostgresStore

        return PostgresStore(url, **options)
    raise InvalidValue(
        f"unknown store URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )
