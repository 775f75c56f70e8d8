"""Retention: recordings older than ``recordings.retention_days`` lose their audio.

The decision is sans-IO: ``retention_cutoff`` says which end time is too old,
``file_of`` where a recording's file is (never outside the recordings root,
whatever the store holds). ``RetentionSweep`` is the thin periodic shell: every
``interval_s`` it asks the store for expired recordings (``expired_recordings``),
deletes each file on a worker thread (a file already gone is not an error:
another node sharing the directory, or an operator, may have removed it), then
``mark_recording_deleted``. The row and its transcript stay, so the call is
still found by search; only its audio is gone (the bridge answers 410). A day's
folder left empty is removed too.

File first, mark second: a crash in between leaves a row whose file is missing,
which the next sweep marks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from conversations import Store, StoreError

__all__ = ["RetentionSweep", "file_of", "retention_cutoff"]

log = logging.getLogger(__name__)

_DAY_S = 86400.0
_BATCH = 100


def retention_cutoff(now: float, retention_days: float | None) -> float | None:
    """Recordings that ended before this time are expired; None: keep everything.

    Raises:
        ValueError: a retention that is not positive.
    """
    if retention_days is None:
        return None
    if retention_days <= 0:
        raise ValueError(f"recordings.retention_days must be positive, not {retention_days}")
    return now - retention_days * _DAY_S


def file_of(root: Path, relative: str) -> Path | None:
    """The recording's file under ``root``; None for a path that would leave it."""
    if not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        return None
    return root / relative


def _delete(path: Path, root: Path) -> bool:
    """Remove the file and its day folder if now empty; False when it was already gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    folder = path.parent
    if folder != root and root in folder.parents:
        with contextlib.suppress(OSError):  # not empty, or another node removed it
            folder.rmdir()
    return True


class RetentionSweep:
    """Deletes expired recordings' audio every ``interval_s``; see the module docstring."""

    def __init__(
        self,
        store: Store,
        recordings_root: str | os.PathLike[str],
        retention_days: float | None,
        *,
        interval_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure; nothing runs until ``start`` (or call ``sweep`` once).

        Raises:
            ValueError: a retention that is not positive.
        """
        retention_cutoff(0.0, retention_days)  # validates
        self.store = store
        self.root = Path(recordings_root)
        self.retention_days = retention_days
        self.interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.deleted = 0  # recordings marked deleted by this sweep

    async def sweep(self) -> int:
        """Delete every expired recording now; how many were marked deleted.

        Raises:
            conversations.StoreError: the store failed (what was done stays done).
        """
        cutoff = retention_cutoff(self._clock(), self.retention_days)
        if cutoff is None:
            return 0
        marked = 0
        while True:
            expired = await self.store.expired_recordings(cutoff, _BATCH)
            for recording in expired:
                path = file_of(self.root, recording.path)
                if path is None:
                    log.warning(
                        "[%s] retention: recording %d has an unsafe path %r; only marked",
                        recording.call_id, recording.id, recording.path,
                    )  # fmt: skip
                else:
                    found = await asyncio.to_thread(_delete, path, self.root)
                    log.info(
                        "[%s] retention: %s %s (ended %s)",
                        recording.call_id, "deleted" if found else "already gone:",
                        recording.path, time.strftime("%Y-%m-%d", time.gmtime(recording.ended_at)),
                    )  # fmt: skip
                await self.store.mark_recording_deleted(recording.id)
                marked += 1
            if len(expired) < _BATCH:
                break
        self.deleted += marked
        return marked

    def start(self) -> None:
        """Sweep now and then every ``interval_s`` until ``stop`` (nothing with no retention)."""
        if self.retention_days is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        """Stop sweeping (a deletion in progress finishes its file)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                count = await self.sweep()
                if count:
                    log.info(
                        "retention: %d recording(s) past %s days deleted",
                        count,
                        self.retention_days,
                    )
            except StoreError as exc:
                log.error("retention: sweep failed: %s", exc)
            await asyncio.sleep(self.interval_s)
