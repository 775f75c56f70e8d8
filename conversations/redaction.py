"""PII redaction: card numbers, phone numbers and ID numbers masked in text and word lists.

Sans-IO and stdlib only: ``RedactionPolicy.text`` masks typed text (a chat
message, an IVR utterance), ``RedactionPolicy.words`` masks a recognizer's word
list, keeping one entry per word so word times stay aligned. The store applies
the policy on every write; the search index only ever sees the result.

How numbers are found: the text is cut into tokens, and a *run* is a sequence
of number tokens separated only by spaces, dashes, dots or parentheses. A
number token is a group of digits (``4111``, ``+44``), a spoken digit word
(``zero``/``oh``/``o``, ``one`` .. ``nine``), or ``double``/``triple`` before
one digit (``double five`` is ``55``). A run is then classified by its digits:

- card: 13 to 19 digits passing the Luhn check (ISO/IEC 7812-1, annex B); a
  longer run is searched for such a card on token boundaries;
- phone: 10 or 11 digits, or ``+`` and at least 7 digits (E.164, ITU-T E.164 §6);
- ID: any other run of at least 7 digits, and any match of ``id_patterns``.

A kind turned off is left readable: ``cards=False`` keeps card numbers as
they are even when ``ids`` is on. Masks are ``[card]``, ``[phone]``, ``[id]``.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["DEFAULT_ID_PATTERNS", "MASKS", "RedactionPolicy", "luhn_valid"]

DEFAULT_ID_PATTERNS: tuple[str, ...] = (r"\b\d{3}-\d{2}-\d{4}\b",)  # US SSN shape
MASKS = {"card": "[card]", "phone": "[phone]", "id": "[id]"}
_PRIORITY = {"card": 3, "phone": 2, "id": 1}  # overlapping spans keep the strongest label

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEATS = {"double": 2, "triple": 3}
# A digit group (a leading "+" kept for E.164) or a word of letters; anything else
# is a gap between tokens.
_TOKEN = re.compile(r"\+?\d+|[^\W\d_]+")
# What may stand between two number tokens of one run: "4111 1111", "555-1234",
# "(555) 123.4567", "four one one".
_GAP = re.compile(r"[\s\-.()]{0,4}")
_CARD_DIGITS = range(13, 20)
_PHONE_DIGITS = range(10, 12)
_E164_MIN_DIGITS = 7
_ID_MIN_DIGITS = 7


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1 annex B, over ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:  # every second digit from the right is doubled
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class _Number:
    """One number token: where it is in the text and the digits it stands for."""

    start: int
    end: int
    digits: str
    plus: bool = False


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class RedactionPolicy:
    """Which PII to mask; see the module docstring for what each kind matches.

    Attributes:
        cards: mask payment card numbers.
        phones: mask phone numbers.
        ids: mask ``id_patterns`` matches and other runs of 7 or more digits.
        id_patterns: regular expressions (Python syntax) of ID numbers, matched
            in the text as typed (and in the words joined by spaces).
        enabled: False turns redaction off altogether.
    """

    cards: bool = True
    phones: bool = True
    ids: bool = True
    id_patterns: tuple[str, ...] = DEFAULT_ID_PATTERNS
    enabled: bool = True
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Compile ``id_patterns``.

        Raises:
            ValueError: a pattern is not a valid regular expression.
        """
        if isinstance(self.id_patterns, str):
            raise ValueError("id_patterns must be a sequence of patterns, not one string")
        patterns = tuple(self.id_patterns)
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except (re.error, TypeError) as exc:
                raise ValueError(f"bad id pattern {pattern!r}: {exc}") from None
        object.__setattr__(self, "id_patterns", patterns)
        object.__setattr__(self, "_compiled", tuple(compiled))

    @property
    def active(self) -> bool:
        """Whether this policy can mask anything at all."""
        return self.enabled and (self.cards or self.phones or self.ids)

    def text(self, text: str) -> str:
        """``text`` with every PII span replaced by its mask (``[card]``...)."""
        spans = self._spans(text)
        if not spans:
            return text
        parts: list[str] = []
        position = 0
        for span in spans:
            parts.append(text[position : span.start])
            parts.append(MASKS[span.kind])
            position = span.end
        parts.append(text[position:])
        return "".join(parts)

    def words(self, words: Sequence[str]) -> list[str]:
        """The words with PII masked, one entry per input word.

        A masked span's first word becomes its mask (keeping any text of that
        word before the span) and its other words become ``""``, except for text
        after the span in its last word, which stays.
        """
        result = list(words)
        if not self.active or not result:
            return result
        starts: list[int] = []
        position = 0
        for word in result:
            starts.append(position)
            position += len(word) + 1
        joined = " ".join(result)
        for span in self._spans(joined):
            # The words overlapping the span: from the one it starts in (spans
            # never start on the joining space) to the last one starting before its end.
            first = bisect.bisect_right(starts, span.start) - 1
            last = bisect.bisect_left(starts, span.end) - 1
            covered = range(first, last + 1)
            prefix = words[first][: max(0, span.start - starts[first])]
            suffix = words[last][max(0, span.end - starts[last]) :]
            for index in covered:
                result[index] = ""
            if first == last:
                result[first] = prefix + MASKS[span.kind] + suffix
            else:
                result[first] = prefix + MASKS[span.kind]
                result[last] = suffix
        return result

    # ------------------------------------------------------------ finding spans

    def _spans(self, text: str) -> list[_Span]:
        if not self.active or not text:
            return []
        spans: list[_Span] = []
        for run in _runs(_numbers(text), text):
            spans.extend(
                _with_area_code_parenthesis(span, text)
                for span in _classify(run)
                if self._wanted(span.kind)
            )
        if self.ids:
            for pattern in self._compiled:
                spans.extend(
                    _Span(match.start(), match.end(), "id")
                    for match in pattern.finditer(text)
                    if match.end() > match.start()
                )
        return _merged(spans)

    def _wanted(self, kind: str) -> bool:
        return {"card": self.cards, "phone": self.phones, "id": self.ids}[kind]


def _ascii_digits(group: str) -> str:
    """Any Unicode decimal digits as ASCII ("٤١" -> "41"), so no script slips through."""
    return "".join(str(unicodedata.decimal(char)) for char in group)


def _numbers(text: str) -> list[_Number | None]:
    """The text's tokens as numbers, None for a word that breaks a run."""
    tokens = list(_TOKEN.finditer(text))
    numbers: list[_Number | None] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        value = token.group()
        if value[0] == "+" or value[0].isdigit():
            plus = value[0] == "+"
            numbers.append(
                _Number(token.start(), token.end(), _ascii_digits(value.lstrip("+")), plus)
            )
        elif value.lower() in _DIGIT_WORDS:
            numbers.append(_Number(token.start(), token.end(), _DIGIT_WORDS[value.lower()]))
        elif value.lower() in _REPEATS and index + 1 < len(tokens):
            after = tokens[index + 1]
            digit = _single_digit(after.group())
            if digit is not None and _GAP.fullmatch(text, token.end(), after.start()):
                numbers.append(_Number(token.start(), after.end(), digit * _REPEATS[value.lower()]))
                index += 2
                continue
            numbers.append(None)
        else:
            numbers.append(None)
        index += 1
    return numbers


def _single_digit(value: str) -> str | None:
    if value.lower() in _DIGIT_WORDS:
        return _DIGIT_WORDS[value.lower()]
    if len(value) == 1 and value.isdigit():
        return _ascii_digits(value)
    return None


def _runs(numbers: Iterable[_Number | None], text: str) -> list[list[_Number]]:
    """Maximal runs of number tokens with only gap characters between them."""
    runs: list[list[_Number]] = []
    current: list[_Number] = []
    for number in numbers:
        if number is None:
            if current:
                runs.append(current)
            current = []
            continue
        joined = (
            current
            and not number.plus
            and _GAP.fullmatch(text, current[-1].end, number.start) is not None
        )
        if current and not joined:
            runs.append(current)
            current = []
        current.append(number)
    if current:
        runs.append(current)
    return runs


def _kind(digits: str, plus: bool) -> str | None:
    count = len(digits)
    if plus and count >= _E164_MIN_DIGITS:
        return "phone"
    if count in _CARD_DIGITS and luhn_valid(digits):
        return "card"
    if count in _PHONE_DIGITS:
        return "phone"
    if count >= _ID_MIN_DIGITS:
        return "id"
    return None


def _classify(run: list[_Number]) -> list[_Span]:
    """The PII spans of one run: the whole run, or cards inside it and the rest."""
    digits = "".join(number.digits for number in run)
    kind = _kind(digits, run[0].plus)
    if kind in ("card", "phone") or len(digits) < _CARD_DIGITS.start:
        return [] if kind is None else [_Span(run[0].start, run[-1].end, kind)]
    # Not a card as a whole (a CVV or a stray digit next to one?): look for a card
    # on token boundaries, longest first, and classify what lies between alone.
    spans: list[_Span] = []
    rest_start = 0
    index = 0
    while index < len(run):
        card_end = _card_at(run, index)
        if card_end is None:
            index += 1
            continue
        spans.extend(_classify_plain(run[rest_start:index]))
        spans.append(_Span(run[index].start, run[card_end - 1].end, "card"))
        index = rest_start = card_end
    if not spans:
        return [] if kind is None else [_Span(run[0].start, run[-1].end, kind)]
    spans.extend(_classify_plain(run[rest_start:]))
    return spans


def _card_at(run: list[_Number], start: int) -> int | None:
    """The end of the longest Luhn-valid 13-19 digit card starting at token ``start``."""
    best = None
    digits = ""
    for end in range(start, len(run)):
        digits += run[end].digits
        if len(digits) > _CARD_DIGITS[-1]:
            break
        if len(digits) in _CARD_DIGITS and luhn_valid(digits):
            best = end + 1
    return best


def _classify_plain(run: list[_Number]) -> list[_Span]:
    if not run:
        return []
    kind = _kind("".join(number.digits for number in run), run[0].plus)
    return [] if kind is None else [_Span(run[0].start, run[-1].end, kind)]


def _with_area_code_parenthesis(span: _Span, text: str) -> _Span:
    """``(555) 123-4567``: the opening parenthesis belongs to the number too."""
    if span.start > 0 and text[span.start - 1] == "(" and ")" in text[span.start : span.end]:
        return _Span(span.start - 1, span.end, span.kind)
    return span


def _merged(spans: list[_Span]) -> list[_Span]:
    """Spans sorted, overlapping ones joined under the strongest label."""
    merged: list[_Span] = []
    for span in sorted(spans, key=lambda span: (span.start, -span.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            kind = max(last.kind, span.kind, key=_PRIORITY.__getitem__)
            merged[-1] = _Span(last.start, max(last.end, span.end), kind)
        else:
            merged.append(span)
    return merged
