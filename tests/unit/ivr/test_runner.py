"""The IVR shell: media events, the recognizer tap and the actions, for the demo flow.

A real ``MediaTick`` carries the call's leg; the recognizer is a scripted one
(it answers each finished utterance with the next line of its script), so what
is tested is the wiring: barge-in stops the tick's prompt, the recognizer gets
the pre-roll from before the VAD's start, a final reaches the flow and the flow's
transfer reaches the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from asr.engine import RecognitionContext
from asr.results import Hypothesis, Word
from ivr.actions import Hangup, Transfer
from ivr.flow import Flow
from ivr.outcome import IvrOutcome
from ivr.prompts import PromptLibrary
from ivr.runner import PREROLL_S, IvrCall, IvrRunner
from ivr.session import IvrSession
from ivr.tts import EspeakSynthesizer
from media_core.dtmf import DtmfDigit
from media_core.media_events import DtmfReceived, PromptFinished, SpeechEnded, SpeechStarted
from media_core.tick import MediaTick

FLOW = Path(__file__).parents[3] / "ivr" / "flows" / "hospital.yaml"
PEER = ("192.0.2.9", 4000)


class ScriptedSession:
    """Answers each finished utterance with its script's next line, on the next loop turn."""

    def __init__(self, script: list[str], on_result: Callable[[Hypothesis], None]) -> None:
        self.script, self.on_result = script, on_result
        self.contexts: list[RecognitionContext] = []
        self.prerolls: list[int] = []
        self.fed = 0
        self.open = False
        self.closed = False

    def start_utterance(self, context: RecognitionContext, preroll: np.ndarray | None = None):
        self.contexts.append(context)
        self.prerolls.append(0 if preroll is None else len(preroll))
        self.open = True

    def feed(self, pcm: np.ndarray) -> None:
        assert self.open, "audio is fed only inside an utterance"
        self.fed += len(pcm)

    def finish_utterance(self) -> None:
        self.open = False
        text = self.script.pop(0)
        words = tuple(Word(w, 0.0, 0.1, 0.95) for w in text.split())
        hyp = Hypothesis(text, words, 0.95, final=True)
        asyncio.get_running_loop().call_soon(self.on_result, hyp)

    def cancel_utterance(self) -> None:
        self.open = False

    def close(self) -> None:
        self.closed = True


class ScriptedRecognizer:
    def __init__(self, *scripts: list[str]) -> None:
        self.scripts = list(scripts)
        self.sessions: list[ScriptedSession] = []

    def open_session(
        self, label: str, on_result: Callable[[Hypothesis], None], *, partials: bool = True
    ) -> ScriptedSession:
        assert not partials, "the IVR acts on finals only, so it asks for no partials"
        session = ScriptedSession(self.scripts.pop(0), on_result)
        self.sessions.append(session)
        return session


class Harness:
    def __init__(self, flow: Flow, prompts: PromptLibrary, *scripts: list[str]) -> None:
        self.now = 100.0
        self.tick = MediaTick()
        self.recognizer = ScriptedRecognizer(*scripts)
        self.transfers: list[Transfer] = []
        self.hangups: list[Hangup] = []
        self.outcomes: list[IvrOutcome] = []
        self.runner = IvrRunner(
            lambda call_id: IvrSession(flow, None, call_id),
            self.tick,
            prompts,
            self.recognizer,  # type: ignore[arg-type]
            on_transfer=lambda call, t: self.transfers.append(t),
            on_hangup=lambda call, h: self.hangups.append(h),
            on_outcome=self.outcomes.append,
            clock=lambda: self.now,
        )
        self.stream = self.tick.add_stream("PCMU", 0, None, PEER, vad=True)

    def start(self) -> IvrCall:
        return self.runner.start_call("call-1", self.stream)

    def frames(self, seconds: float, level: int = 0) -> None:
        """Tap ``seconds`` of received audio into the runner, 20 ms at a time."""
        for _ in range(round(seconds / 0.02)):
            self.now += 0.02
            self.runner.on_audio([self.stream], np.full((1, 160), level, np.int16))

    @property
    def prompt_playing(self) -> bool:
        player = self.tick.stream(self.stream).player
        return player is not None and player.playing


@pytest.fixture(scope="module")
def flow() -> Flow:
    return Flow.from_file(FLOW)


@pytest.fixture(scope="module")
def prompts(flow: Flow, tmp_path_factory: pytest.TempPathFactory) -> PromptLibrary:
    library = PromptLibrary(tmp_path_factory.mktemp("prompts"), EspeakSynthesizer())
    for text in flow.prompt_texts():
        library.render(text)
    return library


async def test_the_greeting_plays_at_once_and_the_leg_is_tapped(flow, prompts):
    h = Harness(flow, prompts, [])
    h.start()
    assert h.prompt_playing
    assert h.tick.stream(h.stream).audio_out
    vad = h.tick.stream(h.stream).vad
    assert vad is not None
    assert (vad.start_ms, vad.hangover_ms) == (
        flow.barge_in.min_speech_ms,
        flow.endpointing.speech_end_ms,
    )


async def test_speech_barges_in_feeds_the_recognizer_with_preroll_and_routes(flow, prompts):
    h = Harness(flow, prompts, ["i have a toothache"])
    h.start()
    h.frames(1.0)
    speech_at = h.now - 0.1  # the VAD reports the start of the speech it already heard
    assert h.runner.on_media_event(SpeechStarted(h.stream, speech_at))
    assert not h.prompt_playing, "barge-in stops the greeting"
    session = h.recognizer.sessions[0]
    assert session.contexts and session.contexts[0].phrases, "the flow's vocabulary as hints"
    # Pre-roll: the frames from PREROLL_S before the speech start up to now.
    assert session.prerolls == [round((PREROLL_S + 0.1) / 0.02) * 160]
    h.frames(1.0, level=500)
    assert session.fed == 50 * 160
    h.runner.on_media_event(SpeechEnded(h.stream, h.now - 0.4))
    await asyncio.sleep(0)  # the final arrives on the next loop turn
    assert h.runner.outcome("call-1")["queue"] == "dental", "decided at once"
    assert h.prompt_playing and not h.transfers, "the transfer message plays first"
    h.runner.on_media_event(PromptFinished(h.stream))
    assert [(t.queue, t.intent) for t in h.transfers] == [("dental", "dental")]
    assert session.closed and not h.tick.stream(h.stream).audio_out
    (outcome,) = h.outcomes
    assert list(outcome.transcript) == ["i have a toothache"]
    assert outcome.decision_latency_ms == pytest.approx(400, abs=1)
    assert h.runner.outcome("call-1")["finished"] is True


async def test_key_0_reaches_the_operator_during_the_greeting(flow, prompts):
    h = Harness(flow, prompts, [])
    h.start()
    key = DtmfDigit("0", None, 100, 100.0, 100.1)
    h.runner.on_media_event(DtmfReceived(h.stream, key, "rfc4733"))
    assert h.runner.outcome("call-1")["queue"] == "operator"
    h.runner.on_media_event(PromptFinished(h.stream))  # "Connecting you to an operator."
    assert [t.queue for t in h.transfers] == ["operator"]


async def test_events_of_other_legs_are_not_the_ivrs(flow, prompts):
    h = Harness(flow, prompts, [])
    h.start()
    assert not h.runner.on_media_event(PromptFinished(h.stream + 99))


async def test_a_caller_hanging_up_finishes_the_session_with_no_decision(flow, prompts):
    h = Harness(flow, prompts, [])
    h.start()
    h.runner.end_call("call-1")
    (outcome,) = h.outcomes
    assert outcome.method == "none" and outcome.queue is None
    assert h.recognizer.sessions[0].closed
    assert h.runner.outcome("call-1")["finished"] is True
    assert h.runner.outcome("nobody") is None


async def test_the_sweep_fires_the_no_input_timeout(flow, prompts):
    h = Harness(flow, prompts, [])
    await h.runner.start()
    h.start()
    h.runner.on_media_event(PromptFinished(h.stream))  # the greeting ended
    h.now += flow.endpointing.no_input_ms / 1000 + 0.1
    h.runner._wake.set()  # the clock jumped: what a new deadline would do
    await asyncio.sleep(0.05)
    kinds = [kind for _, kind, _ in h.runner.outcome("call-1")["events"]]
    await asyncio.wait_for(h.runner.close(), 5.0)
    assert "no_input" in kinds
    assert kinds[-1] == "prompt", "the no-input reprompt plays"
