"""Recordings left by a crash: files on disk that were never registered.

A call up when its server died never reached hang-up, so its recording (still
playable: ``media_core.recording`` keeps the file valid as it grows) was never
registered: not transcribed, not searchable, and never deleted by retention.
``adopt_orphans`` registers such files once they are quiet: not modified for
``quiet_s`` (a live recording is written every half second, on whichever node
shares the folder). A file is matched to its call by name (the media core names
it after the Call-ID) and registered only if that call has a conversation and
no recording yet; its start is the file's last change less its duration.

The server runs this once, ``quiet_s`` after it starts, over the day folders of
the last ``days`` days.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from conversations import Recording, Store
from recordings.audio_file import FORMATS, probe
from recordings.registry import register_file

__all__ = ["adopt_orphans", "quiet_files"]

log = logging.getLogger(__name__)

_DAY_S = 86400.0


def quiet_files(
    listing: list[tuple[Path, float]], now: float, quiet_s: float
) -> list[tuple[Path, float]]:
    """The recordings among ``(path, mtime)`` that nobody has written for ``quiet_s``."""
    return [
        (path, mtime)
        for path, mtime in listing
        if path.suffix.lower() in FORMATS and now - mtime >= quiet_s
    ]


def _listing(root: Path, days: int, now: float) -> list[tuple[Path, float]]:
    found: list[tuple[Path, float]] = []
    for back in range(days + 1):
        folder = root / time.strftime("%Y-%m-%d", time.gmtime(now - back * _DAY_S))
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_file():
                    found.append((Path(entry.path), entry.stat().st_mtime))
            except FileNotFoundError:  # deleted meanwhile
                continue
    return found


async def adopt_orphans(
    store: Store,
    root: str | os.PathLike[str],
    *,
    node: str | None,
    days: int = 2,
    quiet_s: float = 600.0,
    transcribe: bool = True,
    max_attempts: int = 3,
    clock: Callable[[], float] = time.time,
) -> list[Recording]:
    """Register the quiet, unregistered recordings of the last ``days`` days; see the docstring.

    Raises:
        conversations.StoreError: the store failed (what was registered stays).
    """
    root = Path(root)
    now = clock()
    listing = await asyncio.to_thread(_listing, root, days, now)
    adopted: list[Recording] = []
    for path, mtime in quiet_files(listing, now, quiet_s):
        call_id = path.stem
        conversation = await store.conversation_for_call(call_id)
        if conversation is None or await store.recordings_of(conversation.id):
            continue  # not a call we know by this name, or registered already
        try:
            duration_s = (await asyncio.to_thread(probe, path)).duration_s
            recording = await register_file(
                store, conversation.id, call_id, path, root=root,
                started_at=mtime - duration_s, node=node, transcribe=transcribe,
                max_attempts=max_attempts,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            log.warning("[%s] recording %s left by a crash not adopted: %s", call_id, path, exc)
            continue
        log.info("[%s] recording %s left by a crash registered", call_id, recording.path)
        adopted.append(recording)
    return adopted
