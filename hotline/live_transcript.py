"""Live transcript: both legs of a call with an agent, recognised as they speak.

When the contact center connects a caller to an agent (SIP phone or the page's
browser phone), ``LiveTranscript.start`` opens one recognizer session per leg
(the caller's is speaker ``customer``, the agent's ``agent``) and taps both
legs' received audio from the media tick. The media core's VAD cuts each leg's
speech into utterances, as it does for the IVR (``ivr.runner``)::

    tick -- SpeechStarted(leg) --> start_utterance(context, pre-roll from the leg's ring)
    tick -- audio(leg) ----------> feed, while the utterance is open
    tick -- SpeechEnded(leg) ----> finish_utterance
    recognizer -- partial/final --> hub, topic agent:NAME

Each result goes to the agent's hub topic as ``{"type": "transcript",
"call_id", "speaker", "text", "final", "offset_ms"}``. ``offset_ms`` is when
the utterance's speech started, in ms since the agent was connected; it stays
the same for the partials and the final of one utterance, so the page replaces
them in place. ``{"type": "transcript.status", "call_id", "state"}`` says when
the transcript of a call is ``live``, ``unavailable`` (the recognizer is
saturated) or ``ended``.

Nothing here blocks: the tick has already copied the frames it hands out,
recognizer sessions only queue messages for their worker, and the hub's
``publish`` returns at once. A slow recognizer makes the text late, never the
media.

Capacity: each call costs two recognizer sessions, and the workers also serve
every call in the IVR. A new call gets a live transcript only while the open
sessions leave room (``max_sessions``) and the recognizer keeps up (recent
live finals came back within ``LAG_LIMIT_S``); otherwise it is skipped with a
log line, so the IVR is not the one that degrades.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from asr.engine import RecognitionContext
from asr.results import Hypothesis
from ivr.flow import Flow
from ivr.runner import PreRoll
from ivr.session import OPEN_QUESTION_GENERAL_ENGLISH, IvrSession
from media_core.media_events import MediaEvent, SpeechEnded, SpeechStarted
from media_core.tick import MediaTick

__all__ = [
    "LAG_LIMIT_S",
    "LIVE_SESSIONS_PER_WORKER",
    "MAX_UTTERANCE_S",
    "LiveCall",
    "LiveTranscript",
    "conversation_context",
]

log = logging.getLogger("hotline.live_transcript")

# A conversation's turns: a short pause is not the end of a line, and a cough is no line.
VAD_START_MS = 100
VAD_HANGOVER_MS = 600
MAX_UTTERANCE_S = 15.0  # a monologue is cut into lines so its text turns final this often
# Of the ten sessions one worker carries in real time (benchmarks/asr_ivr.py, one core),
# live transcripts may take the open sessions up to six: four stay for IVR calls.
LIVE_SESSIONS_PER_WORKER = 6
LAG_LIMIT_S = 2.0  # a live final later than this after the speech ended: saturated
_LAG_WINDOW_S = 30.0  # how long a late final counts against new calls
SPEAKERS = ("customer", "agent")


class Recognizer(Protocol):
    """What the live transcript needs of ``asr.service.AsrService``."""

    @property
    def session_count(self) -> int:
        """Sessions open now, for every purpose."""

    def open_session(self, label: str, on_result: Callable[[Hypothesis], None]) -> Any:
        """A recognizer session (``AsrSession``) that reports to ``on_result``."""


def conversation_context(flow: Flow | None) -> RecognitionContext:
    """What the recognizer expects in a conversation with an agent: the IVR's open question.

    The flow's phrases (what callers say about their problem) and the operator's,
    with the open question's share of general English for the words no phrase has.
    It is the very context of the flow's listen step, which the workers compile at
    start (``AsrService.prepare``) and cache: a language model of its own would cost
    each worker seconds on its first live line, and memory.
    """
    if flow is not None:
        for context in IvrSession(flow, None, "live").recognition_contexts():
            if context.grammar is None and context.general_english > 0:
                return context
    return RecognitionContext(name="conversation", general_english=OPEN_QUESTION_GENERAL_ENGLISH)


@dataclass(slots=True, eq=False)
class _Leg:
    """One leg of a live call: its recognizer session, recent audio and utterance."""

    call: LiveCall
    speaker: str
    stream_id: int
    session: Any = None  # AsrSession
    ring: PreRoll = field(default_factory=PreRoll)
    own_vad: bool = False  # the VAD was turned on for the transcript (off again after)
    in_speech: bool = False
    utterance_open: bool = False
    utterance_start_s: float = 0.0
    # Offsets (ms) of utterances started and not yet final, oldest first: a worker
    # answers in order, so a final is the oldest's and a partial the newest's.
    pending: deque[int] = field(default_factory=deque)
    finished_at: deque[float] = field(default_factory=deque)  # perf_counter at finish
    shown: dict[int, str] = field(default_factory=dict)  # offset -> partial text shown


@dataclass(slots=True, eq=False)
class LiveCall:
    """One call whose transcript is live: its agent, legs and start."""

    call_id: str
    agent: str
    topic: str
    started_s: float
    legs: list[_Leg] = field(default_factory=list)


class LiveTranscript:
    """Every live transcript of the process; see the module docstring."""

    def __init__(
        self,
        media: MediaTick,
        recognizer: Recognizer,
        publish: Callable[[str, dict[str, Any]], object],
        *,
        context: RecognitionContext,
        max_sessions: int,
        topic_of: Callable[[str], str],
        clock: Callable[[], float],
    ) -> None:
        """Wire the transcripts; nothing runs until a call is started.

        Args:
            media: the media tick both legs of each call live in.
            recognizer: opens the sessions (shared with the IVR).
            publish: the hub's ``publish(topic, event)``.
            context: what the recognizer expects (``conversation_context``).
            max_sessions: open recognizer sessions (every purpose) beyond which
                no new call gets a live transcript.
            topic_of: an agent's hub topic (``bridge.hub.agent_topic``).
            clock: the media clock (the loop's time), in seconds.
        """
        self.media = media
        self.recognizer = recognizer
        self.publish = publish
        self.context = context
        self.max_sessions = max_sessions
        self._topic_of = topic_of
        self._clock = clock
        self.calls: dict[str, LiveCall] = {}
        self._by_stream: dict[int, _Leg] = {}
        self._late_finals: deque[float] = deque()  # perf_counter of finals later than the limit
        self.skipped = 0  # calls that got no live transcript (saturated)

    # ---------------------------------------------------------------- calls

    def start(self, call_id: str, agent: str, caller_stream: int, agent_stream: int) -> bool:
        """The caller (``caller_stream``) is connected to ``agent`` (``agent_stream``).

        Returns:
            Whether the call's transcript is live (False: saturated, or a leg is gone).
        """
        self.stop(call_id)  # connected again (after a transfer): a fresh start
        topic = self._topic_of(agent)
        why = self._saturated()
        if why is not None:
            self.skipped += 1
            log.warning("[%s] no live transcript for %s: %s", call_id, agent, why)
            self._status(topic, call_id, "unavailable")
            return False
        call = LiveCall(call_id, agent, topic, self._clock())
        try:
            for speaker, stream_id in zip(SPEAKERS, (caller_stream, agent_stream), strict=True):
                leg = _Leg(call, speaker, stream_id)
                call.legs.append(leg)
                self._tap(leg)
                leg.session = self.recognizer.open_session(
                    f"{call_id}/{speaker}", functools.partial(self._on_result, leg)
                )
        except (KeyError, RuntimeError) as exc:  # a leg closed under us; no recognizer
            log.warning("[%s] no live transcript for %s: %s", call_id, agent, exc)
            self._release(call)
            return False
        self.calls[call_id] = call
        self._status(topic, call_id, "live")
        log.info("[%s] live transcript for %s", call_id, agent)
        return True

    def stop(self, call_id: str) -> None:
        """The call ended, was transferred, or the agent's leg went away."""
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        self._release(call)
        self._status(call.topic, call_id, "ended")

    def close(self) -> None:
        """Stop every transcript (the server is stopping)."""
        for call_id in list(self.calls):
            self.stop(call_id)

    # ---------------------------------------------------------------- input

    def on_media_event(self, event: MediaEvent) -> bool:
        """Take a VAD event of a transcribed leg; False when it is not one of ours."""
        leg = self._by_stream.get(event.stream_id)
        if leg is None:
            return False
        if isinstance(event, SpeechStarted):
            leg.in_speech = True
            self._start_utterance(leg, event.timestamp_s, preroll=True)
        elif isinstance(event, SpeechEnded):
            leg.in_speech = False
            self._finish_utterance(leg)
        else:
            return False  # keys and prompts are the server's business
        return True

    def on_audio(self, stream_ids: list[int], frames: NDArray[np.int16]) -> None:
        """One tick's received frames of the tapped legs (``MediaEngine.on_audio``)."""
        if not self._by_stream:
            return
        now = self._clock()
        frame_start_s = now - frames.shape[1] / self.media.rate_hz
        for row, stream_id in enumerate(stream_ids):
            leg = self._by_stream.get(stream_id)
            if leg is None:
                continue
            frame = frames[row]
            leg.ring.add(frame_start_s, frame)
            if not leg.utterance_open:
                continue
            leg.session.feed(frame)
            if now - leg.utterance_start_s >= MAX_UTTERANCE_S:
                self._finish_utterance(leg)
                self._start_utterance(leg, now, preroll=False)

    # ------------------------------------------------------------ utterances

    def _start_utterance(self, leg: _Leg, speech_start_s: float, *, preroll: bool) -> None:
        if leg.utterance_open:
            self._finish_utterance(leg)
        audio = leg.ring.before(speech_start_s) if preroll else None
        leg.session.start_utterance(self.context, audio)
        leg.utterance_open = True
        leg.utterance_start_s = speech_start_s
        leg.pending.append(max(0, round((speech_start_s - leg.call.started_s) * 1000)))

    def _finish_utterance(self, leg: _Leg) -> None:
        if not leg.utterance_open:
            return
        leg.utterance_open = False
        leg.finished_at.append(time.perf_counter())
        leg.session.finish_utterance()

    def _on_result(self, leg: _Leg, hypothesis: Hypothesis) -> None:
        if self.calls.get(leg.call.call_id) is not leg.call or not leg.pending:
            return
        text = hypothesis.text.strip()
        if not hypothesis.final:
            offset_ms = leg.pending[-1]
            if text and leg.shown.get(offset_ms) != text:
                leg.shown[offset_ms] = text
                self._transcript(leg, text, False, offset_ms)
            return
        offset_ms = leg.pending.popleft()
        if leg.pending or not leg.utterance_open:
            self._lag(leg)  # the final of an utterance we finished
        else:
            # The engine's own endpointer closed the open utterance: carry on listening.
            leg.utterance_open = False
            if leg.in_speech:
                self._start_utterance(leg, self._clock(), preroll=False)
        if text or leg.shown.pop(offset_ms, None) is not None:
            self._transcript(leg, text, True, offset_ms)  # empty: the partial goes away
        leg.shown.pop(offset_ms, None)

    def _transcript(self, leg: _Leg, text: str, final: bool, offset_ms: int) -> None:
        call = leg.call
        self.publish(call.topic, {
            "type": "transcript", "call_id": call.call_id, "speaker": leg.speaker,
            "text": text, "final": final, "offset_ms": offset_ms,
        })  # fmt: skip

    # ------------------------------------------------------------- capacity

    def _lag(self, leg: _Leg) -> None:
        if not leg.finished_at:
            return
        lag_s = time.perf_counter() - leg.finished_at.popleft()
        if lag_s > LAG_LIMIT_S:
            self._late_finals.append(time.perf_counter())
            log.info("[%s] live transcript: a final came %.1f s late", leg.call.call_id, lag_s)

    def _saturated(self) -> str | None:
        """Why a new call cannot have a live transcript now, or None."""
        now = time.perf_counter()
        while self._late_finals and now - self._late_finals[0] > _LAG_WINDOW_S:
            self._late_finals.popleft()
        if self._late_finals:
            return f"the recognizer lags (a final over {LAG_LIMIT_S:.0f} s late)"
        open_sessions = self.recognizer.session_count
        if open_sessions + len(SPEAKERS) > self.max_sessions:
            return f"the recognizer is saturated ({open_sessions} of {self.max_sessions} sessions)"
        return None

    # -------------------------------------------------------------- helpers

    def _tap(self, leg: _Leg) -> None:
        """Report the leg's speech and hand out its audio (KeyError: the leg is gone)."""
        stream = self.media.stream(leg.stream_id)
        if stream.vad is None:
            self.media.enable_vad(leg.stream_id)
            leg.own_vad = True
        self.media.tune_vad(leg.stream_id, start_ms=VAD_START_MS, hangover_ms=VAD_HANGOVER_MS)
        self.media.stream_audio(leg.stream_id)
        self._by_stream[leg.stream_id] = leg

    def _release(self, call: LiveCall) -> None:
        for leg in call.legs:
            if self._by_stream.get(leg.stream_id) is leg:
                del self._by_stream[leg.stream_id]
            if leg.session is not None:
                leg.session.close()
                leg.session = None
            with contextlib.suppress(KeyError):  # the leg may be closed already
                self.media.stream_audio(leg.stream_id, False)
                if leg.own_vad:
                    self.media.enable_vad(leg.stream_id, False)

    def _status(self, topic: str, call_id: str, state: str) -> None:
        self.publish(topic, {"type": "transcript.status", "call_id": call_id, "state": state})
