"""Test recordings: fixture speech placed in stereo calls, written as the media core does."""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from conversations import Store
from media_core.recording import open_recorder

ASR_DATA = Path(__file__).resolve().parents[2] / "data" / "asr"
RATE_HZ = 8000


def speech(name: str) -> NDArray[np.int16]:
    """A committed 8 kHz mono fixture of ``tests/data/asr`` (``en_chest``: "my chest hurts")."""
    with wave.open(str(ASR_DATA / f"{name}.wav")) as reader:
        assert reader.getframerate() == RATE_HZ and reader.getnchannels() == 1
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.int16)


def place(length_s: float, *parts: tuple[float, NDArray[np.int16]]) -> NDArray[np.int16]:
    """A channel of ``length_s`` silence with each ``(at_s, pcm)`` mixed in at ``at_s``."""
    out = np.zeros(round(length_s * RATE_HZ), dtype=np.int16)
    for at_s, pcm in parts:
        start = round(at_s * RATE_HZ)
        out[start : start + len(pcm)] = pcm
    return out


def first_loud_s(pcm: NDArray[np.int16], threshold_dbfs: float = -40.0) -> float:
    """Where the first 10 ms frame louder than ``threshold_dbfs`` starts (our own onset)."""
    frame = RATE_HZ // 100
    frames = pcm[: len(pcm) // frame * frame].reshape(-1, frame).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2 + 1e-12)
    return float(np.flatnonzero(level > threshold_dbfs)[0]) * 0.01


def write_call(
    path: Path, caller: NDArray[np.int16], agent: NDArray[np.int16], fmt: str | None = None
) -> Path:
    """Write a stereo call recording the way the media core does, 20 ms at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_recorder(path, fmt) as recorder:
        for index in range(0, len(caller) - 159, 160):
            recorder.write(caller[index : index + 160], agent[index : index + 160])
    return path


_numbers = itertools.count(100)


async def new_call(store: Store, call_id: str) -> int:
    """A voice conversation for ``call_id``; its id."""
    customer = await store.customer_for("phone", f"+1555010{next(_numbers):04d}")
    conversation = await store.open_conversation(customer.id, "voice", call_id=call_id)
    return conversation.id
