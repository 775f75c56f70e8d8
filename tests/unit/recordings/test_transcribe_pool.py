"""Transcription worker processes: real spawned workers with pocketsphinx."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from calls import place, speech, write_call

from recordings.transcribe import TranscriberSettings
from recordings.transcribe_pool import TranscriptionError, TranscriptionPool, WorkerLost
from tests.child_processes import alive, assert_workers_die_with_a_killed_server


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("calls")
    short = place(5.0, (1.0, speech("en_refill")))
    long = place(120.0, *((t, speech("en_chest")) for t in range(1, 118, 3)))
    return {
        "short": write_call(folder / "short.wav", short, short * 0),
        "long": write_call(folder / "long.wav", long, long),
    }


async def test_a_worker_transcribes_survives_bad_files_and_is_replaced_when_lost(
    calls: dict[str, Path], hospital_phrases: tuple[str, ...], tmp_path: Path
):
    pool = TranscriptionPool(TranscriberSettings(caller_phrases=hospital_phrases), workers=1)
    await pool.start()
    try:
        (first,) = pool.pids
        result = await pool.transcribe(str(calls["short"]))
        assert [" ".join(w.text for w in s.words) for s in result.segments] == ["i need a refill"]
        assert result.audio_s == 5.0 and result.cpu_s > 0
        # A bad file fails its job only.
        with pytest.raises(TranscriptionError, match="FileNotFoundError"):
            await pool.transcribe(str(tmp_path / "missing.wav"))
        (tmp_path / "bad.wav").write_bytes(b"not audio")
        with pytest.raises(TranscriptionError, match="ValueError"):
            await pool.transcribe(str(tmp_path / "bad.wav"))
        assert pool.pids == [first]
        # A job past its time limit: the worker is killed, and another takes its place.
        with pytest.raises(TimeoutError):
            await pool.transcribe(str(calls["long"]), timeout_s=0.5)
        assert await _dies(first)
        # A worker that dies mid-job fails it; the next one transcribes again.
        job = asyncio.ensure_future(pool.transcribe(str(calls["long"])))
        for _ in range(300):  # the replacement loads, then takes the job
            if pool.busy_pids:
                break
            await asyncio.sleep(0.05)
        (second,) = pool.busy_pids
        os.kill(second, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="exited"):
            await job
        result = await asyncio.wait_for(pool.transcribe(str(calls["short"])), 60)
        assert result.segments
        (third,) = pool.pids
        assert len({first, second, third}) == 3
    finally:
        await pool.close()
    assert not alive(third)


async def _dies(pid: int, timeout_s: float = 5.0) -> bool:
    for _ in range(int(timeout_s / 0.05)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_worker_that_cannot_load_its_recognizer_fails_the_start():
    pool = TranscriptionPool(TranscriberSettings(backend="vosk", model_path="/nonexistent"))
    with pytest.raises(TranscriptionError, match="could not load the recognizer.*nonexistent"):
        await pool.start()
    assert pool.pids == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_server(tmp_path: Path):
    main_body = """
        from recordings.transcribe import TranscriberSettings
        from recordings.transcribe_pool import TranscriptionPool
        pool = TranscriptionPool(TranscriberSettings(), workers=2)
        await pool.start()
        print(*pool.pids, flush=True)
        await asyncio.sleep(60)
    """
    assert_workers_die_with_a_killed_server(main_body, tmp_path)
