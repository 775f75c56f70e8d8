"""The live transcript: both legs of an agent call, cut by the VAD, published to the agent.

A real ``MediaTick`` carries the legs; the recognizer is scripted (the test says
what it answers and when), so what is tested is the wiring: the VAD's speech start
opens an utterance with the pre-roll, the leg's audio is fed, its end finishes the
utterance, and partials and the final reach the agent's topic with the speaker and
the utterance's offset. One test runs the tick for real on a recorded utterance, so
its own VAD cuts it.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asr.engine import RecognitionContext
from asr.results import Hypothesis
from hotline.live_transcript import (
    LAG_LIMIT_S,
    MAX_UTTERANCE_S,
    VAD_HANGOVER_MS,
    VAD_START_MS,
    LiveTranscript,
    conversation_context,
)
from ivr.flow import Flow
from ivr.runner import PREROLL_S
from ivr.session import OPEN_QUESTION_GENERAL_ENGLISH, IvrSession
from media_core.media_events import PromptFinished, SpeechEnded, SpeechStarted
from media_core.tick import MediaTick

REPO = Path(__file__).parents[3]
FLOW = REPO / "ivr" / "flows" / "hospital.yaml"
TOOTHACHE = REPO / "tests" / "data" / "audio" / "toothache_8k.wav"  # speech 1.000-1.98 s
PEER = ("192.0.2.9", 4000)
FRAME = 160


class ScriptedSession:
    """Records what it is given; the test makes it answer with ``say``."""

    def __init__(self, label: str, on_result: Callable[[Hypothesis], None]) -> None:
        self.label, self.on_result = label, on_result
        self.starts: list[tuple[RecognitionContext, int]] = []  # (context, pre-roll samples)
        self.fed = 0
        self.finished = 0
        self.open = False
        self.closed = False

    def start_utterance(self, context: RecognitionContext, preroll: Any = None) -> None:
        assert not self.closed
        self.starts.append((context, 0 if preroll is None else len(preroll)))
        self.open = True

    def feed(self, pcm: np.ndarray) -> None:
        assert self.open, "audio is fed only inside an utterance"
        self.fed += len(pcm)

    def finish_utterance(self) -> None:
        self.open = False
        self.finished += 1

    def close(self) -> None:
        self.closed = True

    def say(self, text: str, *, final: bool) -> None:
        self.on_result(Hypothesis(text, (), 0.9, final=final))


class ScriptedRecognizer:
    def __init__(self) -> None:
        self.sessions: dict[str, ScriptedSession] = {}
        self.others = 0  # sessions of other users (IVR calls)
        self.fail = False

    @property
    def session_count(self) -> int:
        return self.others + sum(not s.closed for s in self.sessions.values())

    def open_session(self, label: str, on_result: Callable[[Hypothesis], None]) -> ScriptedSession:
        if self.fail:
            raise RuntimeError("AsrService is not running")
        session = ScriptedSession(label, on_result)
        self.sessions[label] = session
        return session


class Harness:
    """A tick with a caller's RTP leg (VAD on, as the IVR left it) and an agent's leg."""

    def __init__(self, *, max_sessions: int = 20, agent_pcm: bool = False) -> None:
        self.now = 100.0
        self.tick = MediaTick()
        self.recognizer = ScriptedRecognizer()
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.live = LiveTranscript(
            self.tick,
            self.recognizer,
            lambda topic, event: self.published.append((topic, event)),
            context=RecognitionContext(phrases=("i have a toothache",), name="test"),
            max_sessions=max_sessions,
            topic_of=lambda agent: f"agent:{agent}",
            clock=lambda: self.now,
        )
        self.caller = self.tick.add_stream("PCMU", 0, None, PEER, vad=True)
        if agent_pcm:
            self.agent = self.tick.add_pcm_stream()
        else:
            self.agent = self.tick.add_stream("PCMU", 0, None, ("192.0.2.10", 4002))

    def start(self) -> bool:
        return self.live.start("call-1", "alice", self.caller, self.agent)

    def session(self, speaker: str) -> ScriptedSession:
        return self.recognizer.sessions[f"call-1/{speaker}"]

    def frames(self, seconds: float) -> None:
        """Tap ``seconds`` of both legs' audio, 20 ms at a time."""
        for _ in range(round(seconds / 0.02)):
            self.now += 0.02
            self.live.on_audio([self.caller, self.agent], np.full((2, FRAME), 300, np.int16))

    def events(self, kind: str = "transcript") -> list[dict[str, Any]]:
        return [event for topic, event in self.published if event["type"] == kind]


async def test_connecting_taps_both_legs_and_opens_one_session_each():
    h = Harness()
    assert h.start()
    assert h.tick.stream(h.caller).audio_out and h.tick.stream(h.agent).audio_out
    for leg in (h.caller, h.agent):
        vad = h.tick.stream(leg).vad
        assert vad is not None, "the agent's leg had no VAD: the transcript turns it on"
        assert (vad.start_ms, vad.hangover_ms) == (VAD_START_MS, VAD_HANGOVER_MS)
    assert set(h.recognizer.sessions) == {"call-1/customer", "call-1/agent"}
    assert h.published == [
        ("agent:alice", {"type": "transcript.status", "call_id": "call-1", "state": "live"})
    ]


async def test_the_callers_speech_goes_to_the_agent_as_partials_then_one_final():
    h = Harness()
    h.start()
    h.frames(1.0)
    speech_at = h.now - 0.1  # the VAD reports the start of speech it already heard
    assert h.live.on_media_event(SpeechStarted(h.caller, speech_at))
    customer = h.session("customer")
    # The pre-roll: the frames from PREROLL_S before the start up to now.
    assert [n for _, n in customer.starts] == [round((PREROLL_S + 0.1) / 0.02) * FRAME]
    assert customer.starts[0][0] is h.live.context
    h.frames(0.5)
    assert customer.fed == 25 * FRAME
    assert h.session("agent").fed == 0, "the agent said nothing"
    customer.say("i have", final=False)
    customer.say("i have", final=False)  # unchanged: not sent again
    customer.say("i have a tooth", final=False)
    assert h.live.on_media_event(SpeechEnded(h.caller, h.now - 0.3))
    assert customer.finished == 1
    customer.say("i have a toothache", final=True)
    offset_ms = round((speech_at - 100.0) * 1000)
    assert [(e["speaker"], e["text"], e["final"], e["offset_ms"]) for e in h.events()] == [
        ("customer", "i have", False, offset_ms),
        ("customer", "i have a tooth", False, offset_ms),
        ("customer", "i have a toothache", True, offset_ms),
    ]
    assert all(
        topic == "agent:alice" and event["call_id"] == "call-1" for topic, event in h.published
    )


async def test_both_speakers_keep_their_own_offsets_when_they_overlap():
    h = Harness()
    h.start()
    h.frames(0.5)
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.frames(0.5)
    h.live.on_media_event(SpeechStarted(h.agent, h.now))
    h.frames(0.5)
    h.live.on_media_event(SpeechEnded(h.caller, h.now))
    h.frames(0.5)
    h.live.on_media_event(SpeechEnded(h.agent, h.now))
    # The caller speaks again before the first final is back: it belongs to the first line.
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.session("agent").say("how can i help", final=True)
    h.session("customer").say("hello", final=True)
    h.session("customer").say("my", final=False)
    assert [(e["speaker"], e["text"], e["final"], e["offset_ms"]) for e in h.events()] == [
        ("agent", "how can i help", True, 1000),
        ("customer", "hello", True, 500),
        ("customer", "my", False, 2000),
    ]


async def test_an_empty_final_withdraws_the_partial_and_noise_sends_nothing():
    h = Harness()
    h.start()
    customer = h.session("customer")
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.live.on_media_event(SpeechEnded(h.caller, h.now + 0.2))
    customer.say("", final=True)  # a cough: nothing was shown, nothing is sent
    h.live.on_media_event(SpeechStarted(h.caller, h.now + 1.0))
    customer.say("uh", final=False)
    h.live.on_media_event(SpeechEnded(h.caller, h.now + 1.5))
    customer.say("", final=True)
    assert [(e["text"], e["final"]) for e in h.events()] == [("uh", False), ("", True)]


async def test_when_the_engine_ends_an_utterance_itself_listening_goes_on():
    h = Harness()
    h.start()
    customer = h.session("customer")
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.frames(0.2)
    customer.open = False  # the engine's endpointer closed it, then said its final
    customer.say("first part", final=True)
    assert len(customer.starts) == 2, "still speaking: a new utterance opens at once"
    h.frames(0.2)
    assert customer.fed == 20 * FRAME
    h.live.on_media_event(SpeechEnded(h.caller, h.now))
    customer.say("second part", final=True)
    assert [(e["text"], e["offset_ms"]) for e in h.events()] == [
        ("first part", 0),
        ("second part", 200),
    ]


async def test_a_monologue_is_cut_into_lines():
    h = Harness()
    h.start()
    customer = h.session("customer")
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.frames(MAX_UTTERANCE_S + 0.1)
    assert customer.finished == 1 and len(customer.starts) == 2
    assert customer.starts[1][1] == 0, "no pre-roll: the audio before went to the first line"
    customer.say("a long story", final=True)
    customer.say("goes on", final=False)
    first, second = h.events()
    assert (first["text"], first["offset_ms"]) == ("a long story", 0)
    assert second["text"] == "goes on"
    assert second["offset_ms"] == pytest.approx(MAX_UTTERANCE_S * 1000, abs=20)  # one frame


async def test_stopping_closes_the_sessions_and_untaps_the_legs():
    h = Harness()
    h.start()
    customer = h.session("customer")
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.live.stop("call-1")
    assert customer.closed and h.session("agent").closed
    assert not h.tick.stream(h.caller).audio_out and not h.tick.stream(h.agent).audio_out
    assert h.tick.stream(h.agent).vad is None, "the VAD it turned on goes off"
    assert h.tick.stream(h.caller).vad is not None, "the caller's (the IVR's) stays"
    customer.say("too late", final=True)  # a result still on its way
    assert h.events() == []
    assert h.events("transcript.status")[-1] == {
        "type": "transcript.status",
        "call_id": "call-1",
        "state": "ended",
    }
    assert not h.live.on_media_event(SpeechEnded(h.caller, h.now))
    h.live.stop("call-1")  # twice is harmless
    assert len(h.events("transcript.status")) == 2


async def test_other_events_and_legs_are_not_the_transcripts():
    h = Harness()
    h.start()
    assert not h.live.on_media_event(PromptFinished(h.caller))
    assert not h.live.on_media_event(SpeechStarted(h.agent + 99, h.now))


async def test_a_browser_phones_leg_is_transcribed_like_a_sip_one():
    h = Harness(agent_pcm=True)
    assert h.start()
    assert h.tick.stream(h.agent).vad is not None
    h.live.on_media_event(SpeechStarted(h.agent, h.now))
    h.session("agent").say("hello", final=False)
    assert [e["speaker"] for e in h.events()] == ["agent"]


async def test_a_saturated_recognizer_skips_new_calls_with_a_log_line(caplog):
    h = Harness(max_sessions=10)
    h.recognizer.others = 9  # the IVR's calls
    with caplog.at_level(logging.WARNING, "hotline.live_transcript"):
        assert not h.start()
    assert "saturated (9 of 10 sessions)" in caplog.text
    assert h.recognizer.sessions == {} and not h.tick.stream(h.caller).audio_out
    assert h.events("transcript.status") == [
        {"type": "transcript.status", "call_id": "call-1", "state": "unavailable"}
    ]
    assert h.live.skipped == 1
    h.recognizer.others = 8
    assert h.start(), "two sessions fit again"


async def test_a_recognizer_that_lags_skips_new_calls(monkeypatch, caplog):
    h = Harness()
    h.start()
    h.live.on_media_event(SpeechStarted(h.caller, h.now))
    h.live.on_media_event(SpeechEnded(h.caller, h.now + 1.0))
    clock = [1000.0]
    monkeypatch.setattr("hotline.live_transcript.time.perf_counter", lambda: clock[0])
    h.live.calls["call-1"].legs[0].finished_at[0] = clock[0] - LAG_LIMIT_S - 1.0
    h.session("customer").say("late", final=True)
    with caplog.at_level(logging.WARNING, "hotline.live_transcript"):
        assert not h.live.start("call-2", "bob", h.caller + 100, h.agent + 100)
    assert "lags" in caplog.text
    clock[0] += 60.0  # a while later, without late finals
    h.live.stop("call-1")
    assert h.start()


async def test_a_leg_already_gone_or_no_recognizer_leaves_nothing_open():
    h = Harness()
    h.tick.remove_stream(h.agent)
    assert not h.start()
    assert all(s.closed for s in h.recognizer.sessions.values())
    assert not h.tick.stream(h.caller).audio_out and h.live.calls == {}
    h2 = Harness()
    h2.recognizer.fail = True
    assert not h2.start()
    assert not h2.tick.stream(h2.agent).audio_out and h2.tick.stream(h2.agent).vad is None


async def test_connected_again_after_a_transfer_starts_afresh():
    h = Harness()
    h.start()
    first = h.session("customer")
    assert h.start()
    assert first.closed and not h.session("customer").closed
    assert [e["state"] for e in h.events("transcript.status")] == ["live", "ended", "live"]


def _toothache() -> np.ndarray:
    with wave.open(str(TOOTHACHE), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()


async def test_the_ticks_own_vad_cuts_a_recorded_utterance_on_the_agents_leg():
    """The real tick: a browser agent's leg says "I have a toothache"; its VAD opens and
    closes one utterance around it, and the recognizer gets the speech with the pre-roll."""
    tick = MediaTick()
    recognizer = ScriptedRecognizer()
    now = [0.0]
    published: list[dict[str, Any]] = []
    live = LiveTranscript(
        tick, recognizer, lambda topic, event: published.append(event),
        context=RecognitionContext(), max_sessions=20,
        topic_of=lambda agent: f"agent:{agent}", clock=lambda: now[0],
    )  # fmt: skip
    caller = tick.add_pcm_stream(vad=True)
    agent = tick.add_pcm_stream()
    tick.bridge(caller, agent)
    assert live.start("call-1", "carol", caller, agent)
    speech = _toothache()
    starts: list[float] = []
    for index in range(len(speech) // FRAME):
        # As a browser's audio comes: a frame at a time (the playout buffer is short).
        tick.push_pcm(agent, speech[index * FRAME : (index + 1) * FRAME])
        tick.push_pcm(caller, np.zeros(FRAME, np.int16))
        now[0] += 0.02
        tick.tick(now[0])
        for event in tick.take_events():
            if isinstance(event, SpeechStarted):
                starts.append(event.timestamp_s)
            live.on_media_event(event)
        for stream_ids, frames in tick.take_audio():
            live.on_audio(stream_ids, frames)
    session = recognizer.sessions["call-1/agent"]
    assert len(session.starts) == 1 and session.finished == 1
    assert recognizer.sessions["call-1/customer"].starts == [], "the caller was silent"
    # The speech (about 1.0 s of it) went to the recognizer, with the pre-roll before it.
    preroll = session.starts[0][1]
    assert preroll >= PREROLL_S * 8000 - FRAME
    assert session.fed + preroll >= 0.9 * 8000
    session.say("i have a toothache", final=True)
    (line,) = [e for e in published if e["type"] == "transcript"]
    assert line["speaker"] == "agent" and line["final"]
    assert line["offset_ms"] == round(starts[0] * 1000)


def test_the_conversations_context_is_the_ivrs_open_question():
    flow = Flow.from_file(FLOW)
    context = conversation_context(flow)
    # The listen step's own context: equal, so the workers' compiled LM is reused.
    assert context in IvrSession(flow, None, "x").recognition_contexts()
    assert set(flow.matcher.phrases()) <= set(context.phrases)
    assert set(flow.operator.phrases) <= set(context.phrases)
    assert context.general_english == OPEN_QUESTION_GENERAL_ENGLISH and context.grammar is None
    fallback = conversation_context(None)
    assert fallback.phrases == () and fallback.general_english == OPEN_QUESTION_GENERAL_ENGLISH


# ------------------------------------------------ wired into the contact center


class BrowserPhonesStub:
    """The page's phone: always ready; rings are remembered."""

    def __init__(self) -> None:
        self.rung: list[tuple[str, str]] = []
        self.hung_up: list[str] = []

    def ready(self, agent: str) -> bool:
        return True

    async def ring(self, agent: str, item: str, context: dict[str, Any]) -> None:
        self.rung.append((agent, item))

    def hangup(self, item: str) -> None:
        self.hung_up.append(item)

    def cancel(self, agent: str, item: str, reason: str) -> None:
        pass


def _center(*, live_transcript: bool = True) -> tuple[Any, Any, MediaTick, ScriptedRecognizer]:
    from types import SimpleNamespace

    from bridge.hub import Hub, agent_topic
    from hotline.config import AgentConfig, Config, QueueConfig, RecordingsConfig, RoutingConfig
    from hotline.contact_center import ContactCenter
    from routing import AgentState

    tick, recognizer, hub = MediaTick(), ScriptedRecognizer(), Hub()
    config = Config(
        agents=[AgentConfig("carol", "pw", queues=["operator"])],
        routing=RoutingConfig(queues=[QueueConfig("operator", ring_timeout_s=30.0)]),
        recordings=RecordingsConfig(live_transcript=live_transcript),
    )
    hung_up: list[Any] = []
    server = SimpleNamespace(
        config=config, hub=hub, records=None, browser_phones=BrowserPhonesStub(),
        media=SimpleNamespace(media_tick=tick), asr=recognizer, flow=Flow.from_file(FLOW),
        hangup=hung_up.append, _spawn=asyncio_spawn, prompt_library=None, hung_up=hung_up,
    )  # fmt: skip
    center = ContactCenter(server, ())  # type: ignore[arg-type]
    center.start()
    center._apply(center.acd.set_state("carol", AgentState.AVAILABLE, center._now()))
    center.pages = hub.subscribe([agent_topic("carol")])  # type: ignore[attr-defined]
    return center, server, tick, recognizer


def asyncio_spawn(coro: Any) -> None:
    import asyncio

    asyncio.get_running_loop().create_task(coro)


def _caller(tick: MediaTick, call_id: str = "call-1") -> Any:
    from types import SimpleNamespace

    stream = tick.add_stream("PCMU", 0, None, PEER, vad=True)
    return SimpleNamespace(
        leg=SimpleNamespace(call_id=call_id), stream_id=stream, queue=None, offer_for=None
    )


async def _pushed(center: Any) -> list[dict[str, Any]]:
    import asyncio

    await asyncio.sleep(0)
    events = []
    while not center.pages._events.empty():
        events.append(center.pages._events.get_nowait())
    return events


async def test_a_call_answered_in_the_browser_is_transcribed_until_the_agent_hangs_up():
    center, server, tick, recognizer = _center()
    try:
        caller = _caller(tick)
        center.enqueue(caller, "operator", 0, {"transcript": []})
        await _pushed(center)
        assert server.browser_phones.rung == [("carol", "call-1")]
        browser_leg = tick.add_pcm_stream()
        center.browser_answered("carol", "call-1", browser_leg)
        assert set(recognizer.sessions) == {"call-1/customer", "call-1/agent"}
        assert tick.stream(browser_leg).audio_out and tick.stream(browser_leg).vad is not None
        assert {"type": "transcript.status", "call_id": "call-1", "state": "live"} in (
            await _pushed(center)
        )
        # Media events and audio reach it the way the server hands them over.
        assert center.live_media_event(SpeechStarted(browser_leg, 1.0))
        center.live_audio([caller.stream_id, browser_leg], np.zeros((2, FRAME), np.int16))
        assert recognizer.sessions["call-1/agent"].fed == FRAME
        recognizer.sessions["call-1/agent"].say("hello", final=False)
        (line,) = [e for e in await _pushed(center) if e["type"] == "transcript"]
        assert (line["speaker"], line["text"], line["final"]) == ("agent", "hello", False)

        center.browser_ended("carol", "call-1")  # she hangs up in the page
        assert server.hung_up == [caller]  # the caller's leg is hung up
        assert all(s.closed for s in recognizer.sessions.values())
        assert not tick.stream(caller.stream_id).audio_out
        assert not center.live_media_event(SpeechEnded(browser_leg, 2.0))
        assert {"type": "transcript.status", "call_id": "call-1", "state": "ended"} in (
            await _pushed(center)
        )
    finally:
        await center.close()


async def test_the_caller_hanging_up_ends_the_transcript():
    center, server, tick, recognizer = _center()
    try:
        caller = _caller(tick)
        center.enqueue(caller, "operator", 0, {"transcript": []})
        await _pushed(center)
        center.browser_answered("carol", "call-1", tick.add_pcm_stream())
        center.leg_ended(caller, None, "BYE")
        assert server.browser_phones.hung_up == ["call-1"]
        assert all(s.closed for s in recognizer.sessions.values()) and center.live.calls == {}
    finally:
        await center.close()


async def test_closing_the_contact_center_ends_every_transcript():
    center, server, tick, recognizer = _center()
    caller = _caller(tick)
    center.enqueue(caller, "operator", 0, {"transcript": []})
    await _pushed(center)
    center.browser_answered("carol", "call-1", tick.add_pcm_stream())
    assert not any(s.closed for s in recognizer.sessions.values())
    await center.close()
    assert recognizer.sessions and all(s.closed for s in recognizer.sessions.values())


async def test_no_transcript_when_it_is_off_or_for_a_consultation():
    center, server, tick, recognizer = _center(live_transcript=False)
    try:
        assert center.live is None
        assert not center.live_media_event(SpeechStarted(1, 0.0))
        center.live_audio([1], np.zeros((1, FRAME), np.int16))  # nothing to do
    finally:
        await center.close()
    center, server, tick, recognizer = _center()
    try:
        consult = _caller(tick, "consult-1")
        center.enqueue(consult, "operator", 50, {"transcript": [], "consult_from": "alice"})
        await _pushed(center)
        center.browser_answered("carol", "consult-1", tick.add_pcm_stream())
        assert center.routed["consult-1"].agent == "carol"
        assert recognizer.sessions == {}, "two agents talking about a caller: no transcript"
    finally:
        await center.close()
