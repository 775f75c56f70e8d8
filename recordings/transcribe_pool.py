"""Transcription worker processes and their asyncio handle (the parent side).

Each worker is a ``spawn``-ed process (the server runs threads, and forking
after threads is unsafe) that loads one ``transcribe.Transcriber`` (the
recognizer, once) and then transcribes one file per request. pocketsphinx
holds the GIL, so parallel transcription needs processes, and a process per
worker keeps a crash in native code to that worker.

Messages on one duplex ``Pipe`` per worker (plain tuples):

    parent -> worker                  worker -> parent
    ("settings", TranscriberSettings) ("ready",) | ("failed", reason)   once, at start
    ("transcribe", path)              ("done", Transcription) | ("error", reason)
    ("stop",)

The parent never blocks: it waits for a worker's answer with ``add_reader`` on
the pipe, then reads and unpickles it on a thread. The settings
(the flow's phrases: hundreds of kB) go over the pipe from a thread, once the
child reads: as an argument of ``Process`` they were written while ``start``
held the loop, until the new interpreter had imported enough to read them
(0.5 s measured). A worker that
dies (its pipe reads EOF) fails its job with ``WorkerLost`` and is replaced;
one that runs past the job's time limit is killed and replaced too.

Workers run at a lower CPU priority (``nice``): live calls' media and
recognition come first. On Linux each asks the kernel to kill it when the
server dies (``PR_SET_PDEATHSIG``), so a SIGKILLed server leaves no orphan
decoding on; its unfinished job is released at the next start (``runner``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
from typing import Any

from asr.worker_loop import die_with_parent
from recordings.transcribe import Transcriber, TranscriberSettings, Transcription

__all__ = ["TranscriptionError", "TranscriptionPool", "WorkerLost"]

log = logging.getLogger(__name__)

NICENESS = 10  # below live calls' work
_START_TIMEOUT_S = 180.0  # loading a large vosk model takes a while
_STOP_TIMEOUT_S = 3.0
_RESPAWN_FIRST_DELAY_S = 5.0  # a replacement that fails to start is tried again, backing off
_RESPAWN_MAX_DELAY_S = 300.0


class TranscriptionError(RuntimeError):
    """A recording could not be transcribed (the worker's reason)."""


class WorkerLost(TranscriptionError):
    """The worker process died or was killed during the job."""


def worker_main(conn: Any, parent_pid: int) -> None:
    """A worker process: load the recognizer once, then transcribe until told to stop."""
    die_with_parent(parent_pid)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-5s transcription-worker %(name)s %(message)s",
    )
    # The IVR's workers already logged how each out-of-dictionary phrase word is said.
    logging.getLogger("asr").setLevel(logging.WARNING)
    try:
        kind, settings = conn.recv()
        if kind != "settings":
            raise RuntimeError(f"expected the settings first, not {kind!r}")
        transcriber = Transcriber(settings)
        transcriber.warm_up()
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "transcribe":
            return
        try:
            result: tuple[Any, ...] = ("done", transcriber.transcribe_file(message[1]))
        except Exception as exc:  # a bad file fails its job, not the worker
            result = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(result)


class _Worker:
    """One process and our end of its pipe."""

    def __init__(self, name: str) -> None:
        """Start the process (on the loop's thread: the child dies with that thread)."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        self.name = name
        self.conn = ours
        self.process = context.Process(
            target=worker_main, args=(theirs, os.getpid()), name=name, daemon=True
        )
        self.process.start()
        theirs.close()  # the child holds the only other end: EOF when it dies

    async def receive(self, timeout_s: float | None) -> tuple[Any, ...]:
        """The worker's next message, without blocking the loop.

        Raises:
            WorkerLost: the process died (EOF on the pipe, or its sentinel).
            TimeoutError: nothing within ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fds = (self.conn.fileno(), self.process.sentinel)

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        for fd in fds:
            loop.add_reader(fd, readable)
        try:
            await asyncio.wait_for(ready, timeout_s)
        finally:
            for fd in fds:
                loop.remove_reader(fd)
        try:
            if not self.conn.poll():  # the sentinel: it exited with nothing more to say
                raise EOFError
            # A long call's result is a few MB to read and unpickle: off the loop.
            message: tuple[Any, ...] = await asyncio.to_thread(self.conn.recv)
        except (EOFError, OSError):
            self.process.join(_STOP_TIMEOUT_S)
            raise WorkerLost(f"{self.name} exited (code {self.process.exitcode})") from None
        return message

    def kill(self) -> None:
        """End the process now and close the pipe (blocking briefly: it reaps the child)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_STOP_TIMEOUT_S)
        self.conn.close()


class TranscriptionPool:
    """``workers`` transcription processes; ``transcribe`` takes the next idle one."""

    def __init__(self, settings: TranscriberSettings, workers: int = 1) -> None:
        """Configure; nothing starts until ``start``.

        Raises:
            ValueError: fewer than one worker.
        """
        if workers < 1:
            raise ValueError(f"recordings.workers must be at least 1, not {workers}")
        self.settings = settings
        self.size = workers
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._busy: set[_Worker] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._serial = 0
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [w.process.pid for w in self._all if w.process.pid is not None]

    @property
    def busy_pids(self) -> list[int]:
        """The ids of the workers transcribing a file right now."""
        return [w.process.pid for w in self._busy if w.process.pid is not None]

    async def start(self) -> None:
        """Spawn the workers and wait until each has loaded its recognizer.

        Raises:
            TranscriptionError: a worker could not load it (the reason is given).
        """
        try:
            for worker in await asyncio.gather(*(self._spawn() for _ in range(self.size))):
                self._idle.put_nowait(worker)
        except BaseException:
            await self.close()
            raise

    async def _spawn(self) -> _Worker:
        self._serial += 1
        worker = _Worker(f"transcription-worker-{self._serial}")
        self._all.add(worker)
        try:
            await asyncio.to_thread(worker.conn.send, ("settings", self.settings))
            message = await worker.receive(_START_TIMEOUT_S)
        except (WorkerLost, TimeoutError, OSError) as exc:
            await self._discard(worker)
            raise TranscriptionError(f"{worker.name} did not start: {exc}") from None
        if message[0] != "ready":
            await self._discard(worker)
            raise TranscriptionError(f"{worker.name} could not load the recognizer: {message[1]}")
        return worker

    async def transcribe(self, path: str, timeout_s: float | None = None) -> Transcription:
        """Transcribe one file in the next idle worker.

        Raises:
            TranscriptionError: the file could not be transcribed.
            WorkerLost: the worker died during the job (it is replaced).
            TimeoutError: the job ran past ``timeout_s`` (the worker is killed and replaced).
        """
        if self._closed:
            raise TranscriptionError("the transcription pool is closed")
        worker = await self._idle.get()
        healthy = False
        self._busy.add(worker)
        try:
            try:
                worker.conn.send(("transcribe", path))
            except (OSError, ValueError) as exc:  # the pipe broke under us
                raise WorkerLost(f"{worker.name}: {exc}") from None
            message = await worker.receive(timeout_s)
            healthy = True
        finally:
            self._busy.discard(worker)
            if healthy:
                self._idle.put_nowait(worker)
            else:  # died, timed out or cancelled mid-job: its state is unknown
                self._replace(worker)
        if message[0] != "done":
            raise TranscriptionError(str(message[1]))
        transcription: Transcription = message[1]
        return transcription

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start another in the background (a job's caller does not wait)."""
        task = asyncio.get_running_loop().create_task(self._respawn(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _respawn(self, worker: _Worker) -> None:
        await self._discard(worker)
        delay_s = _RESPAWN_FIRST_DELAY_S
        while not self._closed:
            try:
                self._idle.put_nowait(await self._spawn())
                return
            except TranscriptionError as exc:
                # Jobs wait for a worker meanwhile (their leases are renewed).
                log.error("transcription: %s; trying again in %.0f s", exc, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, _RESPAWN_MAX_DELAY_S)

    async def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        await asyncio.to_thread(worker.kill)

    async def close(self) -> None:
        """Stop every worker now (a job in progress is abandoned, not finished)."""
        self._closed = True
        replacing = list(self._replacing)
        for task in replacing:
            task.cancel()
        await asyncio.gather(*replacing, return_exceptions=True)
        workers, self._all = list(self._all), set()
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("stop",))
        await asyncio.gather(*(asyncio.to_thread(w.kill) for w in workers))
