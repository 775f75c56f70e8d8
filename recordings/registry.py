"""A finished call's recording enters the store (and the transcription queue).

``register_file`` is called once the media core has closed the file (the
server waits for ``MediaEngine.recordings_written``): it reads the file's facts
(``audio_file.probe``: format, duration from the file itself, size) on a worker
thread and calls ``Store.register_recording`` with the path relative to the
recordings root, so every node sharing that root (a shared mount) finds the
file under its own mount point. With ``transcribe`` the store queues the
recording's transcription job in the same transaction. Registering a call
twice returns the first registration (the store keys recordings by call-id).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from conversations import Recording, Store
from recordings.audio_file import probe

__all__ = ["register_file", "relative_path"]


def relative_path(root: str | os.PathLike[str], file: str | os.PathLike[str]) -> str:
    """``file`` relative to the recordings ``root``, with forward slashes (``2026-12-02/ID.wav``).

    Raises:
        ValueError: the file is not under the root.
    """
    try:
        return Path(file).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        raise ValueError(
            f"{os.fspath(file)} is not under the recordings root {os.fspath(root)}"
        ) from None


async def register_file(
    store: Store,
    conversation_id: int,
    call_id: str,
    file: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str],
    started_at: float,
    node: str | None,
    transcribe: bool = True,
    max_attempts: int = 3,
) -> Recording:
    """Register a closed recording file of ``call_id``; see the module docstring.

    Args:
        store: the conversation store.
        conversation_id: the call's conversation.
        call_id: the SIP Call-ID.
        file: the recording's path on this node.
        root: the recordings root the stored path is relative to.
        started_at: wall-clock time of the recording's first sample; the end is
            that plus the file's duration.
        node: the node that recorded it.
        transcribe: queue a transcription job as well.
        max_attempts: how often that job may be tried.

    Raises:
        FileNotFoundError: the file is not there (it could not be written).
        ValueError: not under the root, or not a recording ``probe`` reads.
        conversations.StoreError: the store refused or failed.
    """
    relative = relative_path(root, file)
    info = await asyncio.to_thread(probe, file)
    return await store.register_recording(
        conversation_id,
        call_id,
        relative,
        fmt=info.fmt,
        duration_s=info.duration_s,
        size_bytes=info.size_bytes,
        started_at=started_at,
        ended_at=started_at + info.duration_s,
        node=node,
        transcribe=transcribe,
        max_attempts=max_attempts,
    )
