"""The durable transcription job loop: claim, keep the lease, complete once (asyncio, thin).

The queue lives in the store (``conversations``), so it survives restarts and
is shared by every node of a site. ``TranscriptionRunner`` runs ``workers``
loops, one per transcription process, each doing:

1. ``claim_transcription(node, lease_s)``: the oldest due job, or a running one
   whose lease expired (its node died); none: wait ``poll_s`` or until ``wake``;
2. transcribe the recording's file (``transcribe_pool``), renewing the lease every
   ``lease_s / 3`` meanwhile; a renewal refused means another node took the job
   over, so this one abandons it (the worker is killed) and writes nothing;
3. ``complete_transcription(job, token, segments)``: one transaction that writes
   the segments only while this claim still holds, so a recording is never
   transcribed twice, whoever finishes first; or on failure
   ``fail_transcription`` with a retry delay doubling per attempt
   (``retry_delay_s``), until the store marks the job failed at ``max_attempts``.

At start the runner releases the jobs this node still held (``release_transcriptions``):
a node killed mid-job picks them up again at once, instead of after the lease.
``stop`` abandons jobs in progress and releases them the same way. Log lines
carry the call-id as ``[call-id]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from conversations import Store, StoreError, TranscriptionJob
from recordings.transcribe import Transcription

__all__ = ["RunnerSettings", "TranscriptionRunner", "retry_delay_s"]

log = logging.getLogger(__name__)

Transcribe = Callable[[str, float | None], Awaitable[Transcription]]


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How the runner works the queue."""

    node: str  # this node's name: it claims and releases jobs under it
    workers: int = 1  # jobs at once (one per transcription process)
    lease_s: float = 60.0
    poll_s: float = 5.0  # an idle loop looks for due jobs this often (``wake`` is sooner)
    retry_base_s: float = 30.0
    retry_max_s: float = 3600.0
    # Time limit of one job: this much, plus ``timeout_per_audio_s`` per second of audio.
    timeout_base_s: float = 120.0
    timeout_per_audio_s: float = 2.0
    error_pause_s: float = 5.0  # after a store error, before claiming again


def retry_delay_s(attempts: int, base_s: float = 30.0, max_s: float = 3600.0) -> float:
    """How long a job that failed its ``attempts``-th attempt waits: base, 2x, 4x, ... capped."""
    return float(min(max_s, base_s * 2 ** max(0, attempts - 1)))


class TranscriptionRunner:
    """Works the store's transcription queue with bounded concurrency; see the module docstring."""

    def __init__(
        self,
        store: Store,
        transcribe: Transcribe,
        recordings_root: str | os.PathLike[str],
        settings: RunnerSettings,
    ) -> None:
        """Configure; nothing runs until ``start``.

        Args:
            store: the conversation store (its job queue and recordings).
            transcribe: ``TranscriptionPool.transcribe``: a file path and a time limit.
            recordings_root: where recordings' relative paths start.
            settings: node name, concurrency, lease and retry timing.

        Raises:
            ValueError: fewer than one worker, or a lease that is not positive.
        """
        if settings.workers < 1:
            raise ValueError(f"recordings.workers must be at least 1, not {settings.workers}")
        if settings.lease_s <= 0:
            raise ValueError(f"recordings.lease_s must be positive, not {settings.lease_s}")
        self.store = store
        self.settings = settings
        self.root = Path(recordings_root)
        self._transcribe = transcribe
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.completed = 0  # jobs this runner finished (segments written)
        self.failed = 0  # attempts that failed
        self.abandoned = 0  # jobs another node took over, or lost at completion

    async def start(self) -> None:
        """Release this node's leftover jobs, then start the loops.

        Raises:
            conversations.StoreError: the store could not release them.
        """
        released = await self.store.release_transcriptions(self.settings.node)
        if released:
            log.info(
                "transcription: %d unfinished job(s) of %s released", released, self.settings.node
            )
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._run(index), name=f"transcription-loop-{index}")
            for index in range(self.settings.workers)
        ]

    def wake(self) -> None:
        """A job was queued: idle loops look now rather than at their next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop the loops; jobs in progress are abandoned and released for later."""
        self._stopping = True
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        try:
            await self.store.release_transcriptions(self.settings.node)
        except StoreError as exc:  # their leases run out instead
            log.warning("transcription: could not release jobs at stop: %s", exc)

    async def _run(self, index: int) -> None:
        while not self._stopping:
            try:
                job = await self.store.claim_transcription(
                    self.settings.node, self.settings.lease_s
                )
            except StoreError as exc:
                log.error("transcription: claiming a job failed: %s", exc)
                await asyncio.sleep(self.settings.error_pause_s)
                continue
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)
                continue
            try:
                await self._work(job)
            except StoreError as exc:
                log.error("transcription: job %d: store error: %s", job.id, exc)
                await asyncio.sleep(self.settings.error_pause_s)

    async def _work(self, job: TranscriptionJob) -> None:
        assert job.token is not None, "a claimed job carries its token"
        recording = await self.store.get_recording(job.recording_id)
        if recording is None or recording.deleted_at is not None:
            await self._fail(job, "-", "the recording is gone (deleted by retention)")
            return
        label = recording.call_id
        path = self.root / recording.path
        timeout_s = (
            self.settings.timeout_base_s + self.settings.timeout_per_audio_s * recording.duration_s
        )
        log.info(
            "[%s] transcription: job %d, attempt %d of %d: %s (%.1f s)",
            label, job.id, job.attempts, job.max_attempts, recording.path, recording.duration_s,
        )  # fmt: skip
        work = asyncio.ensure_future(self._transcribe(str(path), timeout_s))
        lease = asyncio.ensure_future(self._keep_lease(job, work, label))
        try:
            result = await work
        except asyncio.CancelledError:
            if lease.done() and lease.result() is False:
                self.abandoned += 1
                return  # another node has the job now: write nothing
            raise
        except Exception as exc:  # the file, the recognizer or the worker failed
            await self._fail(job, label, f"{type(exc).__name__}: {exc}")
            return
        finally:
            lease.cancel()
            work.cancel()
        if await self.store.complete_transcription(job.id, job.token, result.segments):
            self.completed += 1
            words = sum(len(s.words) for s in result.segments)
            log.info(
                "[%s] transcription: job %d done: %d segments, %d words, %.1f s of audio "
                "in %.1f s CPU",
                label, job.id, len(result.segments), words, result.audio_s, result.cpu_s,
            )  # fmt: skip
        else:
            self.abandoned += 1
            log.warning(
                "[%s] transcription: job %d was taken over before it finished; result dropped",
                label, job.id,
            )  # fmt: skip

    async def _keep_lease(
        self, job: TranscriptionJob, work: asyncio.Future[Transcription], label: str
    ) -> bool:
        """Renew the lease until cancelled; False (and ``work`` cancelled) once it is lost."""
        assert job.token is not None
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                held = await self.store.renew_transcription(
                    job.id, job.token, self.settings.lease_s
                )
            except StoreError as exc:  # try again at the next third; the lease still runs
                log.warning("[%s] transcription: renewing job %d failed: %s", label, job.id, exc)
                continue
            if not held:
                log.warning(
                    "[%s] transcription: job %d lost its lease; abandoning it", label, job.id
                )
                work.cancel()
                return False

    async def _fail(self, job: TranscriptionJob, label: str, error: str) -> None:
        assert job.token is not None
        self.failed += 1
        delay_s = retry_delay_s(job.attempts, self.settings.retry_base_s, self.settings.retry_max_s)
        after = await self.store.fail_transcription(job.id, job.token, error, delay_s)
        if after.status == "failed":
            log.error(
                "[%s] transcription: job %d failed for good after %d attempts: %s",
                label, job.id, after.attempts, error,
            )  # fmt: skip
        else:
            log.warning(
                "[%s] transcription: job %d attempt %d failed (%s); retrying in %.0f s",
                label, job.id, job.attempts, error, delay_s,
            )  # fmt: skip
