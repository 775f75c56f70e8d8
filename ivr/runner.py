"""The asyncio shell that runs every call's ``IvrSession`` (the IVR's only I/O).

Per call it joins three things: the sans-IO session (what to do next), the
call's media leg (prompts, barge-in, the VAD and the received audio), and its
recognizer session. The chain for one utterance:

    media tick -- SpeechStarted --> session -- StartUtterance --> recognizer
    (pre-roll from the call's ring of recent frames, then every new frame)
    media tick -- SpeechEnded ----> session -- FinishUtterance -> recognizer
    recognizer -- final ----------> session -- Transfer / PlayPrompt ...

There is no timer per call: one sweep task wakes at the earliest deadline of
all sessions (no-input, finalize timeouts) and calls ``on_deadline`` on the
sessions that are due. Prompts are rendered off the loop (``PromptLibrary``),
and the recognizer runs in its own workers, so nothing here blocks the tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from asr.engine import RecognitionContext
from asr.results import Hypothesis
from asr.service import AsrService, AsrSession
from ivr.actions import (
    Action,
    CancelUtterance,
    FinishUtterance,
    Hangup,
    PlayPrompt,
    Prompt,
    StartUtterance,
    StopPrompt,
    Transfer,
)
from ivr.outcome import IvrOutcome
from ivr.prompts import PromptLibrary
from ivr.session import IvrSession
from media_core.media_events import (
    DtmfReceived,
    MediaEvent,
    PromptFinished,
    SpeechEnded,
    SpeechStarted,
)
from media_core.tick import MediaTick

log = logging.getLogger("ivr.runner")

PREROLL_S = 0.3  # audio fed to the recognizer from before the VAD's speech start
_RING_FRAMES = 40  # 800 ms of 20 ms frames: more than the VAD's start delay plus pre-roll
_FINISHED_KEPT = 10_000  # outcomes of ended calls kept for the API
_SWEEP_MAX_S = 0.25  # the sweep wakes at least this often


class PreRoll:
    """A leg's last frames, so an utterance starts ``PREROLL_S`` before the VAD's speech start.

    The VAD declares speech only after some of it went by; those frames are
    what a recognizer needs most (the first word).
    """

    def __init__(self) -> None:
        self._frames: deque[tuple[float, NDArray[np.int16]]] = deque(maxlen=_RING_FRAMES)

    def add(self, start_s: float, frame: NDArray[np.int16]) -> None:
        """One received frame, starting at ``start_s`` (media clock seconds)."""
        self._frames.append((start_s, frame))

    def before(self, speech_start_s: float) -> NDArray[np.int16] | None:
        """The audio from ``PREROLL_S`` before ``speech_start_s`` on, if any was kept."""
        since = speech_start_s - PREROLL_S
        frames = [frame for start_s, frame in self._frames if start_s >= since]
        return np.concatenate(frames) if frames else None


@dataclass(slots=True, eq=False)
class IvrCall:
    """One call in the IVR: its session, media leg and recognizer stream."""

    call_id: str
    stream_id: int
    session: IvrSession
    recognizer: AsrSession | None = None
    ring: PreRoll = field(default_factory=PreRoll)
    utterance_open: bool = False
    speech_start_s: float = 0.0
    prompt_serial: int = 0  # which PlayPrompt is current (renders finish out of order)


class IvrRunner:
    """Every IVR call of the process, driven by media events, results and one sweep."""

    def __init__(
        self,
        new_session: Callable[[str], IvrSession],
        media: MediaTick,
        prompts: PromptLibrary,
        recognizer: AsrService,
        *,
        on_transfer: Callable[[IvrCall, Transfer], None],
        on_hangup: Callable[[IvrCall, Hangup], None],
        on_outcome: Callable[[IvrOutcome], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Wire the runner; nothing runs until ``start``.

        Args:
            new_session: makes the ``IvrSession`` of a call id (flow, matcher).
            media: the media tick the calls' legs live in.
            prompts: renders and caches prompt audio.
            recognizer: opens one recognizer session per call.
            on_transfer: the session chose a queue; the server takes the call over.
            on_hangup: the flow ended the call.
            on_outcome: receives each call's outcome when its session finishes.
            clock: the media clock (the loop's time by default).
        """
        self._new_session = new_session
        self.media = media
        self.prompts = prompts
        self.recognizer = recognizer
        self.on_transfer = on_transfer
        self.on_hangup = on_hangup
        self.on_outcome = on_outcome
        self._clock = clock
        self.calls: dict[str, IvrCall] = {}
        self._by_stream: dict[int, IvrCall] = {}
        self._finished: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._sweep_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the deadline sweep."""
        if self._sweep_task is None:
            self._sweep_task = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self) -> None:
        """End every session and stop the sweep."""
        for call_id in list(self.calls):
            self.end_call(call_id)
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep_task
            self._sweep_task = None
        for task in list(self._tasks):
            task.cancel()

    def now(self) -> float:
        """The media clock."""
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # ---------------------------------------------------------------- calls

    def start_call(self, call_id: str, stream_id: int) -> IvrCall:
        """Put an answered call's leg (added with ``vad=True``) into the flow."""
        call = IvrCall(call_id, stream_id, self._new_session(call_id))
        call.recognizer = self.recognizer.open_session(
            call_id, functools.partial(self._on_hypothesis, call), partials=False
        )
        self.calls[call_id] = call
        self._by_stream[stream_id] = call
        # The flow's endpointing: speech shorter than barge-in's minimum starts no
        # turn (a cough, a click), and its end-of-speech silence ends one.
        flow = call.session.flow
        self.media.tune_vad(
            stream_id,
            start_ms=flow.barge_in.min_speech_ms,
            hangover_ms=flow.endpointing.speech_end_ms,
        )
        self.media.stream_audio(stream_id)
        self._run(call, call.session.start(self.now()))
        return call

    def end_call(self, call_id: str) -> None:
        """The caller hung up (or the server ends the call): finish its session."""
        call = self.calls.get(call_id)
        if call is None:
            return
        if not call.session.finished:
            self._run(call, call.session.on_hangup(self.now()))
        self._retire(call)

    def outcome(self, call_id: str) -> dict[str, Any] | None:
        """The IVR outcome of a call in the flow or ended recently, JSON-ready."""
        call = self.calls.get(call_id)
        if call is not None:
            return call.session.outcome.to_dict() | {"finished": False}
        return self._finished.get(call_id)

    # ---------------------------------------------------------------- input

    def on_media_event(self, event: MediaEvent) -> bool:
        """Take a media event of an IVR leg; False when the leg is not in the IVR."""
        call = self._by_stream.get(event.stream_id)
        if call is None:
            return False
        now = self.now()
        session = call.session
        if isinstance(event, SpeechStarted):
            call.speech_start_s = event.timestamp_s
            actions = session.on_speech_started(now, event.timestamp_s)
        elif isinstance(event, SpeechEnded):
            actions = session.on_speech_ended(now, event.timestamp_s)
        elif isinstance(event, PromptFinished):
            actions = session.on_prompt_finished(now)
        elif isinstance(event, DtmfReceived):
            actions = session.on_dtmf(now, event.digit.digit)
        else:
            return True
        self._run(call, actions)
        return True

    def on_audio(self, stream_ids: list[int], frames: NDArray[np.int16]) -> None:
        """One tick's received frames of the tapped legs (``MediaEngine.on_audio``)."""
        frame_start_s = self.now() - frames.shape[1] / self.media.rate_hz
        for row, stream_id in enumerate(stream_ids):
            call = self._by_stream.get(stream_id)
            if call is None:
                continue
            frame = frames[row]
            call.ring.add(frame_start_s, frame)
            if call.utterance_open and call.recognizer is not None:
                call.recognizer.feed(frame)

    def _on_hypothesis(self, call: IvrCall, hypothesis: Hypothesis) -> None:
        if call.call_id not in self.calls:
            return
        if hypothesis.final:
            call.utterance_open = False
        self._run(call, call.session.on_hypothesis(self.now(), hypothesis))

    # -------------------------------------------------------------- actions

    def _run(self, call: IvrCall, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, PlayPrompt):
                self._play(call, action.prompt)
            elif isinstance(action, StopPrompt):
                call.prompt_serial += 1  # a render still on its way must not start
                self._media(call, lambda s: self.media.stop_prompt(s))
            elif isinstance(action, StartUtterance):
                self._start_utterance(call, action.context)
            elif isinstance(action, FinishUtterance):
                if call.utterance_open and call.recognizer is not None:
                    call.recognizer.finish_utterance()
            elif isinstance(action, CancelUtterance):
                if call.utterance_open and call.recognizer is not None:
                    call.recognizer.cancel_utterance()
                call.utterance_open = False
            elif isinstance(action, Transfer):
                self._retire(call)
                self.on_transfer(call, action)
            elif isinstance(action, Hangup):
                self._retire(call)
                self.on_hangup(call, action)
        self._wake.set()  # deadlines may have moved

    def _start_utterance(self, call: IvrCall, context: RecognitionContext) -> None:
        if call.recognizer is None:
            return
        call.recognizer.start_utterance(context, call.ring.before(call.speech_start_s))
        call.utterance_open = True

    def _play(self, call: IvrCall, prompt: Prompt) -> None:
        call.prompt_serial += 1
        serial = call.prompt_serial
        cached = self.prompts.cached(prompt)
        if cached is not None:
            self._media(call, lambda s: self.media.play(s, cached))
            return

        # Rendered off the loop; played only if nothing replaced it meanwhile.
        async def render() -> None:
            try:
                pcm = await self.prompts.aget(prompt)
            except (OSError, RuntimeError, ValueError):
                log.exception("[%s] prompt %r could not be rendered", call.call_id, prompt)
                pcm = np.zeros(160, dtype=np.int16)  # the flow goes on as if it played
            if serial == call.prompt_serial and call.call_id in self.calls:
                self._media(call, lambda s: self.media.play(s, pcm))

        self._spawn(render())

    def _media(self, call: IvrCall, operation: Callable[[int], None]) -> None:
        try:
            operation(call.stream_id)
        except KeyError:  # the leg closed under us: the hang-up is on its way
            log.debug("[%s] media leg %d is gone", call.call_id, call.stream_id)

    def _retire(self, call: IvrCall) -> None:
        """Take the call out of the IVR (transferred, hung up, or ended)."""
        if self.calls.pop(call.call_id, None) is None:
            return
        self._by_stream.pop(call.stream_id, None)
        if call.recognizer is not None:
            call.recognizer.close()
            call.recognizer = None
        with contextlib.suppress(KeyError):
            self.media.stream_audio(call.stream_id, False)
        outcome = call.session.outcome
        self._finished[call.call_id] = outcome.to_dict() | {"finished": True}
        while len(self._finished) > _FINISHED_KEPT:
            self._finished.popitem(last=False)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    # ---------------------------------------------------------------- sweep

    async def _sweep(self) -> None:
        while True:
            deadlines = [
                d for call in self.calls.values() if (d := call.session.next_deadline) is not None
            ]
            now = self.now()
            delay = min([_SWEEP_MAX_S, *(d - now for d in deadlines)])
            self._wake.clear()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            else:
                await asyncio.sleep(0)  # never starve the loop, whatever a session says
            now = self.now()
            for call in list(self.calls.values()):
                deadline = call.session.next_deadline
                if deadline is not None and deadline <= now:
                    self._run(call, call.session.on_deadline(now))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
