"""Argument checks: every public method checks its input before queuing a write.

A bad argument raises ``InvalidValue`` naming the argument, at the caller's
line, never a driver error from deep inside a batch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable
from typing import Any

from conversations.errors import InvalidValue

__all__ = [
    "check_amount",
    "check_choice",
    "check_count",
    "check_id",
    "check_json",
    "check_limit",
    "check_optional_text",
    "check_relative_path",
    "check_text",
    "check_time",
    "check_words",
]

MAX_TEXT = 65_536  # a message or utterance; a chat widget caps far below this
MAX_NAME = 200  # queue, agent, intent, kind, user and token names...
MAX_LIMIT = 1000  # rows in one page
# One encoder, built once: json.dumps builds a new one per call whenever an option
# differs from its defaults (a third of record_event's time when measured).
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def check_id(name: str, value: object) -> int:
    """A row id: a positive int (``True`` is not an id)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{name} must be an integer id, not {type(value).__name__}")
    if value < 1:
        raise InvalidValue(f"{name} must be a positive id, not {value}")
    return value


def check_text(name: str, value: object, *, max_chars: int = MAX_NAME, empty: bool = False) -> str:
    """A string of at most ``max_chars``; non-blank unless ``empty``."""
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise InvalidValue(f"{name} must not be empty")
    if len(value) > max_chars:
        raise InvalidValue(f"{name} is longer than {max_chars} characters")
    if "\x00" in value:
        raise InvalidValue(f"{name} contains a NUL character")  # PostgreSQL text cannot hold it
    return value


def check_optional_text(name: str, value: object, *, max_chars: int = MAX_NAME) -> str | None:
    """``None``, or a string as ``check_text`` wants it."""
    return None if value is None else check_text(name, value, max_chars=max_chars)


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """One of a fixed vocabulary (channels, statuses, speakers...)."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidValue(f"{name} must be one of {sorted(choices)}, not {value!r}")
    return value


def check_time(name: str, value: object) -> float:
    """Seconds since the epoch: a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name} must be seconds since the epoch, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidValue(f"{name} must be a finite time >= 0, not {value}")
    return float(value)


def check_limit(value: object) -> int:
    """A page size from 1 to ``MAX_LIMIT``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidValue(f"limit must be an integer from 1 to {MAX_LIMIT}, not {value!r}")
    return value


def check_json(name: str, value: object) -> str:
    """A JSON object (str keys, JSON values), serialized compactly."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{name} must be a dict, not {type(value).__name__}")
    try:
        text = _JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"{name} is not JSON: {exc}") from None
    if "\\u0000" in text:
        raise InvalidValue(f"{name} contains a NUL character")  # PostgreSQL jsonb rejects it
    return text


def check_words(name: str, values: object, allowed: Collection[str] | None = None) -> str:
    """A set of words (roles, scopes), stored space-separated and sorted."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidValue(f"{name} must be a set of strings, not {type(values).__name__}")
    words: set[str] = set()
    for word in values:
        text = check_text(name, word, max_chars=64)
        if any(char.isspace() for char in text):
            raise InvalidValue(f"{name}: {word!r} contains white space")
        if allowed is not None and text not in allowed:
            raise InvalidValue(f"{name}: {word!r} is not one of {sorted(allowed)}")
        words.add(text)
    return " ".join(sorted(words))


def parse_words(text: Any) -> frozenset[str]:
    """The inverse of ``check_words``."""
    return frozenset(str(text).split())


def check_amount(name: str, value: object) -> float:
    """A finite number >= 0 (seconds, a duration)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidValue(f"{name} must be a finite number >= 0, not {value}")
    return float(value)


def check_count(name: str, value: object, *, low: int = 0, high: int | None = None) -> int:
    """An int from ``low`` to ``high`` (no upper bound when None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{name} must be an integer, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise InvalidValue(f"{name} must be an integer {bound}, not {value}")
    return value


def check_relative_path(name: str, value: object) -> str:
    """A relative path below a root: no leading slash or drive, no ``..``, ``/`` separators."""
    text = check_text(name, value, max_chars=4096)
    parts = text.split("/")
    if (
        text.startswith("/")
        or "\\" in text
        or re.match(r"^[A-Za-z]:", text)
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(char) < 32 for char in text)
    ):
        raise InvalidValue(f"{name} must be a relative path like 2026-12-02/CALL.wav, not {text!r}")
    return text
