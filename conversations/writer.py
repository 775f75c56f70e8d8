"""The batching writer: every write of the store goes through one task and one queue.

Callers on the event loop put a job in the queue and get a future at once. The
writer task takes everything queued (up to ``max_batch``), hands it to the
backend as one transaction, and resolves the futures only after that
transaction committed: a resolved future means the write is on disk (SQLite)
or in the server's WAL (PostgreSQL). While one batch commits the next one
fills, so the batch size follows the load (group commit) without a timer: an
idle store commits a lone write at once.

Events from calls (``submit_event``) are plain rows, cheap to queue from the
media loop; other writes (``submit``) are operations that run in their own
savepoint within the batch (``operations.batch``). If the whole transaction
fails (disk full, connection lost), every future of the batch gets the error:
nothing of it was acknowledged, and nothing of it was committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from conversations.errors import StoreClosed, StoreError, StoreOverloaded
from conversations.operations import EventRow, Job, Op, Outcome

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_OVERLOAD_LOG_INTERVAL_S = 5.0


class _Pending:
    __slots__ = ("enqueued_at", "future", "job")

    def __init__(self, job: Job, future: asyncio.Future[Any], enqueued_at: float) -> None:
        self.job, self.future, self.enqueued_at = job, future, enqueued_at


class BatchWriter:
    """One task that commits queued writes in batches; see the module docstring."""

    def __init__(
        self,
        commit: Callable[[Sequence[Job]], Awaitable[list[Outcome]]],
        *,
        max_batch: int = 5000,
        max_pending_events: int = 200_000,
    ) -> None:
        """Configure; nothing runs until ``start``.

        Args:
            commit: runs one batch in one transaction and returns one outcome per
                job after COMMIT; raises if the transaction failed as a whole.
            max_batch: jobs per transaction at most.
            max_pending_events: queued events beyond which ``submit_event`` refuses
                (``StoreOverloaded``) rather than grow memory without bound.
        """
        self._commit = commit
        self._max_batch = max_batch
        self._max_pending_events = max_pending_events
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._in_flight_since: float | None = None  # enqueue time of the committing batch's oldest
        self._batches = 0
        self._events_written = 0
        self._failed = 0
        self._last_batch = 0
        self._last_commit_ms = 0.0
        self._overload_logged_at = -_OVERLOAD_LOG_INTERVAL_S

    def start(self) -> None:
        """Start the writer task on the running loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="conversations-writer")

    def submit(self, op: Callable[[], Op[T]]) -> asyncio.Future[T]:
        """Queue an operation; the future gets its result after COMMIT."""
        future: asyncio.Future[T] = self._new_future()
        self._enqueue(op, future)
        return future

    def submit_event(self, row: EventRow) -> asyncio.Future[None]:
        """Queue one event row; never raises, never blocks (see ``Store.record_event``)."""
        future: asyncio.Future[None] = self._new_future()
        if self._queued_events >= self._max_pending_events:
            self._fail_quietly(
                future,
                StoreOverloaded(
                    f"{self._queued_events} events wait for the database; event dropped"
                ),
            )
            now = time.monotonic()
            if now - self._overload_logged_at >= _OVERLOAD_LOG_INTERVAL_S:
                self._overload_logged_at = now
                log.warning(
                    "conversation store overloaded: %d events queued, dropping new ones",
                    self._queued_events,
                )
            return future
        self._queued_events += 1
        self._enqueue(row, future)
        return future

    async def close(self) -> None:
        """Refuse new writes, commit everything queued, and stop the task."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    def stats(self) -> dict[str, Any]:
        """Counters for ``/metrics``; ``write_lag_ms``: age of the oldest uncommitted write."""
        oldest = self._in_flight_since
        if self._queue:
            queued = self._queue[0].enqueued_at
            oldest = queued if oldest is None else min(oldest, queued)
        lag_ms = 0.0 if oldest is None else (time.monotonic() - oldest) * 1000.0
        return {
            "pending_writes": len(self._queue),
            "write_lag_ms": lag_ms,
            "batches": self._batches,
            "events_written": self._events_written,
            "failed_writes": self._failed,
            "last_batch_size": self._last_batch,
            "last_commit_ms": self._last_commit_ms,
        }

    def _new_future(self) -> asyncio.Future[Any]:
        if self._loop is None:
            raise StoreClosed("the store was not started")
        return self._loop.create_future()

    def _enqueue(self, job: Job, future: asyncio.Future[Any]) -> None:
        if self._closing:
            self._fail_quietly(future, StoreClosed("the store is closed"))
            return
        self._queue.append(_Pending(job, future, time.monotonic()))
        if len(self._queue) == 1:
            self._wakeup.set()

    @staticmethod
    def _fail_quietly(future: asyncio.Future[Any], error: BaseException) -> None:
        """Fail a future that its caller may ignore, without asyncio's "never retrieved" log."""
        future.set_exception(error)
        future.exception()  # marks it retrieved; an awaiting caller still gets the error

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            count = min(len(self._queue), self._max_batch)
            pending = [self._queue.popleft() for _ in range(count)]
            await self._commit_batch(pending)

    async def _commit_batch(self, pending: list[_Pending]) -> None:
        jobs = [item.job for item in pending]
        event_count = sum(isinstance(job, tuple) for job in jobs)
        self._in_flight_since = pending[0].enqueued_at
        started = time.perf_counter()
        try:
            outcomes = await self._commit(jobs)
        except Exception as exc:  # the transaction as a whole: nothing of it committed
            error = exc if isinstance(exc, StoreError) else StoreError(f"batch failed: {exc!r}")
            log.error("conversation store: a batch of %d writes failed: %s", len(pending), error)
            outcomes = [(False, error)] * len(pending)
        finally:
            self._in_flight_since = None
            self._queued_events -= event_count
        self._batches += 1
        self._last_batch = len(pending)
        self._last_commit_ms = (time.perf_counter() - started) * 1000.0
        failed_events = 0
        for item, (ok, value) in zip(pending, outcomes, strict=True):
            is_event = isinstance(item.job, tuple)
            if ok:
                self._events_written += is_event
            else:
                self._failed += 1
            if item.future.done():  # the caller cancelled its wait; the write stands
                continue
            if ok:
                item.future.set_result(value)
            elif is_event:
                failed_events += 1
                self._fail_quietly(item.future, value)
            else:
                item.future.set_exception(value)
        if failed_events:
            log.warning(
                "conversation store: %d events not written: %s",
                failed_events,
                next(value for ok, value in outcomes if not ok),
            )
