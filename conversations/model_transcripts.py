"""Records of calls' recordings, their transcription jobs and their transcripts.

Frozen snapshots like ``model``'s. Times in the recording are integer
milliseconds from its start (``start_ms``); wall times are float seconds since
the epoch. A recording's transcript has one segment per utterance and channel
(``caller``: the left channel; ``agent``: the right one, which also carries
the IVR's prompts), each with its words and their times.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "JOB_STATUSES",
    "TRANSCRIPT_CHANNELS",
    "Recording",
    "SegmentInput",
    "TimedWord",
    "TranscriptSegment",
    "TranscriptionJob",
    "WordInput",
]

JOB_STATUSES = frozenset({"pending", "running", "done", "failed"})
TRANSCRIPT_CHANNELS = frozenset({"caller", "agent"})


@dataclass(frozen=True, slots=True)
class Recording:
    """One call's audio file; ``path`` is relative to the recordings root."""

    id: int
    conversation_id: int
    call_id: str  # at most one recording per call
    path: str  # e.g. "2026-12-02/CALLID.wav"
    fmt: str  # "wav" | "ogg"
    duration_s: float
    size_bytes: int
    started_at: float
    ended_at: float
    node: str | None  # the hotline node that wrote it
    deleted_at: float | None  # set when retention deleted the file (row and transcript stay)


@dataclass(frozen=True, slots=True)
class TranscriptionJob:
    """A durable job: transcribe one recording.

    ``status`` goes pending -> running (claimed, with a lease and a fresh
    ``token``) -> done, or back to pending (released, lease expired, failed
    with attempts left) until ``attempts`` reaches ``max_attempts``, then
    failed. ``worker`` is the worker that holds it, or last held it.
    """

    id: int
    recording_id: int
    status: str  # one of JOB_STATUSES
    attempts: int  # claims so far
    max_attempts: int
    worker: str | None
    token: str | None  # the current claim's; None unless running
    lease_until: float | None  # a running job whose lease passed may be claimed again
    not_before: float  # not claimed before this time (retry back-off)
    error: str | None  # the last failure
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class WordInput:
    """A recognised word as a recognizer gives it, times in the recording."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class SegmentInput:
    """One utterance of one channel, for ``complete_transcription``."""

    channel: str  # one of TRANSCRIPT_CHANNELS
    speaker: str  # one of model.SPEAKERS: customer, agent, ivr, system
    start_ms: int
    end_ms: int
    words: tuple[WordInput, ...]
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class TimedWord:
    """A stored word; a redacted span is one word (``[card]``) spanning the span's time."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float | None


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """A stored utterance; ``text`` is its words joined by spaces."""

    id: int
    recording_id: int
    conversation_id: int
    channel: str  # one of TRANSCRIPT_CHANNELS
    speaker: str
    start_ms: int
    end_ms: int
    text: str
    words: tuple[TimedWord, ...]
    confidence: float | None
