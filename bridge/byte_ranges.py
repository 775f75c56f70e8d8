"""HTTP range requests (RFC 9110 §14, §13.1.5): which bytes of a file a GET answers with.

Sans-IO: ``plan_range`` takes the request's ``Range`` and ``If-Range`` values and
the file's size and validators, and says what to send: the whole file (200),
one slice (206 with ``Content-Range``) or nothing (416). The audio player of the
QA page asks ``bytes=0-`` first and then a range at each seek.

Choices the RFC leaves to the server, made here:
- A ``Range`` in another unit, or one that does not parse (including a
  range-spec whose last-pos is below its first-pos, §14.1.1), is ignored: 200
  with the whole file (§14.2: "MAY ignore or reject").
- Several ranges are ignored too (200, whole file) rather than answered as
  ``multipart/byteranges``: a server MAY ignore ``Range`` altogether (§14.2),
  and media players ask for one range at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["ByteRange", "RangeNotSatisfiable", "entity_tag", "plan_range"]

# RFC 9110 §14.1.2:
#   ranges-specifier = range-unit "=" range-set
#   range-set        = 1#range-spec
#   range-spec       = int-range / suffix-range / other-range
#   int-range        = first-pos "-" [ last-pos ]
#   suffix-range     = "-" suffix-length
_SPECIFIER = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(.*)", re.DOTALL)
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
# Past this many digits a position is beyond any file; int() of a huge string is slow
# (and refused beyond 4,300 digits), so such a position is read as "very large".
_MAX_DIGITS = 18
_VERY_LARGE = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``start + length - 1`` of a file of ``size`` bytes (206)."""

    start: int
    length: int
    size: int

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` value (RFC 9110 §14.4)."""
        return f"bytes {self.start}-{self.start + self.length - 1}/{self.size}"


@dataclass(frozen=True, slots=True)
class RangeNotSatisfiable:
    """No requested range overlaps the file (416, RFC 9110 §15.5.17)."""

    size: int

    @property
    def content_range(self) -> str:
        """The unsatisfied-range ``Content-Range`` a 416 carries (§14.4)."""
        return f"bytes */{self.size}"


def entity_tag(mtime_ns: int, size: int) -> str:
    """A strong ``ETag`` for a file's version: its modification time and size."""
    return f'"{mtime_ns:x}-{size:x}"'


def plan_range(
    range_header: str | None,
    size: int,
    *,
    if_range: str | None = None,
    etag: str | None = None,
    last_modified_s: int | None = None,
) -> ByteRange | RangeNotSatisfiable | None:
    """What to answer a GET of a ``size``-byte file with.

    Args:
        range_header: The request's ``Range`` value, or None.
        size: The file's length in bytes.
        if_range: The request's ``If-Range`` value, or None.
        etag: The file's strong entity tag (as ``entity_tag`` makes it).
        last_modified_s: The file's ``Last-Modified`` time, whole seconds.

    Returns:
        None to send the whole file (200), a ``ByteRange`` to send one slice
        (206), ``RangeNotSatisfiable`` to send 416.
    """
    if range_header is None:
        return None
    # RFC 9110 §13.1.5: a Range under an If-Range whose validator no longer matches is
    # ignored, so a client resuming a changed file gets all of it, not a mix.
    if if_range is not None and not _if_range_matches(if_range, etag, last_modified_s):
        return None
    spec = _SPECIFIER.fullmatch(range_header.strip())
    if spec is None or spec.group(1).lower() != "bytes":  # range units are case-insensitive
        return None
    parts = [part.strip(" \t") for part in spec.group(2).split(",")]
    specs = [part for part in parts if part]  # #rule: empty list elements are allowed
    if len(specs) != 1:
        return None
    return _one_range(specs[0], size)


def _one_range(spec: str, size: int) -> ByteRange | RangeNotSatisfiable | None:
    if (match := _INT_RANGE.fullmatch(spec)) is not None:
        first = _position(match.group(1))
        last = _position(match.group(2)) if match.group(2) else None
        if last is not None and last < first:
            return None  # an invalid range-spec (§14.1.1): ignored
        if first >= size:  # §14.1.1: satisfiable only if first-pos < length
            return RangeNotSatisfiable(size)
        end = size - 1 if last is None else min(last, size - 1)
        return ByteRange(first, end - first + 1, size)
    if (match := _SUFFIX_RANGE.fullmatch(spec)) is not None:
        suffix = _position(match.group(1))
        if suffix == 0 or size == 0:  # §14.1.1: a suffix of zero bytes selects nothing
            return RangeNotSatisfiable(size)
        length = min(suffix, size)
        return ByteRange(size - length, length, size)
    return None


def _position(digits: str) -> int:
    return _VERY_LARGE if len(digits) > _MAX_DIGITS else int(digits)


def _if_range_matches(value: str, etag: str | None, last_modified_s: int | None) -> bool:
    value = value.strip()
    if value.startswith(('"', "W/")):
        # §13.1.5: a strong comparison; a weak tag never matches.
        return etag is not None and value == etag
    if last_modified_s is None:
        return False
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    # §13.1.5: the date must be an exact match of the Last-Modified the file has.
    return int(when.timestamp()) == last_modified_s
