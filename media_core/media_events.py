"""Events the media tick reports to the application (the IVR, the server).

They carry the stream id and times on the tick's clock, so they line up with
call events and with the call's recording.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_core.dtmf import DtmfDigit


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A key press on a stream, from RFC 4733 events or tones in the audio."""

    stream_id: int
    digit: DtmfDigit
    method: str  # "rfc4733" or "inband"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (after the VAD's start smoothing)."""

    stream_id: int
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller stopped speaking (after the VAD's hangover)."""

    stream_id: int
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class PromptFinished:
    """A prompt started with ``play`` reached its end (not stopped by barge-in)."""

    stream_id: int


MediaEvent = DtmfReceived | SpeechStarted | SpeechEnded | PromptFinished
