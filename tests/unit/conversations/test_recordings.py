"""Recordings, the durable transcription job queue and transcripts, on SQLite and PostgreSQL.

Each test gets an empty store on a fake clock (``clock``): leases expire and
retries come due by moving it, never by sleeping.
"""

from __future__ import annotations

import asyncio

import pytest

from conversations import (
    InvalidValue,
    NotFound,
    Recording,
    SegmentInput,
    Store,
    TimedWord,
    WordInput,
)
from tests.unit.conversations.conftest import START, FakeClock

CARD = "four one one one one one one one one one one one one one one one"


async def _call(store: Store, call_id: str = "call-1", **options) -> Recording:
    customer = await store.customer_for("phone", "+15551234567")
    conversation = await store.open_conversation(customer.id, "voice", call_id=call_id)
    return await store.register_recording(
        conversation.id,
        call_id,
        f"2027-01-15/{call_id}.wav",
        fmt="wav",
        duration_s=42.5,
        size_bytes=680_000,
        started_at=START,
        ended_at=START + 42.5,
        node="node-a",
        **options,
    )


def _segment(channel: str, speaker: str, start_ms: int, text: str, step_ms: int = 300):
    words = tuple(
        WordInput(word, start_ms + i * step_ms, start_ms + (i + 1) * step_ms - 50, 0.9)
        for i, word in enumerate(text.split())
    )
    return SegmentInput(channel, speaker, start_ms, words[-1].end_ms, words, 0.85)


# ---------------------------------------------------------------- recordings


async def test_a_recording_is_registered_once_per_call_with_one_pending_job(store: Store):
    recording = await _call(store)
    assert (recording.call_id, recording.path, recording.fmt) == (
        "call-1",
        "2027-01-15/call-1.wav",
        "wav",
    )
    assert (recording.duration_s, recording.size_bytes, recording.node) == (42.5, 680_000, "node-a")
    assert recording.deleted_at is None
    again = await store.register_recording(
        recording.conversation_id,
        "call-1",
        "elsewhere.wav",
        fmt="ogg",
        duration_s=1.0,
        size_bytes=1,
        started_at=START,
        ended_at=START + 1,
    )
    assert again == recording
    job = await store.transcription_job(recording.id)
    assert (job.status, job.attempts, job.max_attempts, job.token) == ("pending", 0, 3, None)
    assert await store.transcription_jobs() == [job]
    assert await store.get_recording(recording.id) == recording
    assert await store.recordings_of(recording.conversation_id) == [recording]


async def test_a_recording_without_transcription_has_no_job(store: Store):
    recording = await _call(store, transcribe=False)
    assert await store.transcription_job(recording.id) is None
    assert await store.claim_transcription("w1", 60) is None


async def test_a_recording_needs_its_conversation_and_a_safe_relative_path(store: Store):
    with pytest.raises(NotFound):
        await store.register_recording(
            999, "c", "a.wav", fmt="wav", duration_s=1, size_bytes=1, started_at=1, ended_at=2
        )
    for path in ("/etc/passwd", "../x.wav", "a/../../x.wav", "C:/x.wav", "a\\b.wav", "a//b"):
        with pytest.raises(InvalidValue, match="relative path"):
            await store.register_recording(
                1, "c", path, fmt="wav", duration_s=1, size_bytes=1, started_at=1, ended_at=2
            )
    with pytest.raises(InvalidValue, match="ended_at is before"):
        await store.register_recording(
            1, "c", "a.wav", fmt="wav", duration_s=1, size_bytes=1, started_at=2, ended_at=1
        )


async def test_retention_lists_old_recordings_and_deleting_keeps_row_and_transcript(
    store: Store, clock: FakeClock
):
    old = await _call(store, "old")
    job = await store.claim_transcription("w1", 60)
    await store.complete_transcription(
        job.id, job.token, [_segment("caller", "customer", 0, "hello")]
    )
    pending = await _call(store, "pending")
    assert await store.expired_recordings(START + 43) == [old, pending]
    assert await store.expired_recordings(START + 42) == []
    assert await store.expired_recordings(START + 43, limit=1) == [old]
    clock.advance(10)
    deleted = await store.mark_recording_deleted(old.id)
    assert deleted.deleted_at == START + 10
    clock.advance(10)
    assert (await store.mark_recording_deleted(old.id)).deleted_at == START + 10  # first time kept
    assert [segment.text for segment in await store.transcript(old.conversation_id)] == ["hello"]
    await store.mark_recording_deleted(pending.id)
    assert await store.expired_recordings(START + 43) == []
    failed = await store.transcription_job(pending.id)
    assert failed.status == "failed" and "deleted" in failed.error
    with pytest.raises(NotFound):
        await store.mark_recording_deleted(999)


# ---------------------------------------------------------------- the job queue


async def test_jobs_are_claimed_oldest_first_each_with_a_fresh_token_and_lease(
    store: Store, clock: FakeClock
):
    first, second = await _call(store, "a"), await _call(store, "b")
    one = await store.claim_transcription("w1", 60)
    two = await store.claim_transcription("w2", 60)
    assert (one.recording_id, two.recording_id) == (first.id, second.id)
    assert (one.status, one.attempts, one.worker, one.lease_until) == (
        "running",
        1,
        "w1",
        START + 60,
    )
    assert one.token and two.token and one.token != two.token
    assert await store.claim_transcription("w3", 60) is None


async def test_two_workers_claiming_at_once_get_different_jobs(store: Store):
    await _call(store, "a")
    await _call(store, "b")
    claims = await asyncio.gather(*(store.claim_transcription(f"w{i}", 60) for i in range(4)))
    taken = [job.recording_id for job in claims if job is not None]
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 2


async def test_a_renewed_lease_holds_and_an_expired_one_is_claimed_again(
    store: Store, clock: FakeClock
):
    await _call(store)
    job = await store.claim_transcription("w1", 60)
    clock.advance(50)
    assert await store.renew_transcription(job.id, job.token, 60)
    clock.advance(50)  # 100 s after the claim, 50 s after the renewal
    assert await store.claim_transcription("w2", 60) is None
    clock.advance(11)
    stolen = await store.claim_transcription("w2", 60)
    assert (stolen.id, stolen.worker, stolen.attempts) == (job.id, "w2", 2)
    assert stolen.token != job.token
    assert not await store.renew_transcription(job.id, job.token, 60)  # w1 lost it


async def test_completing_stores_the_transcript_once_and_a_stale_token_writes_nothing(
    store: Store, clock: FakeClock
):
    recording = await _call(store)
    first = await store.claim_transcription("w1", 60)
    clock.advance(61)
    second = await store.claim_transcription("w2", 60)
    segments = [_segment("caller", "customer", 0, "i need a refund")]
    assert not await store.complete_transcription(first.id, first.token, segments)
    assert await store.transcript(recording.conversation_id) == []
    assert await store.complete_transcription(second.id, second.token, segments)
    assert not await store.complete_transcription(second.id, second.token, segments)
    assert [s.text for s in await store.transcript(recording.conversation_id)] == [
        "i need a refund"
    ]
    done = await store.transcription_job(recording.id)
    assert (done.status, done.token, done.lease_until, done.worker) == ("done", None, None, "w2")
    assert await store.claim_transcription("w3", 60) is None


async def test_a_malformed_transcript_is_refused_before_anything_is_written(store: Store):
    recording = await _call(store)
    job = await store.claim_transcription("w1", 60)
    bad = [
        SegmentInput("left", "customer", 0, 10, ()),
        SegmentInput("caller", "robot", 0, 10, ()),
        SegmentInput("caller", "customer", 10, 0, ()),
        SegmentInput("caller", "customer", 0, 10, (WordInput("x", 5, 1),)),
        SegmentInput("caller", "customer", 0, 10, (WordInput(" ", 0, 1),)),
        SegmentInput("caller", "customer", 0, 10, (WordInput("x", 0, 1, 1.5),)),
    ]
    for segment in bad:
        with pytest.raises(InvalidValue):
            await store.complete_transcription(job.id, job.token, [segment])
    assert (await store.transcription_job(recording.id)).status == "running"
    assert await store.transcript(recording.conversation_id) == []


async def test_a_failure_retries_later_until_the_attempts_are_used_up(
    store: Store, clock: FakeClock
):
    recording = await _call(store, max_attempts=2)
    job = await store.claim_transcription("w1", 60)
    retry = await store.fail_transcription(job.id, job.token, "model crashed", 30)
    assert (retry.status, retry.attempts, retry.error, retry.not_before) == (
        "pending",
        1,
        "model crashed",
        START + 30,
    )
    assert retry.token is None
    assert await store.claim_transcription("w1", 60) is None  # not due yet
    clock.advance(30)
    job = await store.claim_transcription("w1", 60)
    assert job.attempts == 2
    failed = await store.fail_transcription(job.id, job.token, "model crashed again", 30)
    assert (failed.status, failed.attempts, failed.error) == ("failed", 2, "model crashed again")
    clock.advance(60)
    assert await store.claim_transcription("w1", 60) is None
    assert await store.transcription_jobs("failed") == [failed]
    assert await store.transcription_jobs("pending") == []
    assert (await store.transcription_job(recording.id)) == failed


async def test_a_job_whose_last_lease_expires_fails_instead_of_running_forever(
    store: Store, clock: FakeClock
):
    recording = await _call(store, max_attempts=1)
    await store.claim_transcription("w1", 60)
    clock.advance(61)
    assert await store.claim_transcription("w2", 60) is None
    job = await store.transcription_job(recording.id)
    assert (job.status, job.attempts) == ("failed", 1)
    assert "no attempt left" in job.error


async def test_a_stale_failure_changes_nothing(store: Store, clock: FakeClock):
    await _call(store)
    old = await store.claim_transcription("w1", 60)
    clock.advance(61)
    new = await store.claim_transcription("w2", 60)
    unchanged = await store.fail_transcription(old.id, old.token, "late", 0)
    assert (unchanged.status, unchanged.token, unchanged.worker) == ("running", new.token, "w2")
    with pytest.raises(NotFound):
        await store.fail_transcription(999, "token", "x", 0)


async def test_a_restarted_worker_releases_its_running_jobs_and_keeps_their_attempts(
    store: Store,
):
    first, second = await _call(store, "a"), await _call(store, "b")
    mine = await store.claim_transcription("node-a/1", 600)
    await store.claim_transcription("node-b/1", 600)
    assert await store.release_transcriptions("node-a/1") == 1
    assert await store.release_transcriptions("node-a/1") == 0
    released = await store.transcription_job(first.id)
    assert (released.status, released.attempts, released.token) == ("pending", 1, None)
    assert (await store.transcription_job(second.id)).status == "running"
    again = await store.claim_transcription("node-a/1", 600)
    assert (again.id, again.attempts) == (mine.id, 2)
    assert not await store.complete_transcription(mine.id, mine.token, [])  # the old token


# ---------------------------------------------------------------- transcripts


async def test_a_transcript_is_both_channels_in_time_order_and_redacted_by_default(store: Store):
    recording = await _call(store)
    job = await store.claim_transcription("w1", 60)
    segments = [
        _segment("agent", "agent", 2000, "can i have your card number please"),
        _segment("caller", "customer", 0, "hello i want to pay"),
        _segment("caller", "customer", 5000, f"it is {CARD} thanks"),
    ]
    assert await store.complete_transcription(job.id, job.token, segments)
    shown = await store.transcript(recording.conversation_id)
    assert [(s.channel, s.speaker, s.start_ms) for s in shown] == [
        ("caller", "customer", 0),
        ("agent", "agent", 2000),
        ("caller", "customer", 5000),
    ]
    card = shown[2]
    assert card.text == "it is [card] thanks"
    assert card.recording_id == recording.id and card.confidence == 0.85
    # The mask is one word lasting from "four" to the last "one".
    assert card.words[2] == TimedWord("[card]", 5600, 5600 + 16 * 300 - 50, 0.9)
    assert card.words[3].text == "thanks" and len(card.words) == 4
    assert not any(word.text in ("four", "one") for s in shown for word in s.words)
    raw = await store.transcript(recording.conversation_id, unredacted=True)
    assert raw[2].text == f"it is {CARD} thanks" and len(raw[2].words) == 19


async def test_redaction_can_be_turned_off_for_a_store(store_url: str, clock: FakeClock):
    from conversations import RedactionPolicy, open_store

    async with open_store(
        store_url, clock=clock, redaction=RedactionPolicy(enabled=False)
    ) as plain:
        recording = await _call(plain)
        job = await plain.claim_transcription("w1", 60)
        await plain.complete_transcription(
            job.id, job.token, [_segment("caller", "customer", 0, CARD)]
        )
        assert (await plain.transcript(recording.conversation_id))[0].text == CARD
