"""Worker handles: a recognition process (pocketsphinx) or thread (vosk), parent side.

Both run ``worker_loop.serve`` and give the service the same three things:
``send(message)`` that never blocks the caller, ``on_message(worker,
message)`` called on the caller's event-loop thread through the ``post``
function given to them (``loop.call_soon_threadsafe``), and ``on_exit(worker)``
when a process dies.

``ProcessWorker``: messages go out through a ``multiprocessing.Queue`` (its
feeder thread makes ``put`` non-blocking, so a busy worker never stalls the
loop) and come back through a ``Pipe`` read by one thread per worker that
also watches the process's sentinel. Processes start with ``spawn``: the
server runs uvloop with threads, and forking after threads is unsafe.

``ThreadWorker``: a thread over a ``queue.Queue`` sharing the already loaded
engine (vosk releases the GIL while decoding).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from asr.engine import Engine
from asr.worker_loop import Message, process_main, serve

__all__ = ["ProcessWorker", "ThreadWorker", "Worker"]

log = logging.getLogger(__name__)

Post = Callable[..., object]  # loop.call_soon_threadsafe
_numbers = itertools.count(1)


class Worker:
    """What the service needs of a worker."""

    name: str
    sessions: set[int]
    stopping: bool

    def send(self, message: Message) -> None:
        """Queue a message for the worker (never blocks)."""
        raise NotImplementedError

    def stop(self, timeout_s: float) -> None:
        """Ask the worker to stop and wait up to ``timeout_s`` (blocking: run off-loop)."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The worker process's id, or ``None`` for a thread."""
        return None


class ProcessWorker(Worker):
    """A worker process; see the module docstring."""

    def __init__(
        self,
        backend: str,
        model_path: str | None,
        post: Post,
        on_message: Callable[[Worker, Message], None],
        on_exit: Callable[[Worker], None],
    ) -> None:
        """Spawn the process and its reader thread."""
        context = multiprocessing.get_context("spawn")
        self.name = f"asr-worker-{next(_numbers)}"
        self.sessions = set()
        self.stopping = False
        self._inbox: Any = context.Queue()
        receiver, sender = context.Pipe(duplex=False)
        self._receiver = receiver
        self._process = context.Process(
            target=process_main,
            args=(backend, model_path, self._inbox, sender, os.getpid()),
            name=self.name,
            daemon=True,
        )
        self._process.start()
        sender.close()  # the child holds the only write end: EOF when it dies
        self._post = post
        self._on_message = on_message
        self._on_exit = on_exit
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        """The worker process's id."""
        return self._process.pid

    def send(self, message: Message) -> None:
        """Queue a message for the process."""
        self._inbox.put(message)

    def _read(self) -> None:
        receiver = self._receiver
        sentinel = self._process.sentinel
        while True:
            ready = multiprocessing.connection.wait([receiver, sentinel])
            if receiver not in ready and not receiver.poll():
                break  # the process died with nothing left to read
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                break
            self._post(self._on_message, self, message)
        self._process.join(timeout=5)
        if not self.stopping:
            self.discard_inbox()
        self._post(self._on_exit, self)

    def stop(self, timeout_s: float) -> None:
        """Ask the process to stop, then terminate it if it lingers."""
        self.stopping = True
        try:
            self._inbox.put(("stop",))
        except (OSError, ValueError):
            pass
        self._process.join(timeout_s)
        if self._process.is_alive():
            log.warning("%s did not stop in %.1f s: terminating", self.name, timeout_s)
            self._process.terminate()
            self._process.join(timeout_s)
        self._reader.join(timeout_s)
        self.discard_inbox()

    def discard_inbox(self) -> None:
        """Drop what was queued for a process that is gone.

        The queue's feeder thread would otherwise block forever writing a
        backlog into a pipe that nobody reads, and ``close`` would wait for it.
        """
        self._inbox.cancel_join_thread()
        self._inbox.close()


class ThreadWorker(Worker):
    """A worker thread sharing a loaded engine; see the module docstring."""

    def __init__(
        self, engine: Engine, post: Post, on_message: Callable[[Worker, Message], None]
    ) -> None:
        """Start the thread."""
        self.name = f"asr-thread-{next(_numbers)}"
        self.sessions = set()
        self.stopping = False
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()

        def deliver(message: Message) -> None:
            post(on_message, self, message)

        self._thread = threading.Thread(
            target=serve, args=(engine, self._inbox.get, deliver), name=self.name, daemon=True
        )
        self._thread.start()

    def send(self, message: Message) -> None:
        """Queue a message for the thread."""
        self._inbox.put(message)

    def stop(self, timeout_s: float) -> None:
        """Ask the thread to stop and wait for it."""
        self.stopping = True
        self._inbox.put(("stop",))
        self._thread.join(timeout_s)
