"""Shared pieces of the ASR tests: the committed WAV fixtures and the hospital phrases."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from asr.engine import RecognitionContext

DATA = Path(__file__).resolve().parents[2] / "data" / "asr"

HOSPITAL_PHRASES = (
    "I have a toothache", "my chest hurts", "I need a refill", "I can't breathe",
    "I need an appointment", "I want to book an appointment", "I need to cancel my appointment",
    "I need to reschedule", "my prescription ran out", "I need my medication",
    "I have a question about my bill", "I want to pay my bill", "billing question",
    "I have a fever", "my child has a fever", "I have a headache", "I feel dizzy",
    "I think I broke my arm", "I cut my finger", "I was in an accident",
    "I need to talk to a nurse", "can I speak to a doctor", "I have an earache",
    "my back hurts", "my stomach hurts", "I have chest pain", "I'm having trouble breathing",
    "I need a prescription refill", "where is the pharmacy", "my insurance",
)  # fmt: skip


@pytest.fixture(scope="session")
def symptoms() -> RecognitionContext:
    return RecognitionContext(phrases=HOSPITAL_PHRASES, name="symptoms")


@pytest.fixture(scope="session")
def yes_no() -> RecognitionContext:
    return RecognitionContext(grammar=("yes", "no"), name="yes-no")


@pytest.fixture(scope="session")
def load_wav() -> Callable[[str], NDArray[np.int16]]:
    def load(name: str) -> NDArray[np.int16]:
        with wave.open(str(DATA / f"{name}.wav")) as reader:
            assert reader.getframerate() == 8000 and reader.getnchannels() == 1
            return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(
                np.int16
            )

    return load
