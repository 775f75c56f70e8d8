"""The asyncio shell over the recognizers: sessions in, results on the loop thread.

``AsrService`` owns the workers (``worker_process``): processes for
pocketsphinx, which holds the GIL, threads for vosk, which releases it. Each
call opens an ``AsrSession`` pinned to the least-loaded worker (its decoder is
stateful, so it never moves while the worker lives). Session methods only
buffer and queue messages, so nothing here blocks the event loop, and a slow
recognizer delays only the calls of its own worker.

Audio is shipped in chunks of ``CHUNK_MS`` (not one message per 20 ms frame)
to keep the pipe cheap. Utterances are numbered per session; results for an
utterance that was cancelled or superseded are dropped, so ``on_result``
sees partials and then exactly one final per utterance that was finished or
ended by the engine's endpointer.

If a worker process dies, each of its sessions with an utterance in progress
gets an empty final with confidence 0 (the IVR reprompts), the error is
logged with the session's label, and a new worker takes over those sessions.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from asr.engine import RATE_HZ, RecognitionContext
from asr.results import Hypothesis
from asr.worker_loop import Message, load_engine
from asr.worker_process import ProcessWorker, ThreadWorker, Worker

__all__ = ["CHUNK_MS", "AsrService", "AsrSession", "AsrStats"]

log = logging.getLogger(__name__)

CHUNK_MS = 80  # audio per message to a worker
_CHUNK_SAMPLES = RATE_HZ * CHUNK_MS // 1000
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 5.0
_LATENCY_WINDOW = 10_000  # finalize latencies kept for the percentiles
_EMPTY_FINAL = Hypothesis("", (), 0.0, final=True)
_PROCESS_BACKENDS = frozenset({"pocketsphinx"})  # hold the GIL: one process each


@dataclass(frozen=True, slots=True)
class AsrStats:
    """A snapshot of the service's counters."""

    finals: int
    errors: int  # failed utterances (decoder errors and worker crashes)
    worker_restarts: int
    finalize_mean_ms: float  # finish_utterance -> final delivered, on the loop
    finalize_p50_ms: float
    finalize_p95_ms: float


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


class AsrService:
    """Streaming recognition for many calls; see the module docstring."""

    def __init__(
        self, backend: str = "pocketsphinx", *, model_path: str | None = None, workers: int = 2
    ) -> None:
        """Configure; nothing loads until ``start``.

        Args:
            backend: ``pocketsphinx`` (English, model in the wheel) or ``vosk``.
            model_path: the model directory (``asr.model_path``); ``None`` for
                the backend's default.
            workers: worker processes (pocketsphinx) or threads (vosk).

        Raises:
            ValueError: unknown backend or fewer than one worker.
        """
        if backend not in ("pocketsphinx", "vosk"):
            raise ValueError(f"unknown asr.backend {backend!r}: use 'pocketsphinx' or 'vosk'")
        if workers < 1:
            raise ValueError(f"asr.workers must be at least 1, not {workers}")
        self.backend = backend
        self._model_path = model_path
        self._worker_count = workers
        self._workers: list[Worker] = []
        self._sessions: dict[int, AsrSession] = {}
        self._session_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: dict[Worker, asyncio.Future[str]] = {}
        self._finals = 0
        self._errors = 0
        self._restarts = 0
        self._latencies_s: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._closed = False
        self._prepared: tuple[RecognitionContext, ...] = ()  # new workers compile these too
        self._preparing: dict[int, tuple[asyncio.Future[None], set[Worker]]] = {}
        self._prepare_seq = itertools.count(1)

    async def start(self) -> None:
        """Load the engines: spawn worker processes, or load vosk and start threads.

        Raises:
            RuntimeError: a worker could not load its engine (the reason is given).
            asr.models.ModelNotFoundError: vosk has no model.
        """
        self._loop = asyncio.get_running_loop()
        if self.backend in _PROCESS_BACKENDS:
            for _ in range(self._worker_count):
                self._workers.append(self._spawn())
            try:
                await asyncio.wait_for(
                    asyncio.gather(*self._ready.values()), timeout=_START_TIMEOUT_S
                )
            except BaseException:
                await self.close()
                raise
        else:
            engine = await self._loop.run_in_executor(
                None, load_engine, self.backend, self._model_path
            )
            post = self._loop.call_soon_threadsafe
            for _ in range(self._worker_count):
                self._workers.append(ThreadWorker(engine, post, self._on_message))
        log.info("asr: %s ready with %d workers", self.backend, len(self._workers))

    async def prepare(
        self, contexts: tuple[RecognitionContext, ...], timeout_s: float = _START_TIMEOUT_S
    ) -> None:
        """Have every worker compile ``contexts`` now, before callers need them.

        Workers started later (a replacement for one that died) compile them too.

        Raises:
            TimeoutError: the workers did not finish within ``timeout_s``.
        """
        assert self._loop is not None, "start() first"
        self._prepared = tuple(dict.fromkeys(self._prepared + tuple(contexts)))
        seq = next(self._prepare_seq)
        done: asyncio.Future[None] = self._loop.create_future()
        self._preparing[seq] = (done, set(self._workers))
        for worker in self._workers:
            worker.send(("prepare", seq, tuple(contexts)))
        try:
            await asyncio.wait_for(done, timeout_s)
        finally:
            self._preparing.pop(seq, None)

    def _prepared_by(self, worker: Worker, seq: int) -> None:
        entry = self._preparing.get(seq)
        if entry is None:
            return
        done, waiting = entry
        waiting.discard(worker)
        if not waiting and not done.done():
            done.set_result(None)

    def _spawn(self) -> Worker:
        assert self._loop is not None
        worker = ProcessWorker(
            self.backend,
            self._model_path,
            self._loop.call_soon_threadsafe,
            self._on_message,
            self._on_exit,
        )
        self._ready[worker] = self._loop.create_future()
        if self._prepared:
            worker.send(("prepare", 0, self._prepared))  # queued behind its engine's load
        return worker

    async def close(self) -> None:
        """Close every session and stop the workers."""
        self._closed = True
        for session in list(self._sessions.values()):
            session.close()
        loop = asyncio.get_running_loop()
        workers, self._workers = self._workers, []
        await asyncio.gather(
            *(loop.run_in_executor(None, w.stop, _STOP_TIMEOUT_S) for w in workers)
        )
        for future in self._ready.values():
            if not future.done():
                future.cancel()
        self._ready.clear()

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes' ids (empty for thread workers)."""
        return [w.pid for w in self._workers if w.pid is not None]

    @property
    def session_count(self) -> int:
        """Sessions open now, whatever opened them (IVR calls, live transcripts)."""
        return len(self._sessions)

    @property
    def stats(self) -> AsrStats:
        """Finals, errors, restarts and finalize latency so far."""
        latencies = sorted(self._latencies_s)
        mean = sum(latencies) / len(latencies) if latencies else math.nan
        return AsrStats(
            finals=self._finals,
            errors=self._errors,
            worker_restarts=self._restarts,
            finalize_mean_ms=mean * 1000,
            finalize_p50_ms=_percentile(latencies, 0.50) * 1000,
            finalize_p95_ms=_percentile(latencies, 0.95) * 1000,
        )

    def open_session(
        self, label: str, on_result: Callable[[Hypothesis], None], *, partials: bool = True
    ) -> AsrSession:
        """A recognizer for one call; ``label`` (the call-id) tags its log lines.

        ``partials=False`` for a caller that acts on finals only (the IVR): no
        partials come, and the engine may trade them for accuracy
        (``asr.engine.Engine.decoder``).

        Raises:
            RuntimeError: the service is not started or is closed.
        """
        if self._closed or not self._workers:
            raise RuntimeError("AsrService is not running: await start() first")
        worker = min(self._workers, key=lambda w: len(w.sessions))
        sid = next(self._session_ids)
        session = AsrSession(self, sid, label, on_result, worker, partials=partials)
        self._sessions[sid] = session
        worker.sessions.add(sid)
        worker.send(("open", sid, label, partials))
        return session

    # --- called by sessions and workers, on the loop thread ---

    def _forget(self, session: AsrSession) -> None:
        self._sessions.pop(session.sid, None)
        session.worker.sessions.discard(session.sid)

    def _on_message(self, worker: Worker, message: Message) -> None:
        kind = message[0]
        if kind == "ready":
            future = self._ready.get(worker)
            if future is not None and not future.done():
                future.set_result(message[1])
            return
        if kind == "failed":
            log.error("asr: %s could not load %s: %s", worker.name, self.backend, message[1])
            future = self._ready.get(worker)
            if future is not None and not future.done():
                future.set_exception(RuntimeError(f"asr worker failed to load: {message[1]}"))
            return
        if kind == "prepared":
            self._prepared_by(worker, message[1])
            return
        session = self._sessions.get(message[1])
        if session is None or session.worker is not worker:
            return
        if kind == "result":
            session._deliver(message[2], message[3])
        elif kind == "error":
            log.error("[%s] asr: utterance failed: %s", session.label, message[3])
            session._fail(message[2])

    def _on_exit(self, worker: Worker) -> None:
        if worker.stopping or self._closed or worker not in self._workers:
            return
        future = self._ready.pop(worker, None)
        never_ready = future is not None and not (future.done() and future.exception() is None)
        if future is not None and not future.done():
            future.set_exception(RuntimeError(f"{worker.name} exited before loading"))
        log.error("asr: %s exited unexpectedly (%d sessions)", worker.name, len(worker.sessions))
        for seq in list(self._preparing):
            self._prepared_by(worker, seq)
        self._workers.remove(worker)
        orphans = [self._sessions[sid] for sid in worker.sessions if sid in self._sessions]
        if never_ready:
            # It could not load its engine: a new one would fail the same way, forever.
            log.error("asr: %s never loaded its engine; not restarting it", worker.name)
        else:
            self._workers.append(self._spawn())
            self._restarts += 1
        for session in orphans:
            log.error("[%s] asr: worker %s died; utterance lost", session.label, worker.name)
            session._fail_all()
            if self._workers:
                session._move_to(min(self._workers, key=lambda w: len(w.sessions)))
            else:
                self._forget(session)

    def _record_final(self, finished_at: float | None) -> None:
        self._finals += 1
        if finished_at is not None:
            self._latencies_s.append(time.perf_counter() - finished_at)


class AsrSession:
    """One call's recognizer; every method is non-blocking, for the loop thread."""

    def __init__(
        self,
        service: AsrService,
        sid: int,
        label: str,
        on_result: Callable[[Hypothesis], None],
        worker: Worker,
        *,
        partials: bool = True,
    ) -> None:
        """Made by ``AsrService.open_session``."""
        self.sid = sid
        self.label = label
        self.worker = worker
        self.partials = partials
        self._service = service
        self._on_result = on_result
        self._utt = 0
        self._active = False  # the current utterance takes audio (not finished yet)
        # Finished utterances whose final is owed -> perf_counter at finish_utterance.
        self._owed: dict[int, float] = {}
        self._pending: list[NDArray[np.int16]] = []
        self._pending_samples = 0
        self._closed = False

    def start_utterance(
        self, context: RecognitionContext, preroll: NDArray[np.int16] | None = None
    ) -> None:
        """Begin a new utterance.

        An unfinished utterance in progress is superseded: its results are
        dropped. A finished one still gets its final. ``preroll`` is audio from
        before the start (the VAD's look-back), fed first.
        """
        if self._closed:
            raise RuntimeError(f"[{self.label}] session is closed")
        self._utt += 1
        self._active = True
        self._pending.clear()
        self._pending_samples = 0
        self.worker.send(("start", self.sid, self._utt, context))
        if preroll is not None and len(preroll):
            self.feed(preroll)

    def feed(self, pcm: NDArray[np.int16]) -> None:
        """Queue 8 kHz int16 mono audio of any length (dropped outside an utterance)."""
        if not self._active:
            return
        self._pending.append(pcm)
        self._pending_samples += len(pcm)
        if self._pending_samples >= _CHUNK_SAMPLES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        chunk = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        self._pending_samples = 0
        self.worker.send(("audio", self.sid, self._utt, chunk.astype("<i2", copy=False).tobytes()))

    def finish_utterance(self) -> None:
        """End the utterance; its final arrives later through ``on_result``."""
        if not self._active:
            return
        self._flush()
        self._active = False
        self._owed[self._utt] = time.perf_counter()
        self.worker.send(("finish", self.sid, self._utt))

    def cancel_utterance(self) -> None:
        """Drop the current utterance, finished or not: no more of its results arrive."""
        finished = self._owed.pop(self._utt, None) is not None
        if not self._active and not finished:
            return
        self._active = False
        self._pending.clear()
        self._pending_samples = 0
        self.worker.send(("cancel", self.sid, self._utt))

    def close(self) -> None:
        """Cancel any utterance and release the call's decoder."""
        if self._closed:
            return
        self.cancel_utterance()
        self._closed = True
        self.worker.send(("close", self.sid))
        self._service._forget(self)

    # --- from the service, on the loop thread ---

    def _deliver(self, utt: int, hypothesis: Hypothesis) -> None:
        if self._closed:
            return
        if hypothesis.final and utt in self._owed:
            self._service._record_final(self._owed.pop(utt))
            self._call(hypothesis)
        elif utt == self._utt and (self._active or utt in self._owed):
            if hypothesis.final:  # the engine's endpointer, before finish_utterance
                self._active = False
                self._service._record_final(None)
            self._call(hypothesis)
        # else: cancelled or superseded, or a partial of an earlier utterance

    def _fail(self, utt: int) -> None:
        """The utterance failed: an empty final so the IVR can reprompt."""
        if self._closed:
            return
        if utt == self._utt and self._active:
            self._active = False
        elif self._owed.pop(utt, None) is None:
            return
        self._service._errors += 1
        self._service._record_final(None)
        self._call(_EMPTY_FINAL)

    def _fail_all(self) -> None:
        """Every utterance still owed a final fails (its worker died)."""
        for utt in sorted({*self._owed, *([self._utt] if self._active else [])}):
            self._fail(utt)

    def _move_to(self, worker: Worker) -> None:
        self.worker = worker
        worker.sessions.add(self.sid)
        worker.send(("open", self.sid, self.label, self.partials))

    def _call(self, hypothesis: Hypothesis) -> None:
        try:
            self._on_result(hypothesis)
        except Exception:
            log.exception("[%s] asr: on_result raised", self.label)
