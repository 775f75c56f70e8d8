"""What one call did in the IVR: the decision, how it was reached, and when.

``IvrOutcome`` is filled in by ``ivr.session.IvrSession`` as the call goes and
is handed on with the call (routing shows the transcript and intent to the
agent; the conversation store keeps ``to_dict()``). Times are seconds on the
media clock the session is fed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Method = Literal["speech", "dtmf", "operator", "emergency", "none"]
Ending = Literal["transfer", "hangup", "caller_hangup", ""]


@dataclass(slots=True)
class IvrOutcome:
    """The record of one call through a flow.

    ``method`` says how the decision was made: ``speech`` (an intent
    recognized, confirmed or not), ``dtmf`` (a key or menu choice),
    ``operator`` (asked for a person by word or key, or sent there after the
    retries), ``emergency`` (an emergency intent, transferred at once) or
    ``none`` (no decision: the caller hung up first, or the flow hung up).
    ``attempts`` counts the speech turns of listen steps (each ends in a
    match, a no-match or a no-input). ``confirmed`` is the answer to the last
    confirmation asked (``None`` when none was). ``ended_by`` says how the
    session finished.
    """

    call_id: str
    transcript: list[str] = field(default_factory=list)
    intent: str | None = None
    label: str | None = None
    confidence: float | None = None
    queue: str | None = None
    priority: int | None = None
    method: Method = "none"
    attempts: int = 0
    confirmed: bool | None = None
    prompts: list[str | Path] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    decision_at: float | None = None
    last_speech_end_s: float | None = None
    decided_by_speech: bool = False
    ended_by: Ending = ""
    events: list[tuple[float, str, str]] = field(default_factory=list)
    # Both sides in order: (time, "ivr" or "customer", text, confidence or None).
    dialogue: list[tuple[float, str, str, float | None]] = field(default_factory=list)

    @property
    def decision_latency_ms(self) -> float | None:
        """Decision time minus the end of the caller's last speech, for speech decisions."""
        if not self.decided_by_speech or self.decision_at is None:
            return None
        if self.last_speech_end_s is None:
            return None
        return round((self.decision_at - self.last_speech_end_s) * 1000.0, 3)

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data (paths become strings)."""
        return {
            "call_id": self.call_id,
            "transcript": list(self.transcript),
            "intent": self.intent,
            "label": self.label,
            "confidence": self.confidence,
            "queue": self.queue,
            "priority": self.priority,
            "method": self.method,
            "attempts": self.attempts,
            "confirmed": self.confirmed,
            "prompts": [str(p) for p in self.prompts],
            "digits": list(self.digits),
            "decision_at": self.decision_at,
            "last_speech_end_s": self.last_speech_end_s,
            "decision_latency_ms": self.decision_latency_ms,
            "ended_by": self.ended_by,
            "events": [[t, kind, detail] for t, kind, detail in self.events],
            "dialogue": [
                {"at": t, "speaker": who, "text": text, "confidence": confidence}
                for t, who, text, confidence in self.dialogue
            ],
        }
