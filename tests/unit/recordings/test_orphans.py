"""Recordings a crash cut off: registered once quiet, matched to their call by name."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from calls import new_call, place, speech, write_call

from conversations import Store
from recordings.orphans import adopt_orphans, quiet_files
from recordings.registry import register_file


def test_only_recordings_nobody_writes_any_more_are_quiet(tmp_path: Path):
    listing = [
        (tmp_path / "a.wav", 1000.0), (tmp_path / "b.ogg", 1400.0),
        (tmp_path / "c.wav", 1900.0), (tmp_path / "notes.txt", 0.0),
    ]  # fmt: skip
    assert [p.name for p, _ in quiet_files(listing, 2000.0, 600.0)] == ["a.wav", "b.ogg"]


async def test_a_crashed_calls_recording_is_registered_and_others_are_left(
    store: Store, tmp_path: Path, clock
):
    now = clock.now
    day = tmp_path / time.strftime("%Y-%m-%d", time.gmtime(now))
    caller = place(4.0, (1.0, speech("en_chest")))

    def recording(call_id: str, written_s_ago: float) -> Path:
        path = write_call(day / f"{call_id}.wav", caller, np.zeros_like(caller))
        os.utime(path, (now - written_s_ago, now - written_s_ago))
        return path

    crashed = recording("crashed@host", 3600)  # its server died an hour ago
    await new_call(store, "crashed@host")
    recording("live@host", 1)  # still being written, maybe by another node
    await new_call(store, "live@host")
    done = recording("done@host", 3600)  # registered at its hang-up
    conversation_id = await new_call(store, "done@host")
    await register_file(store, conversation_id, "done@host", done, root=tmp_path,
                        started_at=now - 3604, node="node-b")  # fmt: skip
    recording("stranger@host", 3600)  # no conversation by that name

    adopted = await adopt_orphans(store, tmp_path, node="node-a", clock=clock)
    assert [(r.call_id, r.node) for r in adopted] == [("crashed@host", "node-a")]
    (only,) = adopted
    assert only.path == f"{day.name}/crashed@host.wav" and only.duration_s == 4.0
    assert (only.started_at, only.ended_at) == (
        crashed.stat().st_mtime - 4.0,
        crashed.stat().st_mtime,
    )
    job = await store.transcription_job(only.id)
    assert job is not None and job.status == "pending"
    assert await adopt_orphans(store, tmp_path, node="node-a", clock=clock) == []  # once
