"""How one call moves through a flow: the IVR session, on a fake clock.

The flow is ``TEST_FLOW`` of ``test_flow.py`` (welcome prompt -> recorded-calls
message -> listen ``ask`` -> confirm ``check`` / menu ``menu`` -> transfers),
with its keyword matcher: "tooth" is dental, "refill" a refill, "bill"
billing, "chest" an emergency; the words' confidence is the match's.
"""

from __future__ import annotations

import json

import pytest
from test_flow import TEST_FLOW, load

from asr.results import Hypothesis, Word
from ivr.actions import (
    Action,
    CancelUtterance,
    FinishUtterance,
    Hangup,
    PlayPrompt,
    StartUtterance,
    StopPrompt,
    Transfer,
)
from ivr.session import IvrSession, Phase

ASK = "Tell me in a few words why you are calling."
MENU = "For the dentist press 1, pharmacy 2, billing 3, a nurse 5, emergency 9."


def final(text: str, confidence: float = 0.9) -> Hypothesis:
    words = tuple(Word(w, 0.1 * i, 0.1 * i + 0.1, confidence) for i, w in enumerate(text.split()))
    return Hypothesis(text, words, confidence, final=True)


class Call:
    """A session and its fake media clock; every input is stamped with ``now``."""

    def __init__(self, text: str = TEST_FLOW) -> None:
        self.session = IvrSession(load(text), None, "call-7")
        self.now = 0.0

    def at(self, t: float) -> Call:
        assert t >= self.now, "the clock only goes forward"
        self.now = t
        return self

    def wait(self, until: float) -> list[Action]:
        """Let time pass, firing every deadline due on the way (as the sweep would)."""
        actions: list[Action] = []
        while (due := self.session.next_deadline) is not None and due <= until:
            self.now = max(self.now, due)
            actions += self.session.on_deadline(self.now)
        self.now = until
        return actions

    def start(self) -> list[Action]:
        return self.session.start(self.now)

    def prompt_finished(self) -> list[Action]:
        return self.session.on_prompt_finished(self.now)

    def speech_started(self, at_s: float) -> list[Action]:
        return self.at(at_s + 0.1).session.on_speech_started(self.now, at_s)

    def speech_ended(self, at_s: float) -> list[Action]:
        # The VAD reports the end after its hangover.
        return self.at(at_s + 0.6).session.on_speech_ended(self.now, at_s)

    def hypothesis(self, hyp: Hypothesis, after: float = 0.2) -> list[Action]:
        return self.at(self.now + after).session.on_hypothesis(self.now, hyp)

    def dtmf(self, digit: str) -> list[Action]:
        return self.session.on_dtmf(self.now, digit)

    def say(self, text: str, confidence: float = 0.9, start: float | None = None) -> list[Action]:
        """Speak ``text`` for one second from ``start``; the recognizer answers 0.2 s later."""
        start = self.now + 0.5 if start is None else start
        actions = self.speech_started(start) + self.speech_ended(start + 1.0)
        return actions + self.hypothesis(final(text, confidence))

    def to_ask(self) -> Call:
        """Through the welcome and the message: the ask prompt has just finished."""
        self.start()
        self.at(2.0).prompt_finished()
        assert self.at(4.0).prompt_finished() == [PlayPrompt(ASK, True)]
        assert self.at(7.0).prompt_finished() == []
        return self

    @property
    def outcome(self):  # type: ignore[no-untyped-def]
        return self.session.outcome


def of(kind: type, actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]


# -- prompt, message, listen: the straight path ------------------------------------------


def test_start_plays_the_welcome_then_the_message_then_asks() -> None:
    call = Call()
    assert call.start() == [PlayPrompt("Welcome to Test Hospital.", True)]
    assert call.session.next_deadline is None  # no timer while a prompt plays
    assert call.at(2.0).prompt_finished() == [PlayPrompt("Calls are recorded.", False)]
    assert call.at(4.0).prompt_finished() == [PlayPrompt(ASK, True)]
    assert call.session.step == "ask" and call.session.phase is Phase.PLAYING


def test_the_no_input_timer_starts_when_the_prompt_finishes() -> None:
    call = Call().to_ask()
    assert call.session.phase is Phase.WAITING
    assert call.session.next_deadline == pytest.approx(7.0 + 5.0)  # no_input_ms 5000


def test_a_clear_answer_transfers_to_the_intents_queue_after_its_message() -> None:
    call = Call().to_ask()
    (start,) = call.speech_started(8.0)
    assert isinstance(start, StartUtterance)
    assert call.session.next_deadline == pytest.approx(8.0 + 10.0)  # max_speech_ms
    assert call.speech_ended(9.5) == [FinishUtterance()]
    assert call.session.next_deadline == pytest.approx(10.1 + 1.5)  # finalize_timeout_ms
    actions = call.hypothesis(final("my tooth hurts", 0.9))
    assert actions == [PlayPrompt("Connecting you to the dental desk.", False)]
    assert not call.session.finished
    assert call.at(13.0).prompt_finished() == [Transfer("dental", "dental", 10)]
    assert call.session.finished and call.session.next_deadline is None
    out = call.outcome
    assert (out.intent, out.queue, out.priority, out.method) == ("dental", "dental", 10, "speech")
    assert (out.confidence, out.confirmed, out.attempts) == (0.9, None, 1)
    assert out.transcript == ["my tooth hurts"] and out.ended_by == "transfer"


def test_the_listen_context_carries_the_intent_phrases_and_the_operator_words() -> None:
    call = Call().to_ask()
    (start,) = call.speech_started(8.0)
    assert isinstance(start, StartUtterance)
    assert "my tooth" in start.context.phrases and "operator" in start.context.phrases
    assert start.context.grammar is None and start.context.name == "test hospital.ask"


def test_decision_latency_is_measured_from_the_end_of_the_callers_last_speech() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    call.speech_ended(9.25)  # reported at 9.85, after the VAD hangover
    call.hypothesis(final("my tooth hurts"), after=0.15)  # the final at 10.0
    out = call.outcome
    assert out.last_speech_end_s == 9.25 and out.decision_at == pytest.approx(10.0)
    assert out.decision_latency_ms == pytest.approx(750.0)


def test_a_second_speech_start_or_a_partial_while_hearing_changes_nothing() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    assert call.speech_started(8.5) == []
    partial = Hypothesis("my", (), 0.5, final=False)
    assert call.hypothesis(partial) == [] and call.session.phase is Phase.HEARING


# -- barge-in ------------------------------------------------------------------------------


def test_speech_during_a_barge_in_prompt_stops_it_and_opens_the_utterance() -> None:
    call = Call()
    call.start()
    call.at(2.0).prompt_finished()
    call.at(4.0).prompt_finished()  # the ask prompt is playing
    actions = call.speech_started(4.5)
    assert [type(a) for a in actions] == [StopPrompt, StartUtterance]
    assert call.session.phase is Phase.HEARING
    assert call.prompt_finished() == []  # a late report for the stopped prompt is ignored


def test_barge_in_on_the_welcome_prompt_goes_on_to_the_next_step() -> None:
    text = TEST_FLOW.replace("    next: notice", "    next: ask")  # no message in between
    call = Call(text)
    call.start()
    actions = call.speech_started(1.0)
    # The caller is already talking: the ask step hears it without its own prompt.
    assert [type(a) for a in actions] == [StopPrompt, StartUtterance]
    assert call.session.step == "ask"
    assert call.speech_ended(2.0) == [FinishUtterance()]
    assert of(Transfer, call.hypothesis(final("I need a refill")) + call.prompt_finished())


def test_a_prompt_without_barge_in_is_never_cut() -> None:
    call = Call()
    call.start()
    call.at(2.0).prompt_finished()  # "Calls are recorded." plays, barge_in false
    assert call.speech_started(2.5) == []  # speech: not cut, not heard
    assert call.speech_ended(3.0) == []
    assert call.dtmf("7") == []  # a key is kept for when it ends
    assert call.session.phase is Phase.PLAYING
    # At its end the kept key acts in the ask step: 7 is billing there.
    actions = call.at(4.0).prompt_finished()
    assert actions == [PlayPrompt("Connecting you about a bill.", False)]
    assert call.outcome.method == "dtmf" and call.outcome.digits == ["7"]


def test_a_flow_with_barge_in_disabled_plays_its_prompts_uncut() -> None:
    call = Call(TEST_FLOW.replace("barge_in: {enabled: true,", "barge_in: {enabled: false,"))
    assert call.start() == [PlayPrompt("Welcome to Test Hospital.", False)]
    assert call.speech_started(0.5) == []


# -- no input, no match, retries, menu ---------------------------------------------------------


def test_no_input_reprompts_then_goes_to_the_menu_after_the_retries() -> None:
    call = Call().to_ask()
    assert call.wait(12.0) == [PlayPrompt("Sorry, I did not hear you.", True)]
    assert call.outcome.attempts == 1
    call.at(14.0).prompt_finished()
    assert call.session.next_deadline == pytest.approx(19.0)
    # max_retries 1: the second silence leads to the keypad menu.
    assert call.wait(19.0) == [PlayPrompt(MENU, True)]
    assert call.session.step == "menu" and call.outcome.attempts == 2
    kinds = [kind for _, kind, _ in call.outcome.events]
    assert kinds.count("no_input") == 2 and "retries_exhausted" in kinds


def test_no_match_reprompts_with_the_no_match_text() -> None:
    call = Call().to_ask()
    actions = call.say("I like turtles")
    assert actions[-1] == PlayPrompt("Sorry, I did not get that.", True)
    assert call.outcome.transcript == ["I like turtles"] and call.outcome.attempts == 1
    # The second try succeeds.
    call.prompt_finished()
    assert of(PlayPrompt, call.say("a refill please")) == [
        PlayPrompt("Connecting you about a refill.", False)
    ]
    assert call.outcome.attempts == 2 and call.outcome.queue == "pharmacy"


def test_an_empty_final_is_a_no_match() -> None:
    call = Call().to_ask()
    assert call.say("")[-1] == PlayPrompt("Sorry, I did not get that.", True)
    assert call.outcome.transcript == []


def test_the_final_not_arriving_in_time_counts_as_a_no_match() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    call.speech_ended(9.0)  # FinishUtterance at 9.6; the final is due by 11.1
    assert call.wait(11.0) == []
    assert call.wait(11.2) == [CancelUtterance(), PlayPrompt("Sorry, I did not get that.", True)]
    assert "finalize_timeout" in [kind for _, kind, _ in call.outcome.events]
    # A final that turns up after all is ignored.
    assert call.hypothesis(final("my tooth")) == [] and call.outcome.transcript == []


def test_speech_longer_than_max_speech_is_cut_and_finalized() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    assert call.wait(18.0) == [FinishUtterance()]  # max_speech_ms 10000
    assert call.outcome.last_speech_end_s == 18.0
    assert of(PlayPrompt, call.hypothesis(final("my bill is wrong")))


def test_the_menu_takes_keys_and_the_options_names_by_speech() -> None:
    call = Call().to_ask()
    call.wait(12.0)
    call.at(14.0).prompt_finished()
    call.wait(19.0)  # the menu plays
    call.at(25.0).prompt_finished()
    assert call.dtmf("4") == [PlayPrompt("That is not a choice.", True)]
    call.at(27.0).prompt_finished()
    actions = call.say("bills")
    assert actions[-1] == PlayPrompt("Connecting you about a bill.", False)
    assert (call.outcome.method, call.outcome.intent) == ("speech", "billing")


def test_a_menu_key_picks_its_intent_with_the_options_priority() -> None:
    call = Call().to_ask()
    call.wait(12.0), call.at(14.0).prompt_finished(), call.wait(19.0)
    call.at(25.0).prompt_finished()
    call.dtmf("2")
    assert call.at(27.0).prompt_finished() == [Transfer("pharmacy", "refill", 7)]
    assert call.outcome.method == "dtmf" and call.outcome.decision_latency_ms is None


def test_a_menu_key_may_name_a_fixed_transfer_step() -> None:
    call = Call().to_ask()
    call.wait(12.0), call.at(14.0).prompt_finished(), call.wait(19.0)
    assert call.dtmf("5") == [StopPrompt(), Transfer("nurse", None, 20)]


def test_when_the_menu_fails_too_the_caller_reaches_the_operator() -> None:
    call = Call().to_ask()
    call.wait(12.0), call.at(14.0).prompt_finished(), call.wait(19.0)
    call.at(25.0).prompt_finished()
    call.dtmf("8")  # not a choice: reprompt
    call.at(27.0).prompt_finished()
    assert call.wait(32.0) == [PlayPrompt("Connecting you to an operator.", False)]
    assert call.at(34.0).prompt_finished() == [Transfer("operator", None, 0)]
    assert call.outcome.method == "operator"


# -- confirmation --------------------------------------------------------------------------


def test_a_low_confidence_match_is_confirmed_and_yes_transfers() -> None:
    call = Call().to_ask()
    actions = call.say("my tooth", confidence=0.4)
    assert actions[-1] == PlayPrompt("You said a tooth problem. Is that right?", True)
    call.prompt_finished()
    (start,) = call.speech_started(call.now + 0.5)
    assert isinstance(start, StartUtterance) and start.context.grammar is not None
    assert {"yes", "no", "operator"} <= set(start.context.grammar)
    call.speech_ended(call.now + 0.3)
    actions = call.hypothesis(final("yes", 0.95))
    assert actions == [PlayPrompt("Connecting you to the dental desk.", False)]
    out = call.outcome
    assert (out.intent, out.confidence, out.confirmed, out.method) == (
        "dental",
        0.4,
        True,
        "speech",
    )
    assert out.decision_latency_ms is not None and out.transcript == ["my tooth", "yes"]


def test_no_to_the_confirmation_asks_again_and_counts_as_a_failed_try() -> None:
    call = Call().to_ask()
    call.say("my tooth", confidence=0.4)
    call.prompt_finished()
    assert call.say("no")[-1] == PlayPrompt("Sorry, I did not get that.", True)
    assert call.session.step == "ask" and call.outcome.confirmed is False
    call.prompt_finished()
    call.say("my tooth", confidence=0.4)
    call.prompt_finished()
    assert call.say("no that's not right")[-1] == PlayPrompt(MENU, True)  # retries used up


def test_confirmation_by_keys_one_yes_two_no() -> None:
    call = Call().to_ask()
    call.say("my bill", confidence=0.5)
    assert call.dtmf("1") == [StopPrompt(), PlayPrompt("Connecting you about a bill.", False)]
    assert call.outcome.confirmed is True and call.outcome.decision_latency_ms is None
    call = Call().to_ask()
    call.say("my bill", confidence=0.5)
    call.prompt_finished()
    assert call.dtmf("2") == [PlayPrompt("Sorry, I did not get that.", True)]


def test_an_unclear_answer_to_the_confirmation_reprompts_it() -> None:
    call = Call().to_ask()
    call.say("my tooth", confidence=0.4)
    call.prompt_finished()
    assert call.say("maybe")[-1] == PlayPrompt("Please say yes or no.", True)


# -- emergency and operator ------------------------------------------------------------------


def test_an_emergency_transfers_at_once_with_top_priority_and_no_confirmation() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    call.speech_ended(9.0)
    actions = call.hypothesis(final("pain in my chest", 0.3))  # low confidence: still no confirm
    assert actions == [Transfer("emergency", "emergency", 100)]
    out = call.outcome
    assert (out.method, out.confirmed, out.priority, out.queue) == (
        "emergency",
        None,
        100,
        "emergency",
    )
    assert call.session.finished and out.decision_latency_ms == pytest.approx(800.0)


def test_key_nine_in_the_menu_is_an_emergency_too() -> None:
    call = Call().to_ask()
    call.wait(12.0), call.at(14.0).prompt_finished(), call.wait(19.0)
    assert call.dtmf("9") == [StopPrompt(), Transfer("emergency", "emergency", 100)]
    assert call.outcome.method == "emergency"


def _in_step(step: str) -> Call:
    """A call that has reached ``step`` (its prompt playing, or waiting for input)."""
    call = Call()
    call.start()
    if step == "welcome":
        return call
    call.at(2.0).prompt_finished()
    if step == "notice":
        return call
    call.at(4.0).prompt_finished()
    call.at(7.0).prompt_finished()
    if step == "ask":
        return call
    if step == "check":
        call.say("my tooth", confidence=0.4)
        call.prompt_finished()
        return call
    call.wait(12.0), call.at(14.0).prompt_finished(), call.wait(19.0)
    return call


@pytest.mark.parametrize("step", ["welcome", "ask", "check", "menu"])
def test_key_zero_reaches_the_operator_from_any_step(step: str) -> None:
    call = _in_step(step)
    actions = call.dtmf("0")
    assert actions[-1] == PlayPrompt("Connecting you to an operator.", False)
    assert call.prompt_finished() == [Transfer("operator", None, 0)]
    assert call.outcome.method == "operator" and call.outcome.decision_latency_ms is None


def test_key_zero_during_a_message_that_is_never_cut_acts_when_it_ends() -> None:
    call = _in_step("notice")
    assert call.dtmf("0") == []
    assert call.prompt_finished() == [PlayPrompt("Connecting you to an operator.", False)]


@pytest.mark.parametrize("step", ["ask", "check", "menu"])
def test_saying_operator_reaches_the_operator_from_any_step(step: str) -> None:
    call = _in_step(step)
    call.prompt_finished()
    actions = call.say("operator please")
    assert actions[-1] == PlayPrompt("Connecting you to an operator.", False)
    assert call.outcome.method == "operator" and call.outcome.decision_latency_ms is not None


def test_an_emergency_wins_over_asking_for_the_operator() -> None:
    call = Call().to_ask()
    assert call.say("get me an operator my chest hurts")[-1] == Transfer(
        "emergency", "emergency", 100
    )


# -- keys during a listen step -----------------------------------------------------------------


def test_a_key_while_the_caller_speaks_cancels_the_utterance() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    actions = call.dtmf("7")  # billing in the ask step's dtmf map
    assert actions == [CancelUtterance(), PlayPrompt("Connecting you about a bill.", False)]
    assert call.hypothesis(final("my tooth")) == []  # the cancelled utterance's result
    assert call.outcome.method == "dtmf" and call.outcome.intent == "billing"


def test_a_key_during_the_ask_prompt_stops_it() -> None:
    call = Call()
    call.start(), call.at(2.0).prompt_finished(), call.at(4.0).prompt_finished()
    assert call.dtmf("7") == [StopPrompt(), PlayPrompt("Connecting you about a bill.", False)]


def test_a_key_the_listen_step_does_not_know_goes_to_its_menu_and_is_used_there() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    call.speech_ended(9.0)  # finalizing
    actions = call.dtmf("1")  # not in ask's map; the menu's 1 is the dentist
    assert actions == [CancelUtterance(), PlayPrompt("Connecting you to the dental desk.", False)]
    assert call.session.next_deadline is None


def test_a_key_no_step_knows_plays_the_menu() -> None:
    call = Call().to_ask()
    assert call.dtmf("8") == [PlayPrompt(MENU, True)]


# -- ending ----------------------------------------------------------------------------------


def test_the_caller_hanging_up_mid_flow_ends_the_session_cleanly() -> None:
    call = Call().to_ask()
    call.speech_started(8.0)
    assert call.session.on_hangup(8.5) == [CancelUtterance()]
    out = call.outcome
    assert call.session.finished and call.session.next_deadline is None
    assert (out.method, out.intent, out.queue, out.ended_by) == (
        "none",
        None,
        None,
        "caller_hangup",
    )
    # Nothing more happens to a finished session.
    assert call.speech_ended(9.0) == [] and call.dtmf("0") == [] and call.wait(60.0) == []
    assert call.hypothesis(final("my tooth")) == [] and call.session.on_hangup(9.0) == []


def test_a_hangup_step_says_its_message_and_hangs_up() -> None:
    text = TEST_FLOW.replace("    next: notice", "    next: goodbye")
    call = Call(text)
    call.start()
    assert call.at(2.0).prompt_finished() == [PlayPrompt("Goodbye.", False)]
    assert call.at(3.0).prompt_finished() == [Hangup("caller done")]
    assert call.outcome.ended_by == "hangup" and call.outcome.method == "none"


def test_the_outcome_is_json_ready_and_tells_the_story() -> None:
    call = Call().to_ask()
    call.say("my tooth", confidence=0.4)
    call.prompt_finished()
    call.say("yes")
    call.prompt_finished()
    data = call.outcome.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["call_id"] == "call-7" and data["queue"] == "dental"
    assert data["prompts"] == [
        "Welcome to Test Hospital.", "Calls are recorded.", ASK,
        "You said a tooth problem. Is that right?", "Connecting you to the dental desk.",
    ]  # fmt: skip
    kinds = [kind for _, kind, _ in call.outcome.events]
    assert kinds[:2] == ["start", "step"] and kinds[-1] == "transfer"
    assert {"speech_start", "speech_end", "final", "match", "confirm", "decision"} <= set(kinds)
    times = [t for t, _, _ in call.outcome.events]
    assert times == sorted(times)


def test_the_dialogue_holds_both_sides_in_order_with_the_callers_confidence() -> None:
    call = Call().to_ask()
    call.say("my tooth", confidence=0.4)
    call.prompt_finished()
    call.say("yes")
    dialogue = call.outcome.to_dict()["dialogue"]
    said = [(d["speaker"], d["text"]) for d in dialogue]
    assert said == [
        ("ivr", "Welcome to Test Hospital."), ("ivr", "Calls are recorded."), ("ivr", ASK),
        ("customer", "my tooth"), ("ivr", "You said a tooth problem. Is that right?"),
        ("customer", "yes"), ("ivr", "Connecting you to the dental desk."),
    ]  # fmt: skip
    assert dialogue[3]["confidence"] == pytest.approx(0.4)
    assert dialogue[0]["confidence"] is None
    assert [d["at"] for d in dialogue] == sorted(d["at"] for d in dialogue)
