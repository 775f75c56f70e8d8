"""Registering a closed recording: its facts from the file, its path under the root, its job."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from calls import new_call, place, speech, write_call

from conversations import Store
from media_core.tone import tone_pcm
from media_core.transport_rtp import MediaEngine
from recordings.registry import register_file, relative_path

START = 1_800_000_000.0


def test_paths_are_stored_relative_to_the_root(tmp_path: Path):
    root = tmp_path / "recordings"
    assert relative_path(root, root / "2027-01-15" / "abc@host.wav") == "2027-01-15/abc@host.wav"
    with pytest.raises(ValueError, match="not under the recordings root"):
        relative_path(root, tmp_path / "elsewhere.wav")


async def test_a_recording_is_registered_with_the_files_facts_and_queued(
    store: Store, tmp_path: Path
):
    root = tmp_path / "recordings"
    caller = place(6.5, (1.0, speech("en_chest")))
    file = write_call(root / "2027-01-15" / "call-1.wav", caller, np.zeros_like(caller))
    conversation_id = await new_call(store, "call-1")
    recording = await register_file(
        store, conversation_id, "call-1", file, root=root, started_at=START, node="node-a"
    )
    assert (recording.path, recording.fmt, recording.duration_s) == (
        "2027-01-15/call-1.wav",
        "wav",
        6.5,
    )
    assert recording.size_bytes == file.stat().st_size == 44 + 52000 * 4
    assert (recording.started_at, recording.ended_at) == (START, START + 6.5)
    assert (recording.node, recording.conversation_id) == ("node-a", conversation_id)
    job = await store.transcription_job(recording.id)
    assert job is not None and job.status == "pending"
    again = await register_file(
        store, conversation_id, "call-1", file, root=root, started_at=START + 1, node="node-b"
    )
    assert again == recording  # once per call


async def test_an_ogg_recording_without_transcription_queues_nothing(store: Store, tmp_path: Path):
    caller = place(3.0, (0.5, speech("en_yes")))
    file = write_call(tmp_path / "d" / "call-2.ogg", caller, caller)
    conversation_id = await new_call(store, "call-2")
    recording = await register_file(
        store, conversation_id, "call-2", file, root=tmp_path, started_at=START, node=None,
        transcribe=False,
    )  # fmt: skip
    assert recording.fmt == "ogg" and recording.duration_s == pytest.approx(3.0, abs=0.02)
    assert await store.transcription_job(recording.id) is None


async def test_a_missing_file_is_not_registered(store: Store, tmp_path: Path):
    conversation_id = await new_call(store, "call-3")
    with pytest.raises(FileNotFoundError):
        await register_file(
            store, conversation_id, "call-3", tmp_path / "gone.wav", root=tmp_path,
            started_at=START, node=None,
        )  # fmt: skip
    assert await store.recordings_of(conversation_id) == []


async def test_the_media_engine_says_when_a_closed_recording_is_complete(tmp_path: Path):
    engine = MediaEngine(40000, 40099)
    await engine.start()
    try:
        stream_id = engine.open_pcm_stream(None, tone_pcm(440, 1000))
        path = tmp_path / "day" / "call.wav"
        engine.record(stream_id, path, started_at=START)
        await asyncio.sleep(0.5)
        engine.close_stream(stream_id)
        await engine.recordings_written()
        # Closed: the header's sizes are final and match the file.
        with wave.open(str(path)) as reader:
            frames = reader.getnframes()
        assert frames > 0 and path.stat().st_size == 44 + frames * 4
        assert frames % 160 == 0  # whole ticks, the last one included
    finally:
        await engine.stop()
