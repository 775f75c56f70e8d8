"""What an ``IvrSession`` asks its server to do: small frozen commands.

The session is sans-IO: each input returns a list of these, in order, and the
server carries them out against the call's media leg and recognizer. None of
them carries a time; the server acts at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.engine import RecognitionContext

Prompt = str | Path
"""Text for the TTS voice, or an audio file (resolved against the flow file)."""


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Play ``prompt`` now, replacing anything still playing.

    The server reports ``on_prompt_finished`` when it has played to the end.
    ``barge_in`` says whether caller speech may stop it (the session sends
    ``StopPrompt`` when it does); the server may use it to gate the VAD.
    """

    prompt: Prompt
    barge_in: bool


@dataclass(frozen=True, slots=True)
class StopPrompt:
    """Stop the playing prompt at once; no ``on_prompt_finished`` follows for it."""


@dataclass(frozen=True, slots=True)
class StartUtterance:
    """Open an utterance: feed the recognizer from the speech start, with pre-roll."""

    context: RecognitionContext


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """The endpoint is reached: ask the recognizer for the utterance's final."""


@dataclass(frozen=True, slots=True)
class CancelUtterance:
    """Drop the open utterance; any result it still produces is not delivered."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to ``queue``; the session is finished."""

    queue: str
    intent: str | None
    priority: int


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call; the session is finished."""

    reason: str


Action = (
    PlayPrompt | StopPrompt | StartUtterance | FinishUtterance | CancelUtterance | Transfer | Hangup
)
