"""Which recording playbacks to write to the audit log: one entry per listener and window.

An ``<audio>`` element fetches a recording in many Range requests (one at the
start, one per seek, more while it buffers). Auditing each would bury the log,
so ``PlaybackAudit`` says "audit this one" for the first request of an
(actor, recording) pair and then not again until ``window_s`` has passed since
that entry; a long listening session thus leaves one entry per window. The
mark is taken before the entry is written, so two requests racing in together
still make one entry; ``forget`` takes it back if writing the entry failed.

Each bridge process keeps its own marks (in memory); several nodes each write
their own first entry, which is more, never less, than asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PLAYBACK_WINDOW_S", "PlaybackAudit"]

PLAYBACK_WINDOW_S = 300.0
_PRUNE_AT = 10_000  # marks kept before the stale ones are swept out


class PlaybackAudit:
    """Coalesces playback audit entries per (actor, recording) within ``window_s``."""

    def __init__(
        self, window_s: float = PLAYBACK_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._marks: dict[tuple[str, int], float] = {}

    def should_audit(self, actor: str, recording_id: int) -> bool:
        """True (and marked) if this playback needs an audit entry now."""
        now = self.clock()
        key = (actor, recording_id)
        marked = self._marks.get(key)
        if marked is not None and now - marked < self.window_s:
            return False
        if len(self._marks) >= _PRUNE_AT:
            self._marks = {k: t for k, t in self._marks.items() if now - t < self.window_s}
        self._marks[key] = now
        return True

    def forget(self, actor: str, recording_id: int) -> None:
        """Undo the mark of a playback whose audit entry could not be written."""
        self._marks.pop((actor, recording_id), None)
