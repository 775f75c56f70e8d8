"""A transcribed call and a chat, written into a real store as the server would, for QA tests.

``seed_calls(store, recordings_dir)`` writes a real stereo 8 kHz WAV (stdlib
``wave``) under the recordings root, registers it, and completes its
transcription job with timed words on both channels, the caller reading out a
card number; it also writes a web chat where the customer types one. The unit
tests (``test_qa_*``, ``test_search_api``) and the browser test
(``tests/e2e/test_qa_search_in_chromium.py``) share it.
"""

from __future__ import annotations

import math
import struct
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conversations import SegmentInput, WordInput

RATE_HZ = 8000
CALL_S = 12.0
CARD_TYPED = "4111 1111 1111 1111"
CARD_SPOKEN = "four one one one one one one one one one one one one one one one"
CALL_ID = "qa-call-1@127.0.0.1"
RECORDING_PATH = "2026-12-02/qa-call-1.wav"


@dataclass(frozen=True)
class Word:
    """A word said on the recording and when (ms from its start)."""

    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class SeededCalls:
    """What ``seed_calls`` wrote."""

    voice_id: int
    recording_id: int
    chat_id: int
    chat_message_id: int
    audio: Path
    refund: Word  # the caller's "refund": where the search must land
    agent_word: Word  # a word of the agent's channel, for seeking


def timed(text: str, start_ms: int, word_ms: int = 300, gap_ms: int = 50) -> list[Word]:
    """``text``'s words said one after the other from ``start_ms``."""
    words = []
    for n, token in enumerate(text.split()):
        begin = start_ms + n * (word_ms + gap_ms)
        words.append(Word(token, begin, begin + word_ms))
    return words


CALLER_FIRST = timed("hello I would like a refund for my order please", 1000)
AGENT_REPLY = timed("certainly I can help with that refund", 5000)
CALLER_CARD = timed(f"my card number is {CARD_SPOKEN}", 8000, word_ms=120, gap_ms=20)


def write_wav(path: Path, seconds: float = CALL_S) -> int:
    """A stereo 16-bit WAV: a quiet tone on the left (caller), silence on the right."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    for n in range(int(seconds * RATE_HZ)):
        left = int(3000 * math.sin(2 * math.pi * 440 * n / RATE_HZ))
        frames += struct.pack("<hh", left, 0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        out.writeframes(bytes(frames))
    return path.stat().st_size


def _segment(channel: str, speaker: str, words: list[Word]) -> SegmentInput:
    return SegmentInput(
        channel=channel,
        speaker=speaker,
        start_ms=words[0].start_ms,
        end_ms=words[-1].end_ms,
        words=tuple(WordInput(w.text, w.start_ms, w.end_ms, 0.9) for w in words),
        confidence=0.9,
    )


async def seed_calls(store: Any, recordings_dir: Path) -> SeededCalls:
    """The transcribed voice call and the chat (see the module docstring)."""
    caller = await store.customer_for("phone", "+15551230001")
    voice = await store.open_conversation(caller.id, "voice", status="ivr", call_id=CALL_ID)
    await store.update_conversation(
        voice.id, status="closed", intent="refund", queue="billing", agent="alice"
    )
    audio = recordings_dir / RECORDING_PATH
    size = write_wav(audio)
    ended_at = time.time()
    recording = await store.register_recording(
        voice.id,
        CALL_ID,
        RECORDING_PATH,
        fmt="wav",
        duration_s=CALL_S,
        size_bytes=size,
        started_at=ended_at - CALL_S,
        ended_at=ended_at,
    )
    job = await store.claim_transcription("test-worker", 60.0)
    assert job is not None and job.recording_id == recording.id
    done = await store.complete_transcription(
        job.id,
        job.token,
        [
            _segment("caller", "customer", CALLER_FIRST),
            _segment("agent", "agent", AGENT_REPLY),
            _segment("caller", "customer", CALLER_CARD),
        ],
    )
    assert done

    visitor = await store.customer_for("webchat", "visitor-qa-1")
    chat = await store.open_conversation(visitor.id, "webchat", status="queued")
    message = await store.add_message(
        chat.id, "customer", f"please refund the charge on card {CARD_TYPED}"
    )
    refund = next(w for w in CALLER_FIRST if w.text == "refund")
    return SeededCalls(
        voice_id=voice.id,
        recording_id=recording.id,
        chat_id=chat.id,
        chat_message_id=message.id,
        audio=audio,
        refund=refund,
        agent_word=AGENT_REPLY[0],
    )
