"""A recognizer's segments checked, redacted and made ready to store (sans-IO).

``prepare_segments`` turns ``SegmentInput``s into rows: the raw words, the
redacted words (a masked span becomes one word, ``[card]``, from the span's
first word's start to its last word's end, so a player can still seek to it),
both as JSON, the redacted text, and the search document of the whole
transcript.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from conversations.errors import InvalidValue
from conversations.model import SPEAKERS
from conversations.model_transcripts import TRANSCRIPT_CHANNELS, SegmentInput, WordInput
from conversations.operations_recordings import PreparedSegment
from conversations.operations_search import document_text
from conversations.redaction import RedactionPolicy
from conversations.validation import check_choice, check_text

__all__ = ["MAX_SEGMENTS", "MAX_WORDS", "check_confidence", "check_ms", "prepare_segments"]

MAX_SEGMENTS = 100_000
MAX_WORDS = 1_000_000  # in one transcript: some 100 hours of speech
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_ms(name: str, value: object) -> int:
    """A time in a recording: an int >= 0 (milliseconds)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValue(f"{name} must be an integer >= 0 (milliseconds), not {value!r}")
    return value


def check_confidence(name: str, value: object) -> float | None:
    """None, or a number from 0 to 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValue(f"{name} must be a number, not {value!r}")
    if not 0.0 <= value <= 1.0:
        raise InvalidValue(f"{name} must be between 0 and 1, not {value}")
    return float(value)


def _word(where: str, word: object) -> tuple[str, int, int, float | None]:
    if not isinstance(word, WordInput):
        raise InvalidValue(f"{where} must be a WordInput, not {type(word).__name__}")
    text = " ".join(check_text(f"{where}.text", word.text, max_chars=1000).split())
    start = check_ms(f"{where}.start_ms", word.start_ms)
    end = check_ms(f"{where}.end_ms", word.end_ms)
    if end < start:
        raise InvalidValue(f"{where} ends ({end} ms) before it starts ({start} ms)")
    return text, start, end, check_confidence(f"{where}.confidence", word.confidence)


def _redacted(
    words: list[tuple[str, int, int, float | None]], policy: RedactionPolicy
) -> list[tuple[str, int, int, float | None]]:
    """The words masked; a span's emptied words are folded into its mask's time."""
    masked = policy.words([word[0] for word in words])
    result: list[tuple[str, int, int, float | None]] = []
    for (text, start, end, confidence), new in zip(words, masked, strict=True):
        if new == text:
            result.append((text, start, end, confidence))
        elif new:
            result.append((new, start, end, confidence))
        elif result:  # emptied: the mask before it now lasts until this word ends
            last = result[-1]
            result[-1] = (last[0], last[1], max(last[2], end), last[3])
    return result


def prepare_segments(
    segments: Sequence[SegmentInput], policy: RedactionPolicy
) -> tuple[list[PreparedSegment], str]:
    """Checked, redacted segments in time order, and the transcript's search document.

    Raises:
        InvalidValue: a segment or word that is not as ``SegmentInput`` says.
    """
    if isinstance(segments, str | bytes) or not isinstance(segments, Sequence):
        raise InvalidValue(f"segments must be a sequence, not {type(segments).__name__}")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidValue(f"more than {MAX_SEGMENTS} segments")
    prepared: list[PreparedSegment] = []
    word_count = 0
    for index, segment in enumerate(segments):
        where = f"segments[{index}]"
        if not isinstance(segment, SegmentInput):
            raise InvalidValue(f"{where} must be a SegmentInput, not {type(segment).__name__}")
        channel = check_choice(f"{where}.channel", segment.channel, TRANSCRIPT_CHANNELS)
        speaker = check_choice(f"{where}.speaker", segment.speaker, SPEAKERS)
        start = check_ms(f"{where}.start_ms", segment.start_ms)
        end = check_ms(f"{where}.end_ms", segment.end_ms)
        if end < start:
            raise InvalidValue(f"{where} ends ({end} ms) before it starts ({start} ms)")
        if isinstance(segment.words, str) or not isinstance(segment.words, Sequence):
            raise InvalidValue(f"{where}.words must be a sequence of WordInput")
        word_count += len(segment.words)
        if word_count > MAX_WORDS:
            raise InvalidValue(f"more than {MAX_WORDS} words")
        raw = [_word(f"{where}.words[{i}]", word) for i, word in enumerate(segment.words)]
        redacted = _redacted(raw, policy)
        prepared.append(
            PreparedSegment(
                channel=channel,
                speaker=speaker,
                start_ms=start,
                end_ms=end,
                text=" ".join(word[0] for word in redacted),
                words_json=_JSON.encode(redacted),
                raw_text=" ".join(word[0] for word in raw),
                raw_words_json=_JSON.encode(raw),
                confidence=check_confidence(f"{where}.confidence", segment.confidence),
            )
        )
    # The index's order, and the order the segments get their ids in.
    prepared.sort(key=lambda s: (s.start_ms, s.end_ms, s.channel))
    return prepared, document_text([segment.text for segment in prepared])
