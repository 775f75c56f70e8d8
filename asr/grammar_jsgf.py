"""A closed set of phrases as a JSGF grammar (sans-IO), for pocketsphinx.

Each phrase becomes one alternative of the public rule, its words normalized by
``language_model.words_of`` so that grammar, LM and dictionary agree on
spelling. Only words made of letters, digits and inner apostrophes survive
normalization, so no JSGF quoting is needed.
"""

from __future__ import annotations

from collections.abc import Iterable

from asr.language_model import words_of

__all__ = ["build_jsgf", "grammar_words"]


def _normalized(phrases: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for phrase in phrases:
        words = words_of(phrase)
        if words:
            seen.setdefault(" ".join(words))
    return list(seen)


def grammar_words(phrases: Iterable[str]) -> set[str]:
    """Every word the grammar of ``phrases`` uses."""
    return {word for phrase in _normalized(phrases) for word in phrase.split()}


def build_jsgf(phrases: Iterable[str], name: str = "hotline") -> str:
    """JSGF text accepting exactly one of ``phrases`` per utterance.

    Raises:
        ValueError: no phrase has a word.
    """
    alternatives = _normalized(phrases)
    if not alternatives:
        raise ValueError("a grammar needs at least one phrase with a word")
    body = " | ".join(alternatives)
    return f"#JSGF V1.0;\ngrammar {name};\npublic <utterance> = {body};\n"
