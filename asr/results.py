"""What a recognizer returns: hypotheses made of timed, scored words.

Times are seconds from the start of the utterance's audio (the first sample fed
after ``Decoder.start``), so a caller of the interface can line them up with the
call's recording by adding the utterance's start offset.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word."""

    text: str
    start_s: float
    end_s: float
    confidence: float  # 0..1


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """A partial (``final=False``) or final result for one utterance."""

    text: str
    words: tuple[Word, ...]
    confidence: float  # 0..1, for the whole utterance
    final: bool
    alternatives: tuple[str, ...] = ()  # a final's runner-up texts (n-best), best first
