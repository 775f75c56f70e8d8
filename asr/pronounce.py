"""Pronunciations (ARPAbet) for words the recognizer's dictionary lacks.

A JSGF grammar with an out-of-vocabulary word fails to compile, and an n-gram
LM silently loses the word, so every word of a context gets phones before the
context is used. In order:

1. A compound of two dictionary words ("toothache" = "tooth" + "ache"): the
   split whose parts are both known and whose first part is longest wins, and
   the phones are concatenated.
2. espeak-ng's phoneme mnemonics (``espeak-ng -q -x -v en-us WORD``) mapped to
   ARPAbet by ``ESPEAK_TO_ARPABET`` (stress and syllable marks dropped). A
   mnemonic missing from the table means no pronunciation rather than a guess.
3. Otherwise ``None``: the caller drops the word with a logged warning.

Only ``espeak_phones`` runs a program; ``pronounce`` takes it as an argument so
tests and other engines can pass their own.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable

__all__ = ["ESPEAK_TO_ARPABET", "espeak_mnemonics_to_arpabet", "espeak_phones", "pronounce"]

log = logging.getLogger(__name__)

Lookup = Callable[[str], str | None]  # word -> "PH ON ES" from the dictionary, or None

_MIN_PART = 3  # "co" + "vid" splits of unknown words are noise, not compounds

# espeak-ng en-us phoneme mnemonics -> ARPAbet (CMUdict's 39 phones).
ESPEAK_TO_ARPABET: dict[str, str] = {
    # vowels and diphthongs
    "a": "AE", "aa": "AA", "a#": "AH", "a2": "AH", "A:": "AA", "A@": "AA R", "A": "AA",
    "E": "EH", "E2": "EH", "e@": "EH R", "eI": "EY", "eI@": "EY ER",
    "I": "IH", "I2": "IH", "I#": "IH", "i": "IY", "i:": "IY", "i@": "IY ER", "i@3": "IH",
    "0": "AA", "0#": "AA", "O": "AO", "O:": "AO", "O@": "AO R", "o@": "AO R", "OI": "OY",
    "oU": "OW", "oU#": "OW", "U": "UH", "u:": "UW", "U@": "UH R", "V": "AH",
    "@": "AH", "@2": "AH", "@5": "AH", "@L": "AH L", "@r": "ER", "3": "ER", "3:": "ER",
    "aI": "AY", "aI@": "AY ER", "aI3": "AY ER", "aU": "AW", "aU@": "AW ER",
    # consonants
    "p": "P", "b": "B", "t": "T", "t2": "T", "t#": "T", "d": "D", "d#": "D", "k": "K",
    "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH",
    "Z": "ZH", "h": "HH", "m": "M", "n": "N", "n-": "N", "N": "NG", "l": "L", "l-": "L",
    "r": "R", "r-": "R", "w": "W", "j": "Y", "tS": "CH", "dZ": "JH", "x": "HH",
}  # fmt: skip
_LONGEST = max(len(k) for k in ESPEAK_TO_ARPABET)
_MARKS = frozenset("',%=_|")  # stress, syllable and pause marks: no sound of their own


def espeak_mnemonics_to_arpabet(mnemonics: str) -> str | None:
    """Map ``espeak-ng -x`` output for one word to ARPAbet, or ``None`` if unsure.

    The longest table entry matching at each position wins ("aI@" before "aI").
    """
    phones: list[str] = []
    text = mnemonics.strip()
    i = 0
    while i < len(text):
        if text[i] in _MARKS or text[i].isspace():
            i += 1
            continue
        for size in range(min(_LONGEST, len(text) - i), 0, -1):
            arpabet = ESPEAK_TO_ARPABET.get(text[i : i + size])
            if arpabet is not None:
                phones.append(arpabet)
                i += size
                break
        else:
            return None
    return " ".join(phones) or None


def espeak_phones(word: str) -> str | None:
    """ARPAbet for ``word`` from espeak-ng, or ``None`` (no espeak-ng, or unmapped)."""
    program = shutil.which("espeak-ng")
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, "-q", "-x", "-v", "en-us", word],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("espeak-ng failed for %r: %s", word, exc)
        return None
    return espeak_mnemonics_to_arpabet(done.stdout)


def pronounce(word: str, lookup: Lookup, fallback: Lookup = espeak_phones) -> str | None:
    """ARPAbet for a word the dictionary (``lookup``) lacks; see the module docstring."""
    for cut in range(len(word) - _MIN_PART, _MIN_PART - 1, -1):
        head, tail = lookup(word[:cut]), lookup(word[cut:])
        if head and tail:
            return f"{head} {tail}"
    return fallback(word)
