"""The recognition loop a worker runs: messages in, results out (no asyncio).

One worker (a process for pocketsphinx, a thread for vosk) serves many calls'
decoders, one message at a time, so a call's decoder always lives in one
worker. Messages are plain tuples (cheap to pickle across a pipe):

    parent -> worker                      worker -> parent
    ("open", sid, label, partials)        ("ready", engine_name)
    ("start", sid, utt, context)          ("failed", reason)        engine did not load
    ("audio", sid, utt, pcm_bytes)        ("result", sid, utt, Hypothesis)
    ("finish", sid, utt)                  ("error", sid, utt, reason)
    ("cancel", sid, utt)
    ("close", sid)
    ("prepare", seq, contexts)            ("prepared", seq)         contexts compiled
    ("stop",)

``utt`` numbers a session's utterances: audio or a finish for an utterance
that is no longer current (cancelled, superseded, or already ended by the
engine's endpointer) is dropped here, and the parent drops results the same way.
A decoder that raises fails only its utterance (an ``error`` message).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asr.engine import Decoder, Engine, RecognitionContext

__all__ = ["load_engine", "process_main", "serve"]

log = logging.getLogger(__name__)

Message = tuple[Any, ...]
_PREPARE_SILENCE_BYTES = 2 * 1600  # 200 ms of 8 kHz s16le silence
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def load_engine(backend: str, model_path: str | None) -> Engine:
    """Load the named backend's engine (``pocketsphinx`` or ``vosk``).

    Raises:
        ValueError: an unknown backend name.
    """
    if backend == "pocketsphinx":
        from asr.engine_pocketsphinx import PocketsphinxEngine

        return PocketsphinxEngine(model_path)
    if backend == "vosk":
        from asr.engine_vosk import VoskEngine

        return VoskEngine(model_path)
    raise ValueError(f"unknown asr.backend {backend!r}: use 'pocketsphinx' or 'vosk'")


@dataclass(slots=True)
class _Session:
    """One call's decoder inside the worker, and the utterance it is on."""

    sid: int
    label: str
    decoder: Decoder
    send: Callable[[Message], None]
    utt: int | None = None  # the utterance in progress

    def start(self, utt: int, context: RecognitionContext) -> None:
        self.utt = utt
        try:
            self.decoder.start(context)
        except Exception as exc:  # a decoder's bug fails its call, not the worker
            self._failed(utt, exc)

    def accept(self, utt: int, pcm: bytes) -> None:
        try:
            hypothesis = self.decoder.accept(pcm)
        except Exception as exc:
            self._failed(utt, exc)
            return
        if hypothesis is not None:
            if hypothesis.final:
                self.utt = None  # the engine's endpointer ended the utterance
            self.send(("result", self.sid, utt, hypothesis))

    def finish(self, utt: int) -> None:
        self.utt = None
        try:
            hypothesis = self.decoder.finish()
        except Exception as exc:
            self._failed(utt, exc)
            return
        self.send(("result", self.sid, utt, hypothesis))

    def close(self) -> None:
        try:
            self.decoder.close()
        except Exception:
            log.exception("[%s] closing the recognizer failed", self.label)

    def _failed(self, utt: int, exc: Exception) -> None:
        self.utt = None
        log.exception("[%s] recognizer failed", self.label)
        self.send(("error", self.sid, utt, f"{type(exc).__name__}: {exc}"))


def serve(engine: Engine, receive: Callable[[], Message], send: Callable[[Message], None]) -> None:
    """Handle messages until ``("stop",)``; see the module docstring."""
    sessions: dict[int, _Session] = {}
    while True:
        message = receive()
        kind = message[0]
        if kind == "stop":
            break
        if kind == "prepare":
            _prepare(engine, message[2])
            send(("prepared", message[1]))
            continue
        if kind == "open":
            sid, label, partials = message[1], message[2], message[3]
            try:
                sessions[sid] = _Session(sid, label, engine.decoder(partials=partials), send)
            except Exception:
                log.exception("[%s] could not make a recognizer", label)
            continue
        session = sessions.get(message[1])
        if session is None:
            continue  # never opened (its failure was logged) or closed
        if kind == "close":
            del sessions[session.sid]
            session.close()
        elif kind == "start":
            session.start(message[2], message[3])
        elif message[2] != session.utt:
            continue  # a cancelled, superseded or already-final utterance
        elif kind == "audio":
            session.accept(message[2], message[3])
        elif kind == "finish":
            session.finish(message[2])
        elif kind == "cancel":
            session.utt = None
    for session in sessions.values():
        session.close()


def _prepare(engine: Engine, contexts: tuple[RecognitionContext, ...]) -> None:
    """Compile ``contexts`` now: one throwaway silent utterance each.

    A pocketsphinx open question's LM takes seconds to build; built on a caller's
    first utterance, that caller's final would miss the IVR's finalize timeout.
    """
    for context in contexts:
        try:
            decoder = engine.decoder()
        except Exception:
            log.exception("could not make a decoder to prepare %r", context.name)
            return
        try:
            decoder.start(context)
            decoder.accept(bytes(_PREPARE_SILENCE_BYTES))
            decoder.finish()
        except Exception:
            log.exception("could not prepare context %r", context.name)
        finally:
            try:
                decoder.close()
            except Exception:
                log.exception("could not close the decoder that prepared %r", context.name)


def die_with_parent(parent_pid: int) -> None:
    """Linux: be SIGKILLed when the parent exits (and exit now if it already has).

    A worker process calls it first, so a SIGKILLed server leaves no orphan
    holding a model's memory (``PR_SET_PDEATHSIG``, prctl(2)).
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def process_main(
    backend: str, model_path: str | None, inbox: Any, outbox: Any, parent_pid: int
) -> None:
    """Entry point of a worker process (``spawn``): load the engine, then ``serve``.

    ``inbox`` is a ``multiprocessing.Queue``, ``outbox`` the child end of a ``Pipe``;
    the worker dies with ``parent_pid``.
    """
    die_with_parent(parent_pid)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s asr-worker %(levelname)s %(name)s: %(message)s"
    )
    try:
        engine = load_engine(backend, model_path)
    except Exception as exc:
        outbox.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    outbox.send(("ready", engine.name))
    serve(engine, inbox.get, outbox.send)
