"""Recordings, the transcription job queue and transcripts, as sans-IO operations.

Same rules as ``operations``: generators of shared SQL, run in one
transaction by a backend; arguments arrive checked and, for transcripts,
already redacted (``Store`` holds the policy). The job queue is safe with
several nodes on one PostgreSQL database without row locks: every change of a
job is one conditional ``UPDATE ... WHERE`` on its expected state (and, once
claimed, its token), so of two racing nodes exactly one sees its row come back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conversations.errors import NotFound
from conversations.model_transcripts import (
    Recording,
    TimedWord,
    TranscriptionJob,
    TranscriptSegment,
)
from conversations.operations import Op, Query, Row
from conversations.operations_search import index_document

__all__ = [
    "PreparedSegment",
    "claim_transcription",
    "complete_transcription",
    "expired_recordings",
    "fail_transcription",
    "get_recording",
    "mark_recording_deleted",
    "recordings_of",
    "register_recording",
    "release_transcriptions",
    "renew_transcription",
    "transcript",
    "transcription_job",
    "transcription_jobs",
]

RECORDING_COLUMNS = (
    "id, conversation_id, call_id, path, fmt, duration_s, size_bytes, started_at, ended_at, "
    "node, deleted_at"
)
JOB_COLUMNS = (
    "id, recording_id, status, attempts, max_attempts, worker, token, lease_until, not_before, "
    "error, created_at, updated_at"
)
_CLAIM_RACES = 8  # another node took the job we picked: pick again, this many times at most
_GAVE_UP = "no attempt left (the last one was released or its lease expired)"


@dataclass(frozen=True, slots=True)
class PreparedSegment:
    """A segment ready to store: words as JSON, redacted and raw, and the redacted text."""

    channel: str
    speaker: str
    start_ms: int
    end_ms: int
    text: str
    words_json: str
    raw_text: str
    raw_words_json: str
    confidence: float | None


def _recording(row: Row) -> Recording:
    return Recording(*row)


def _job(row: Row) -> TranscriptionJob:
    return TranscriptionJob(*row)


def _words(text: str) -> tuple[TimedWord, ...]:
    return tuple(TimedWord(*word) for word in json.loads(text))


# ---------------------------------------------------------------- recordings


def register_recording(
    conversation_id: int,
    call_id: str,
    values: dict[str, Any],
    transcribe: bool,
    max_attempts: int,
    now: float,
) -> Op[Recording]:
    """The call's recording, created with its pending job unless it exists already.

    ``values``: path, fmt, duration_s, size_bytes, started_at, ended_at, node.
    """
    existing = yield from _recording_of_call(call_id)
    if existing is not None:
        return existing
    rows = yield Query("SELECT id FROM conversations WHERE id = ?", (conversation_id,))
    if not rows:
        raise NotFound(f"conversation {conversation_id}")
    columns = ", ".join(values)  # names from our code
    rows = yield Query(
        f"INSERT INTO recordings (conversation_id, call_id, {columns}) "
        f"VALUES (?, ?, {', '.join('?' * len(values))}) "
        f"ON CONFLICT (call_id) DO NOTHING RETURNING {RECORDING_COLUMNS}",
        (conversation_id, call_id, *values.values()),
    )
    if not rows:  # another node registered it since our look-up (PostgreSQL)
        theirs = yield from _recording_of_call(call_id)
        if theirs is None:
            raise NotFound(f"recording of call {call_id!r} vanished while being registered")
        return theirs
    recording = _recording(rows[0])
    if transcribe:
        yield Query(
            "INSERT INTO transcription_jobs (recording_id, status, attempts, max_attempts, "
            "not_before, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (recording.id, "pending", 0, max_attempts, now, now, now),
        )
    # The conversation's messages are searchable by the call's duration from now on.
    yield Query(
        "UPDATE search_items SET duration_s = ? WHERE conversation_id = ? AND kind = ?",
        (recording.duration_s, conversation_id, "message"),
    )
    return recording


def _recording_of_call(call_id: str) -> Op[Recording | None]:
    rows = yield Query(f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE call_id = ?", (call_id,))
    return _recording(rows[0]) if rows else None


def get_recording(recording_id: int) -> Op[Recording | None]:
    """One recording by id."""
    rows = yield Query(f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?", (recording_id,))
    return _recording(rows[0]) if rows else None


def recordings_of(conversation_id: int) -> Op[list[Recording]]:
    """A conversation's recordings, oldest first."""
    rows = yield Query(
        f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE conversation_id = ? ORDER BY id",
        (conversation_id,),
    )
    return [_recording(row) for row in rows]


def expired_recordings(before: float, limit: int) -> Op[list[Recording]]:
    """Recordings still on disk that ended before ``before``, oldest first."""
    rows = yield Query(
        f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE deleted_at IS NULL AND ended_at < ? "
        "ORDER BY ended_at, id LIMIT ?",
        (before, limit),
    )
    return [_recording(row) for row in rows]


def mark_recording_deleted(recording_id: int, now: float) -> Op[Recording]:
    """Note the file gone (the first time counts); a job still pending fails."""
    rows = yield Query(
        f"UPDATE recordings SET deleted_at = COALESCE(deleted_at, ?) WHERE id = ? "
        f"RETURNING {RECORDING_COLUMNS}",
        (now, recording_id),
    )
    if not rows:
        raise NotFound(f"recording {recording_id}")
    yield Query(
        "UPDATE transcription_jobs SET status = ?, error = ?, updated_at = ? "
        "WHERE recording_id = ? AND status = ?",
        (
            "failed",
            "the recording was deleted before it was transcribed",
            now,
            recording_id,
            "pending",
        ),
    )
    return _recording(rows[0])


# ---------------------------------------------------------------- the job queue


def claim_transcription(
    worker: str, token: str, lease_s: float, now: float
) -> Op[TranscriptionJob | None]:
    """Claim the oldest job that is pending and due, or running with its lease expired.

    Jobs that used all their attempts become ``failed`` on the way instead.
    """
    # One statement per status, so each walks its (status, id) index entries only,
    # never the done jobs that pile up.
    for status, due in (("pending", "not_before <= ?"), ("running", "lease_until < ?")):
        yield Query(
            "UPDATE transcription_jobs SET status = ?, error = COALESCE(error, ?), token = NULL, "
            f"lease_until = NULL, updated_at = ? WHERE status = ? AND {due} "
            "AND attempts >= max_attempts",
            ("failed", _GAVE_UP, now, status, now),
        )
    for _ in range(_CLAIM_RACES):
        pending = yield Query(
            "SELECT id FROM transcription_jobs WHERE status = ? AND not_before <= ? "
            "ORDER BY id LIMIT 1",
            ("pending", now),
        )
        expired = yield Query(
            "SELECT id FROM transcription_jobs WHERE status = ? AND lease_until < ? "
            "ORDER BY id LIMIT 1",
            ("running", now),
        )
        candidates = [rows[0][0] for rows in (pending, expired) if rows]
        if not candidates:
            return None
        rows = yield Query(
            "UPDATE transcription_jobs SET status = ?, attempts = attempts + 1, worker = ?, "
            "token = ?, lease_until = ?, updated_at = ? WHERE id = ? AND attempts < max_attempts "
            "AND ((status = ? AND not_before <= ?) OR (status = ? AND lease_until < ?)) "
            f"RETURNING {JOB_COLUMNS}",
            (
                "running",
                worker,
                token,
                now + lease_s,
                now,
                min(candidates),
                "pending",
                now,
                "running",
                now,
            ),
        )
        if rows:
            return _job(rows[0])
    return None


def renew_transcription(job_id: int, token: str, lease_s: float, now: float) -> Op[bool]:
    """Extend the lease of a job this token still holds."""
    rows = yield Query(
        "UPDATE transcription_jobs SET lease_until = ?, updated_at = ? "
        "WHERE id = ? AND token = ? AND status = ? RETURNING id",
        (now + lease_s, now, job_id, token, "running"),
    )
    return bool(rows)


def release_transcriptions(worker: str, now: float) -> Op[int]:
    """This worker's running jobs back to pending (its earlier life crashed); how many."""
    rows = yield Query(
        "UPDATE transcription_jobs SET status = ?, token = NULL, lease_until = NULL, "
        "updated_at = ? WHERE worker = ? AND status = ? RETURNING id",
        ("pending", now, worker, "running"),
    )
    return len(rows)


def complete_transcription(
    dialect: str,
    job_id: int,
    token: str,
    segments: Sequence[PreparedSegment],
    document: str,
    now: float,
) -> Op[bool]:
    """Store the transcript and index it, if this token still holds the running job.

    The job's row is updated first: a second completion, or one with a stale
    token, changes no row and writes nothing. ``segments`` come in time order;
    ``document`` is their redacted words as the index takes them.
    """
    rows = yield Query(
        "UPDATE transcription_jobs SET status = ?, token = NULL, lease_until = NULL, "
        "error = NULL, updated_at = ? WHERE id = ? AND token = ? AND status = ? "
        "RETURNING recording_id",
        ("done", now, job_id, token, "running"),
    )
    if not rows:
        return False
    recording_id = rows[0][0]
    rows = yield Query(
        "SELECT r.conversation_id, r.duration_s FROM recordings r WHERE r.id = ?",
        (recording_id,),
    )
    conversation_id, duration_s = rows[0]
    if segments:
        yield Query(
            "INSERT INTO transcript_segments (recording_id, conversation_id, channel, speaker, "
            "start_ms, end_ms, text, words, raw_text, raw_words, confidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    recording_id,
                    conversation_id,
                    s.channel,
                    s.speaker,
                    s.start_ms,
                    s.end_ms,
                    s.text,
                    s.words_json,
                    s.raw_text,
                    s.raw_words_json,
                    s.confidence,
                )
                for s in segments
            ],
            many=True,
        )
    yield from index_document(
        dialect, "transcript", recording_id, conversation_id, duration_s, document
    )
    return True


def fail_transcription(
    job_id: int, token: str, error: str, retry_in_s: float, now: float
) -> Op[TranscriptionJob]:
    """Pending again after ``retry_in_s`` while attempts are left, else failed.

    A token that no longer holds the job changes nothing: the job comes back as it is.
    """
    rows = yield Query(
        "UPDATE transcription_jobs SET status = CASE WHEN attempts < max_attempts "
        "THEN ? ELSE ? END, not_before = ?, error = ?, token = NULL, lease_until = NULL, "
        f"updated_at = ? WHERE id = ? AND token = ? AND status = ? RETURNING {JOB_COLUMNS}",
        ("pending", "failed", now + retry_in_s, error, now, job_id, token, "running"),
    )
    if rows:
        return _job(rows[0])
    rows = yield Query(f"SELECT {JOB_COLUMNS} FROM transcription_jobs WHERE id = ?", (job_id,))
    if not rows:
        raise NotFound(f"transcription job {job_id}")
    return _job(rows[0])


def transcription_job(recording_id: int) -> Op[TranscriptionJob | None]:
    """The job of a recording."""
    rows = yield Query(
        f"SELECT {JOB_COLUMNS} FROM transcription_jobs WHERE recording_id = ?", (recording_id,)
    )
    return _job(rows[0]) if rows else None


def transcription_jobs(status: str | None, limit: int) -> Op[list[TranscriptionJob]]:
    """Jobs oldest first, of one status or all."""
    if status is None:
        rows = yield Query(
            f"SELECT {JOB_COLUMNS} FROM transcription_jobs ORDER BY id LIMIT ?", (limit,)
        )
    else:
        rows = yield Query(
            f"SELECT {JOB_COLUMNS} FROM transcription_jobs WHERE status = ? ORDER BY id LIMIT ?",
            (status, limit),
        )
    return [_job(row) for row in rows]


# ---------------------------------------------------------------- transcripts


def transcript(conversation_id: int, unredacted: bool) -> Op[list[TranscriptSegment]]:
    """A conversation's segments in time order, both channels."""
    text, words = ("raw_text", "raw_words") if unredacted else ("text", "words")
    rows = yield Query(
        f"SELECT id, recording_id, conversation_id, channel, speaker, start_ms, end_ms, {text}, "
        f"{words}, confidence FROM transcript_segments WHERE conversation_id = ? "
        "ORDER BY start_ms, id",
        (conversation_id,),
    )
    return [
        TranscriptSegment(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], _words(row[8]), row[9]
        )
        for row in rows
    ]
