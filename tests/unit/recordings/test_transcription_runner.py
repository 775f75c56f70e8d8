"""The durable job loop against the real store (SQLite, fake clock) and a scripted transcriber.

The transcriber is our own seam (``TranscriptionPool.transcribe``): here a
coroutine the test holds or releases, so leases, take-overs, retries and stops
happen exactly when the test says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from calls import new_call

from conversations import SearchQuery, SegmentInput, Store, WordInput
from recordings.runner import RunnerSettings, TranscriptionRunner, retry_delay_s
from recordings.transcribe import Transcription
from recordings.transcribe_pool import TranscriptionError

FAST = RunnerSettings(node="node-a", workers=1, lease_s=0.3, poll_s=0.02, error_pause_s=0.02)


def _segments(text: str = "my chest hurts", start_ms: int = 2400) -> tuple[SegmentInput, ...]:
    words = tuple(
        WordInput(word, start_ms + 300 * i, start_ms + 300 * i + 250, 0.9)
        for i, word in enumerate(text.split())
    )
    return (SegmentInput("caller", "customer", start_ms, words[-1].end_ms, words, 0.9),)


class ScriptedTranscriber:
    """Stands in for the worker pool: each call waits for the test's go, then answers."""

    def __init__(self, answer: Callable[[str], Transcription] | None = None) -> None:
        self.answer = answer or (lambda path: Transcription(_segments(), 10.0, 0.5))
        self.calls: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self.cancelled = 0
        self.go = asyncio.Event()
        self.go.set()

    async def __call__(self, path: str, timeout_s: float | None) -> Transcription:
        self.calls.append(path)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.go.wait()
            return self.answer(path)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1


async def until(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll an async or plain predicate until it holds (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _register(store: Store, call_id: str, **options: object) -> int:
    conversation_id = await new_call(store, call_id)
    recording = await store.register_recording(
        conversation_id, call_id, f"2027-01-15/{call_id}.wav", fmt="wav", duration_s=10.0,
        size_bytes=160_044, started_at=1_800_000_000.0, ended_at=1_800_000_010.0,
        node="node-a", **options,
    )  # fmt: skip
    return recording.id


async def _status_is(store: Store, recording_id: int, status: str) -> bool:
    return await _status(store, recording_id) == status


async def _status(store: Store, recording_id: int) -> str:
    job = await store.transcription_job(recording_id)
    assert job is not None
    return job.status


def test_retry_delay_doubles_from_the_base_up_to_the_cap():
    assert [retry_delay_s(n, 30, 3600) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay_s(20, 30, 3600) == 3600
    assert retry_delay_s(0, 30, 3600) == 30


def test_settings_are_checked():
    with pytest.raises(ValueError, match="workers"):
        TranscriptionRunner(None, ScriptedTranscriber(), "/r", RunnerSettings("n", workers=0))  # type: ignore[arg-type]


async def test_a_queued_recording_is_transcribed_once_and_found_by_search(
    store: Store, tmp_path: Path
):
    recording_id = await _register(store, "call-1")
    transcriber = ScriptedTranscriber()
    runner = TranscriptionRunner(store, transcriber, tmp_path, FAST)
    await runner.start()
    try:
        runner.wake()
        await until(lambda: _status_is(store, recording_id, "done"))
    finally:
        await runner.stop()
    assert transcriber.calls == [str(tmp_path / "2027-01-15" / "call-1.wav")]
    assert runner.completed == 1
    recording = await store.get_recording(recording_id)
    assert recording is not None
    (segment,) = await store.transcript(recording.conversation_id)
    assert (segment.channel, segment.speaker, segment.text) == (
        "caller",
        "customer",
        "my chest hurts",
    )
    page = await store.search(SearchQuery("chest"))
    assert [(h.recording_id, h.offset_ms) for h in page.hits] == [(recording_id, 2700)]


async def test_a_failing_job_is_retried_with_backoff_then_failed(
    store: Store, tmp_path: Path, clock
):
    recording_id = await _register(store, "call-1", max_attempts=3)

    def broken(path: str) -> Transcription:
        raise TranscriptionError("ValueError: cannot decode")

    transcriber = ScriptedTranscriber(broken)
    runner = TranscriptionRunner(store, transcriber, tmp_path, FAST)
    await runner.start()
    try:
        for attempt, delay_s in ((1, 30.0), (2, 60.0)):
            await until(lambda n=attempt: len(transcriber.calls) == n and runner.failed == n)
            job = await store.transcription_job(recording_id)
            assert (job.status, job.attempts, job.error) == (
                "pending", attempt, "TranscriptionError: ValueError: cannot decode"
            )  # fmt: skip
            assert job.not_before == pytest.approx(clock.now + delay_s)
            await asyncio.sleep(0.1)
            assert len(transcriber.calls) == attempt  # not before its time
            clock.advance(delay_s)
        await until(lambda: _status_is(store, recording_id, "failed"))
    finally:
        await runner.stop()
    assert len(transcriber.calls) == 3 and runner.completed == 0


async def test_a_job_whose_lease_another_node_took_is_abandoned_without_writing(
    store: Store, tmp_path: Path, clock
):
    recording_id = await _register(store, "call-1")
    transcriber = ScriptedTranscriber()
    transcriber.go.clear()  # node-a's transcription hangs
    runner = TranscriptionRunner(store, transcriber, tmp_path, FAST)
    await runner.start()
    try:
        await until(lambda: transcriber.running == 1)
        clock.advance(10)  # node-a's lease (0.3 s) ran out meanwhile: node-b takes the job
        taken = await store.claim_transcription("node-b", 60)
        assert taken is not None and taken.recording_id == recording_id
        await until(lambda: transcriber.cancelled == 1)  # node-a's next renewal finds out
        assert runner.abandoned == 1
        assert await store.complete_transcription(
            taken.id, taken.token, _segments("i need a refill")
        )
    finally:
        await runner.stop()
    recording = await store.get_recording(recording_id)
    segments = await store.transcript(recording.conversation_id)
    assert [s.text for s in segments] == ["i need a refill"]  # node-b's only, once


async def test_a_result_that_comes_back_after_a_takeover_is_dropped(
    store: Store, tmp_path: Path, clock
):
    recording_id = await _register(store, "call-1")
    transcriber = ScriptedTranscriber()
    transcriber.go.clear()
    settings = RunnerSettings(node="node-a", lease_s=60, poll_s=0.02)  # no renewal in time
    runner = TranscriptionRunner(store, transcriber, tmp_path, settings)
    await runner.start()
    try:
        await until(lambda: transcriber.running == 1)
        clock.advance(61)
        taken = await store.claim_transcription("node-b", 60)
        assert taken is not None
        transcriber.go.set()  # node-a finishes late
        await until(lambda: runner.abandoned == 1)
        assert await _status(store, recording_id) == "running"  # still node-b's
        assert await store.complete_transcription(
            taken.id, taken.token, _segments("i need a refill")
        )
    finally:
        await runner.stop()
    recording = await store.get_recording(recording_id)
    assert [s.text for s in await store.transcript(recording.conversation_id)] == [
        "i need a refill"
    ]


async def test_start_releases_the_jobs_this_node_held_when_it_died(store: Store, tmp_path: Path):
    recording_id = await _register(store, "call-1")
    orphan = await store.claim_transcription("node-a", 3600)  # then node-a was killed
    assert orphan is not None
    transcriber = ScriptedTranscriber()
    runner = TranscriptionRunner(store, transcriber, tmp_path, FAST)
    await runner.start()  # no need to wait an hour for the lease
    try:
        await until(lambda: _status_is(store, recording_id, "done"))
    finally:
        await runner.stop()
    job = await store.transcription_job(recording_id)
    assert job.attempts == 2 and len(transcriber.calls) == 1


async def test_stop_abandons_work_in_progress_and_gives_it_back(store: Store, tmp_path: Path):
    recording_id = await _register(store, "call-1")
    transcriber = ScriptedTranscriber()
    transcriber.go.clear()
    runner = TranscriptionRunner(store, transcriber, tmp_path, FAST)
    await runner.start()
    await until(lambda: transcriber.running == 1)
    await runner.stop()
    assert transcriber.cancelled == 1
    job = await store.transcription_job(recording_id)
    assert (job.status, job.attempts) == ("pending", 1)
    recording = await store.get_recording(recording_id)
    assert await store.transcript(recording.conversation_id) == []


async def test_no_more_jobs_run_at_once_than_workers(store: Store, tmp_path: Path):
    ids = [await _register(store, f"call-{n}") for n in range(5)]
    transcriber = ScriptedTranscriber()
    transcriber.go.clear()
    settings = RunnerSettings(node="node-a", workers=2, lease_s=5, poll_s=0.02)
    runner = TranscriptionRunner(store, transcriber, tmp_path, settings)
    await runner.start()
    try:
        await until(lambda: transcriber.running == 2)
        await asyncio.sleep(0.1)
        assert transcriber.running == 2 and len(await store.transcription_jobs("running")) == 2
        transcriber.go.set()
        for recording_id in ids:
            await until(lambda r=recording_id: _status_is(store, r, "done"))
    finally:
        await runner.stop()
    assert transcriber.most_at_once == 2 and runner.completed == 5


async def test_a_deleted_recording_fails_its_job(store: Store, tmp_path: Path):
    recording_id = await _register(store, "call-1")
    job = await store.claim_transcription("node-a", 3600)
    await store.mark_recording_deleted(recording_id)
    transcriber = ScriptedTranscriber()
    runner = TranscriptionRunner(store, transcriber, tmp_path, FAST)
    await runner.start()  # releases the claimed job; its recording is gone
    try:
        await asyncio.sleep(0.2)
    finally:
        await runner.stop()
    assert transcriber.calls == [] and job is not None
    assert await _status(store, recording_id) in ("pending", "failed")


async def test_two_nodes_share_the_queue_and_each_recording_is_done_once(
    store: Store, tmp_path: Path
):
    ids = [await _register(store, f"call-{n}") for n in range(8)]
    transcribers = [ScriptedTranscriber(), ScriptedTranscriber()]
    runners = [
        TranscriptionRunner(
            store, transcriber, tmp_path, RunnerSettings(node, lease_s=30, poll_s=0.02)
        )
        for node, transcriber in zip(("node-a", "node-b"), transcribers, strict=True)
    ]
    for transcriber in transcribers:
        transcriber.go.clear()
    for runner in runners:
        await runner.start()
    try:
        await until(lambda: all(t.running == 1 for t in transcribers))  # one job each
        for transcriber in transcribers:
            transcriber.go.set()
        for recording_id in ids:
            await until(lambda r=recording_id: _status_is(store, r, "done"))
    finally:
        for runner in runners:
            await runner.stop()
    paths = transcribers[0].calls + transcribers[1].calls
    assert sorted(paths) == sorted(
        {str(tmp_path / "2027-01-15" / f"call-{n}.wav") for n in range(8)}
    )
    assert sum(r.completed for r in runners) == 8 and all(t.calls for t in transcribers)
