"""The engine-level interface every recognizer backend implements (synchronous).

An ``Engine`` is loaded once per worker (a model is hundreds of MB); it hands
out one ``Decoder`` per call. Decoders are plain blocking objects: the async
shell in ``asr.service`` runs them on worker threads (vosk, which releases the
GIL) or in worker processes (pocketsphinx, which holds it), so nothing here may
touch the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from asr.results import Hypothesis

RATE_HZ = 8000  # what decoders are fed: telephone audio, signed 16-bit mono


@dataclass(frozen=True, slots=True)
class RecognitionContext:
    """What the recognizer should expect, set per listen step of a flow.

    ``phrases`` are sentences typical of the step ("my chest hurts", "I need a
    refill"); engines use them as phrase hints or to build a small language
    model, and words outside them may still be recognized. ``grammar`` is a
    closed set: only these phrases (and silence) can come back, as for a
    yes/no confirmation. Both are tuples so a context is hashable and engines
    can cache what they compile from it.

    ``general_english`` (0 to 1) is the share of belief an engine that builds a
    language model from ``phrases`` gives to everyday English words beyond them:
    0 for a short list of expected answers, more for an open question ("tell me
    what's wrong") where callers use words no phrase has. It needs many phrases
    (hundreds) to lean on: against thirty, everyday words drown them.
    """

    phrases: tuple[str, ...] = ()
    grammar: tuple[str, ...] | None = None
    name: str = ""  # for logs and caches only
    general_english: float = 0.0


class Decoder(Protocol):
    """One call's recognizer: one utterance at a time."""

    def start(self, context: RecognitionContext) -> None:
        """Begin an utterance under ``context``."""

    def accept(self, pcm: bytes) -> Hypothesis | None:
        """Feed 8 kHz s16le audio; a partial when it changed, or a final.

        A final here means the engine's own endpointer closed the utterance
        (then ``start`` again).
        """

    def finish(self) -> Hypothesis:
        """End the utterance now and return its final hypothesis."""

    def close(self) -> None:
        """Release the decoder's resources."""


class Engine(Protocol):
    """A loaded recognizer model that makes decoders."""

    name: str

    def decoder(self, *, partials: bool = True) -> Decoder:
        """A new decoder for one call.

        ``partials=False``: its ``accept`` returns only finals (of the engine's
        endpointer), and the engine may use that freedom for accuracy
        (pocketsphinx holds audio back to normalise each utterance by its own
        cepstral mean).
        """
