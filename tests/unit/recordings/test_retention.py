"""Retention: the cutoff, safe paths, and the sweep against the real store (fake clock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from calls import new_call

from conversations import SegmentInput, Store, WordInput
from recordings.retention import RetentionSweep, file_of, retention_cutoff

DAY_S = 86400.0


def test_the_cutoff_is_now_minus_the_retention():
    assert retention_cutoff(1_000_000.0, 2) == 1_000_000.0 - 2 * DAY_S
    assert retention_cutoff(1_000_000.0, 0.5) == 1_000_000.0 - DAY_S / 2
    assert retention_cutoff(1_000_000.0, None) is None
    with pytest.raises(ValueError, match="positive"):
        retention_cutoff(1_000_000.0, 0)


def test_a_stored_path_never_leaves_the_root(tmp_path: Path):
    assert file_of(tmp_path, "2027-01-15/a.wav") == tmp_path / "2027-01-15" / "a.wav"
    for unsafe in ("../etc/passwd", "/etc/passwd", "2027-01-15/../../x.wav", ""):
        assert file_of(tmp_path, unsafe) is None


async def _recording(store: Store, root: Path, call_id: str, ended_at: float, day: str) -> int:
    conversation_id = await new_call(store, call_id)
    path = root / day / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    recording = await store.register_recording(
        conversation_id, call_id, f"{day}/{call_id}.wav", fmt="wav", duration_s=10.0,
        size_bytes=4, started_at=ended_at - 10, ended_at=ended_at,
    )  # fmt: skip
    return recording.id


async def test_the_sweep_deletes_old_audio_and_keeps_the_transcript(
    store: Store, tmp_path: Path, clock
):
    now = clock.now
    old = await _recording(store, tmp_path, "old", now - 91 * DAY_S, "2026-10-16")
    young = await _recording(store, tmp_path, "young", now - 89 * DAY_S, "2026-10-18")
    job = await store.claim_transcription("node-a", 60)
    words = (WordInput("refund", 1000, 1400, 0.9),)
    segment = SegmentInput("caller", "customer", 1000, 1400, words, 0.9)
    assert job is not None and job.recording_id == old
    assert await store.complete_transcription(job.id, job.token, [segment])
    sweep = RetentionSweep(store, tmp_path, 90, clock=clock)
    assert await sweep.sweep() == 1
    assert not (tmp_path / "2026-10-16").exists()  # the file, and its day's folder now empty
    assert (tmp_path / "2026-10-18" / "young.wav").exists()
    gone = await store.get_recording(old)
    assert gone is not None and gone.deleted_at == clock.now
    assert (await store.get_recording(young)).deleted_at is None
    assert [s.text for s in await store.transcript(gone.conversation_id)] == ["refund"]
    assert await sweep.sweep() == 0  # nothing left to do
    clock.advance(2 * DAY_S)
    assert await sweep.sweep() == 1 and sweep.deleted == 2


async def test_a_file_already_gone_is_only_marked(store: Store, tmp_path: Path, clock):
    recording_id = await _recording(store, tmp_path, "gone", clock.now - 100 * DAY_S, "2026-10-01")
    (tmp_path / "2026-10-01" / "gone.wav").unlink()  # another node sharing the folder, or a person
    assert await RetentionSweep(store, tmp_path, 90, clock=clock).sweep() == 1
    assert (await store.get_recording(recording_id)).deleted_at is not None


async def test_no_retention_keeps_everything(store: Store, tmp_path: Path, clock):
    await _recording(store, tmp_path, "ancient", clock.now - 3650 * DAY_S, "2017-01-01")
    sweep = RetentionSweep(store, tmp_path, None, clock=clock)
    assert await sweep.sweep() == 0
    sweep.start()  # no task at all
    await sweep.stop()
    assert (tmp_path / "2017-01-01" / "ancient.wav").exists()


async def test_the_periodic_sweep_runs_until_stopped(store: Store, tmp_path: Path, clock):
    sweep = RetentionSweep(store, tmp_path, 1, interval_s=0.02, clock=clock)
    sweep.start()
    try:
        await _recording(store, tmp_path, "a", clock.now - 2 * DAY_S, "2027-01-13")
        for _ in range(200):
            if sweep.deleted:
                break
            await asyncio.sleep(0.01)
    finally:
        await sweep.stop()
    assert sweep.deleted == 1 and not (tmp_path / "2027-01-13" / "a.wav").exists()
