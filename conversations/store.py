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
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from conversations import operations as ops
from conversations import operations_recordings as ops_rec
from conversations import operations_search as ops_search
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
from conversations.model_search import SearchPage, SearchQuery
from conversations.model_transcripts import (
    JOB_STATUSES,
    Recording,
    SegmentInput,
    TranscriptionJob,
    TranscriptSegment,
)
from conversations.operations import Job, Op, Outcome
from conversations.redaction import RedactionPolicy
from conversations.search_query import parse
from conversations.transcripts import check_confidence, prepare_segments
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
_BACKFILL_BATCH = 500  # older messages redacted and indexed per transaction at start-up
MAX_SEARCH_LIMIT = 200  # hits in one page: each is read in full


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
        redaction: RedactionPolicy | None = None,
    ) -> None:
        """Configure; nothing connects until ``start``.

        Args:
            default_country_code: the site's country, for phone numbers without one.
            max_batch: writes committed in one transaction at most.
            max_pending_events: queued events beyond which ``record_event`` refuses.
            clock: the wall clock (tests pass a fake one).
            redaction: what to mask in stored messages and transcripts and in the
                search index; None: ``RedactionPolicy()`` (cards, phones, IDs).
        """
        if redaction is not None and not isinstance(redaction, RedactionPolicy):
            raise InvalidValue(
                f"redaction must be a RedactionPolicy, not {type(redaction).__name__}"
            )
        self.redaction = RedactionPolicy() if redaction is None else redaction
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
            await self._backfill_messages()
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

    async def _backfill_messages(self) -> None:
        """Redact and index the messages written before redaction existed (schema 3)."""
        while True:
            rows = await self._transaction(ops_search.unredacted_messages(_BACKFILL_BATCH))
            if not rows:
                return
            redacted = [(id_, conv, self.redaction.text(text)) for id_, conv, text in rows]
            await self._transaction(ops_search.backfill_messages(self.dialect, redacted))

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
        return await self._write(
            lambda: ops_search.update_conversation(self.dialect, conversation_id, changes, now)
        )

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
        """Append a message or utterance; returns once it is committed.

        The text is stored as written and redacted (``redaction``); only the
        redacted text is indexed for ``search``. Returns the message as written.
        """
        conversation_id = check.check_id("conversation_id", conversation_id)
        speaker = check.check_choice("speaker", speaker, SPEAKERS)
        text = check.check_text("text", text, max_chars=check.MAX_TEXT, empty=True)
        now = self._clock()
        when = now if at is None else check.check_time("at", at)
        if offset_ms is not None and (
            isinstance(offset_ms, bool) or not isinstance(offset_ms, int) or offset_ms < 0
        ):
            raise InvalidValue(f"offset_ms must be an integer >= 0, not {offset_ms!r}")
        confidence = check_confidence("confidence", confidence)
        redacted = self.redaction.text(text)
        return await self._write(
            lambda: ops_search.add_message(
                self.dialect,
                conversation_id,
                speaker,
                text,
                redacted,
                when,
                offset_ms,
                confidence,
                now,
            )
        )

    async def messages(self, conversation_id: int, *, unredacted: bool = False) -> list[Message]:
        """A conversation's messages in time order (empty for an unknown id).

        Their text is redacted unless ``unredacted`` (the admin role's view).
        """
        conversation_id = check.check_id("conversation_id", conversation_id)
        if not isinstance(unredacted, bool):
            raise InvalidValue(f"unredacted must be True or False, not {unredacted!r}")
        redact = None if unredacted else self.redaction.text
        return await self._read(ops.messages(conversation_id, redact))

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

    # ------------------------------------------------------------ recordings

    async def register_recording(
        self,
        conversation_id: int,
        call_id: str,
        path: str,
        *,
        fmt: str,
        duration_s: float,
        size_bytes: int,
        started_at: float,
        ended_at: float,
        node: str | None = None,
        transcribe: bool = True,
        max_attempts: int = 3,
    ) -> Recording:
        """Register a call's recording, and with ``transcribe`` its pending job, in one commit.

        Idempotent per ``call_id``: registering it again returns the existing
        recording unchanged (and creates no second job).

        Args:
            conversation_id: the call's conversation.
            call_id: the SIP Call-ID (one recording per call).
            path: relative to the recordings root, e.g. ``2026-12-02/CALLID.wav``.
            fmt: the file format, ``wav`` or ``ogg``.
            duration_s: the audio's length.
            size_bytes: the file's size.
            started_at: when the recording started (wall time).
            ended_at: when it ended.
            node: the hotline node that wrote it.
            transcribe: create a pending transcription job with it.
            max_attempts: the job's claims at most.

        Raises:
            NotFound: no such conversation.
        """
        conversation_id = check.check_id("conversation_id", conversation_id)
        call_id = check.check_text("call_id", call_id, max_chars=check.MAX_NAME * 2)
        started_at = check.check_time("started_at", started_at)
        ended_at = check.check_time("ended_at", ended_at)
        if ended_at < started_at:
            raise InvalidValue("ended_at is before started_at")
        values: dict[str, Any] = {
            "path": check.check_relative_path("path", path),
            "fmt": check.check_text("fmt", fmt, max_chars=16),
            "duration_s": check.check_amount("duration_s", duration_s),
            "size_bytes": check.check_count("size_bytes", size_bytes),
            "started_at": started_at,
            "ended_at": ended_at,
            "node": check.check_optional_text("node", node),
        }
        if not isinstance(transcribe, bool):
            raise InvalidValue(f"transcribe must be True or False, not {transcribe!r}")
        max_attempts = check.check_count("max_attempts", max_attempts, low=1, high=100)
        now = self._clock()
        return await self._write(
            lambda: ops_rec.register_recording(
                conversation_id, call_id, values, transcribe, max_attempts, now
            )
        )

    async def get_recording(self, recording_id: int) -> Recording | None:
        """One recording by id (a deleted one too: see ``deleted_at``)."""
        recording_id = check.check_id("recording_id", recording_id)
        return await self._read(ops_rec.get_recording(recording_id))

    async def recordings_of(self, conversation_id: int) -> list[Recording]:
        """A conversation's recordings, oldest first."""
        conversation_id = check.check_id("conversation_id", conversation_id)
        return await self._read(ops_rec.recordings_of(conversation_id))

    async def expired_recordings(self, before: float, limit: int = 100) -> list[Recording]:
        """Recordings not deleted yet that ended before ``before``, oldest first (retention)."""
        before = check.check_time("before", before)
        limit = check.check_limit(limit)
        return await self._read(ops_rec.expired_recordings(before, limit))

    async def mark_recording_deleted(self, recording_id: int) -> Recording:
        """Note that retention deleted the file: the row and its transcript stay.

        A transcription job still pending fails (nothing left to transcribe).
        Marking twice keeps the first time.
        """
        recording_id = check.check_id("recording_id", recording_id)
        now = self._clock()
        return await self._write(lambda: ops_rec.mark_recording_deleted(recording_id, now))

    # ------------------------------------------------------------ transcription jobs

    async def claim_transcription(self, worker: str, lease_s: float) -> TranscriptionJob | None:
        """Claim the next job for ``worker``: running, with a new token, for ``lease_s``.

        The oldest job that is pending and due (``not_before`` passed), or
        running with an expired lease (its worker died), in id order; its
        ``attempts`` grows by one. A job that used all its attempts becomes
        ``failed`` instead. None when there is nothing to do.
        """
        worker = check.check_text("worker", worker)
        lease_s = _positive_seconds("lease_s", lease_s)
        token = secrets.token_hex(16)
        now = self._clock()
        return await self._write(lambda: ops_rec.claim_transcription(worker, token, lease_s, now))

    async def renew_transcription(self, job_id: int, token: str, lease_s: float) -> bool:
        """Extend the lease to now + ``lease_s``; False: the token lost the job."""
        job_id = check.check_id("job_id", job_id)
        token = check.check_text("token", token)
        lease_s = _positive_seconds("lease_s", lease_s)
        now = self._clock()
        return await self._write(lambda: ops_rec.renew_transcription(job_id, token, lease_s, now))

    async def release_transcriptions(self, worker: str) -> int:
        """At a worker's start-up: its jobs left running go back to pending (attempts kept)."""
        worker = check.check_text("worker", worker)
        now = self._clock()
        return await self._write(lambda: ops_rec.release_transcriptions(worker, now))

    async def complete_transcription(
        self, job_id: int, token: str, segments: Sequence[SegmentInput]
    ) -> bool:
        """Store a job's transcript, redacted and raw, index it, and mark the job done.

        All in one transaction, and only if ``token`` still holds the running
        job: otherwise (a stale token, a job done already) nothing is written and
        the answer is False, so a recording is never transcribed twice.

        Raises:
            InvalidValue: a malformed segment (checked before anything is written).
        """
        job_id = check.check_id("job_id", job_id)
        token = check.check_text("token", token)
        prepared, document = prepare_segments(segments, self.redaction)
        now = self._clock()
        return await self._write(
            lambda: ops_rec.complete_transcription(
                self.dialect, job_id, token, prepared, document, now
            )
        )

    async def fail_transcription(
        self, job_id: int, token: str, error: str, retry_in_s: float
    ) -> TranscriptionJob:
        """Give a job back after a failure; pending again while attempts are left, else failed.

        Pending again means claimable from now + ``retry_in_s``.
        A token that lost the job changes nothing; the job is returned as it is.

        Raises:
            NotFound: no such job.
        """
        job_id = check.check_id("job_id", job_id)
        token = check.check_text("token", token)
        error = check.check_text("error", error, max_chars=check.MAX_TEXT, empty=True)
        retry_in_s = check.check_amount("retry_in_s", retry_in_s)
        now = self._clock()
        return await self._write(
            lambda: ops_rec.fail_transcription(job_id, token, error, retry_in_s, now)
        )

    async def transcription_job(self, recording_id: int) -> TranscriptionJob | None:
        """The job of a recording (None: registered without transcription)."""
        recording_id = check.check_id("recording_id", recording_id)
        return await self._read(ops_rec.transcription_job(recording_id))

    async def transcription_jobs(
        self, status: str | None = None, limit: int = 100
    ) -> list[TranscriptionJob]:
        """Jobs, oldest first, all or of one status."""
        if status is not None:
            status = check.check_choice("status", status, JOB_STATUSES)
        limit = check.check_limit(limit)
        return await self._read(ops_rec.transcription_jobs(status, limit))

    async def transcript(
        self, conversation_id: int, *, unredacted: bool = False
    ) -> list[TranscriptSegment]:
        """A conversation's transcript segments in time order, both channels.

        Redacted unless ``unredacted`` (the admin role's view): a masked span
        is one word (``[card]``) from its first word's start to its last's end.
        """
        conversation_id = check.check_id("conversation_id", conversation_id)
        if not isinstance(unredacted, bool):
            raise InvalidValue(f"unredacted must be True or False, not {unredacted!r}")
        return await self._read(ops_rec.transcript(conversation_id, unredacted))

    # ------------------------------------------------------------ search

    async def search(self, query: SearchQuery) -> SearchPage:
        """Transcripts and messages matching ``query``, most relevant first.

        See ``search_query`` for the language and ``operations_search`` for
        the plan. ``total`` is exact, except None when more than
        ``RANK_WINDOW`` (5,000) documents match and a filter is checked
        outside the full-text index (SQLite: a date or duration; PostgreSQL:
        any filter), where counting them all would cost more than the search.
        Past that many matches, relevance ranks the newest 5,000, and pages
        end there.

        Raises:
            InvalidValue: bad syntax in ``query.text`` or a bad filter.
        """
        if not isinstance(query, SearchQuery):
            raise InvalidValue(f"query must be a SearchQuery, not {type(query).__name__}")
        tree = parse(query.text)
        where = ops_search.SearchFilters(
            since=None if query.since is None else check.check_time("since", query.since),
            until=None if query.until is None else check.check_time("until", query.until),
            queue=check.check_optional_text("queue", query.queue),
            agent=check.check_optional_text("agent", query.agent),
            intent=check.check_optional_text("intent", query.intent),
            channel=None
            if query.channel is None
            else check.check_choice("channel", query.channel, CHANNELS),
            min_duration_s=None
            if query.min_duration_s is None
            else check.check_amount("min_duration_s", query.min_duration_s),
            max_duration_s=None
            if query.max_duration_s is None
            else check.check_amount("max_duration_s", query.max_duration_s),
        )
        limit = check.check_count("limit", query.limit, low=1, high=MAX_SEARCH_LIMIT)
        offset = check.check_count("offset", query.offset, high=ops_search.RANK_WINDOW)
        return await self._read(ops_search.search(self.dialect, tree, where, limit, offset))

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


def _positive_seconds(name: str, value: object) -> float:
    seconds = check.check_amount(name, value)
    if seconds <= 0:
        raise InvalidValue(f"{name} must be more than 0 seconds, not {value!r}")
    return seconds


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
