"""A sorted index of ids by key, the ACD's one data structure for "who is next".

Keys are tuples of numbers whose last element is the unique int id, so two
keys never compare equal. The list stays sorted with ``bisect``: insertion
and removal are a binary search plus a memmove, which for the few thousand
entries of a contact centre costs less than a heap with lazy deletion and
also answers "how many are ahead of this one" (a queue position) in O(log n).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

Key = tuple[float, ...]


class Ranked:
    """Ids ordered by their keys; the first id is the best."""

    __slots__ = ("_by_id", "_keys")

    def __init__(self) -> None:
        self._keys: list[Key] = []
        self._by_id: dict[int, Key] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, ident: int) -> bool:
        return ident in self._by_id

    def add(self, key: Key) -> None:
        """Insert ``key`` (its id, ``key[-1]``, must not be in the index)."""
        ident = int(key[-1])
        if ident in self._by_id:
            raise ValueError(f"id {ident} is already ranked")
        self._by_id[ident] = key
        insort(self._keys, key)

    def discard(self, ident: int) -> bool:
        """Remove ``ident``; False when it was not there."""
        key = self._by_id.pop(ident, None)
        if key is None:
            return False
        del self._keys[bisect_left(self._keys, key)]
        return True

    def key_of(self, ident: int) -> Key | None:
        """The key ``ident`` is ranked by, None when absent."""
        return self._by_id.get(ident)

    def rank(self, key: Key) -> int:
        """How many entries are ahead of ``key`` (present or not)."""
        return bisect_left(self._keys, key)

    def ids(self) -> Iterator[int]:
        """Ids best first. Do not add or remove while iterating."""
        for key in self._keys:
            yield int(key[-1])

    def ids_after(self, pivot: Key) -> Iterator[int]:
        """Ids from the first key after ``pivot`` to the end, then from the start (a rotation)."""
        keys = self._keys
        start = bisect_right(keys, pivot)
        for i in range(start, len(keys)):
            yield int(keys[i][-1])
        for i in range(start):
            yield int(keys[i][-1])

    def first_key(self) -> Key | None:
        """The best key, None when empty."""
        return self._keys[0] if self._keys else None

    def keys(self) -> list[Key]:
        """A copy of the keys, best first (for invariants and reports)."""
        return list(self._keys)
