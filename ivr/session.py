"""One call through a flow: a sans-IO state machine fed events and ``now``.

The server feeds an ``IvrSession`` what the media core and the recognizer
report (prompt finished, speech started/ended on the media clock, hypotheses,
DTMF digits, hang-up) and carries out the actions each input returns, in
order. The session keeps at most one deadline (``next_deadline``); the
server's sweep loop calls ``on_deadline(now)`` once ``now`` has reached it, so
there is no timer per call. Nothing here imports asyncio or sockets.

Phases of the current step, and what moves them (one row per transition)::

    phase       input                 step            actions -> next phase
    PLAYING     prompt finished       prompt/message  -> the next step
    PLAYING     prompt finished       listen/confirm/ -> WAITING (no-input deadline)
                                      menu
    PLAYING     prompt finished       transfer        Transfer -> DONE
    PLAYING     prompt finished       hangup          Hangup -> DONE
    PLAYING     speech started *      prompt          StopPrompt -> next step, which hears it
    PLAYING     speech started *      input step      StopPrompt, StartUtterance -> HEARING
    PLAYING     digit *               any but         StopPrompt, the digit is handled
                                      transfer
    PLAYING     digit (not barge-in)  any but         kept, handled when the prompt finishes
                                      transfer
    WAITING     speech started        input step      StartUtterance -> HEARING (max-speech)
    WAITING     deadline              input step      no-input: reprompt, or on_failure
    HEARING     speech ended          input step      FinishUtterance -> FINALIZING
    HEARING     deadline              input step      FinishUtterance -> FINALIZING
    HEARING/    final hypothesis      input step      match -> transfer, confirm,
    FINALIZING                                        reprompt or on_failure
    FINALIZING  deadline              input step      CancelUtterance; no-match
    HEARING/    digit                 input step      CancelUtterance; the digit is handled
    FINALIZING
    any         caller hang-up                        CancelUtterance if open -> DONE

    * only while a prompt that allows barge-in is playing.

The operator key, or an operator phrase in any final, reaches the operator
step from every step but a transfer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from asr.engine import RecognitionContext
from asr.results import Hypothesis
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
from ivr.flow import (
    Choice,
    ConfirmStep,
    Flow,
    HangupStep,
    InputStep,
    IntentSource,
    ListenStep,
    MenuStep,
    MessageStep,
    PromptStep,
    Step,
    TransferStep,
    normalize,
    render,
    says,
)
from ivr.outcome import Ending, IvrOutcome, Method

# A listen step asks an open question, so its recognizer also admits everyday English
# beyond the intent phrases (RecognitionContext.general_english): routed 544 of 635
# telephone utterances (five voices) against 526 with the phrases' words alone.
OPEN_QUESTION_GENERAL_ENGLISH = 0.2

class Phase(enum.Enum):
    """Where the current step is."""

    IDLE = "idle"  # not started
    PLAYING = "playing"  # the step's prompt or message is playing
    WAITING = "waiting"  # an input step waits for speech or a key (no-input deadline)
    HEARING = "hearing"  # an utterance is open (max-speech deadline)
    FINALIZING = "finalizing"  # the endpoint is reached; waiting for the final
    DONE = "done"


@dataclass(frozen=True, slots=True)
class _Decision:
    """Where the call goes, and how that was decided."""

    intent: str | None
    label: str | None
    queue: str | None
    priority: int | None
    confidence: float | None
    method: Method
    by_speech: bool


class IvrSession:
    """One call's run through ``flow``; see the module docstring for the table."""

    def __init__(self, flow: Flow, matcher: IntentSource | None, call_id: str) -> None:
        self.flow = flow
        self.matcher = matcher if matcher is not None else flow.matcher
        self.call_id = call_id
        self.outcome = IvrOutcome(call_id)
        self._phase = Phase.IDLE
        self._step: Step | None = None
        self._deadline: float | None = None
        self._barge_in = False  # the playing prompt may be cut
        self._held_digit: str | None = None  # pressed during a prompt that is never cut
        self._failures: dict[str, int] = {}
        self._pending: _Decision | None = None  # what a confirm step asks about
        self._decision: _Decision | None = None
        self._contexts: dict[str, RecognitionContext] = {}

    # -- what the server reads -------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        """When ``on_deadline`` is due (media clock seconds), or ``None``."""
        return self._deadline

    @property
    def finished(self) -> bool:
        """Whether the session has transferred or hung up (or the caller did)."""
        return self._phase is Phase.DONE

    @property
    def phase(self) -> Phase:
        """The current step's phase."""
        return self._phase

    @property
    def step(self) -> str | None:
        """The current step's name."""
        return self._step.name if self._step is not None else None

    # -- inputs ------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Enter the flow's first step."""
        if self._phase is not Phase.IDLE:
            return []
        self._event(now, "start", self.flow.name)
        return self._enter(self.flow.start, now)

    def on_prompt_finished(self, now: float) -> list[Action]:
        """The prompt last played has played to its end."""
        if self._phase is not Phase.PLAYING or self._step is None:
            return []
        step, digit = self._step, self._held_digit
        self._held_digit = None
        if isinstance(step, TransferStep):
            return self._transfer(step, now)
        if isinstance(step, HangupStep):
            if digit == self.flow.operator.key:
                return self._operator(now, by_speech=False)
            return self._hangup(step.reason, now)
        if isinstance(step, PromptStep | MessageStep):
            return self._go(step.next, now, digit=digit)
        if digit is not None:
            self._phase = Phase.WAITING
            return self._key(step, digit, now)
        self._phase = Phase.WAITING
        self._deadline = now + self.flow.endpointing.no_input_ms / 1000.0
        return []

    def on_speech_started(self, now: float, at_s: float) -> list[Action]:
        """The VAD heard the caller start speaking at ``at_s``."""
        step = self._step
        if self._phase is Phase.PLAYING and self._barge_in:
            self._event(now, "barge_in", f"{at_s:.3f}")
            actions: list[Action] = [StopPrompt()]
            self._barge_in = False
            if isinstance(step, PromptStep):
                return actions + self._go(step.next, now, hearing_at=at_s)
            if isinstance(step, ListenStep | ConfirmStep | MenuStep):
                return actions + self._open_utterance(step, now, at_s)
            return actions  # pragma: no cover - only prompt and input steps allow barge-in
        if self._phase is Phase.WAITING and isinstance(step, ListenStep | ConfirmStep | MenuStep):
            return self._open_utterance(step, now, at_s)
        return []

    def on_speech_ended(self, now: float, at_s: float) -> list[Action]:
        """The VAD's hangover ran out; the caller's last voiced frame ended at ``at_s``."""
        if self._phase is not Phase.HEARING:
            return []
        return self._endpoint(now, at_s, "speech_end")

    def on_hypothesis(self, now: float, hyp: Hypothesis) -> list[Action]:
        """A result for the open utterance; partials are not acted on."""
        step = self._step
        if not hyp.final or self._phase not in (Phase.HEARING, Phase.FINALIZING):
            return []
        if not isinstance(step, ListenStep | ConfirmStep | MenuStep):
            return []  # pragma: no cover - utterances are open only in input steps
        if self._phase is Phase.HEARING:
            # The recognizer's own endpointer closed the utterance before the VAD did.
            self.outcome.last_speech_end_s = now
        self._deadline = None
        self._phase = Phase.WAITING
        self._event(now, "final", f"{hyp.text!r} {hyp.confidence:.2f}")
        if hyp.text.strip():
            self.outcome.transcript.append(hyp.text)
            self.outcome.dialogue.append((now, "customer", hyp.text, hyp.confidence))
        text = normalize(hyp.text)
        if isinstance(step, ListenStep):
            self.outcome.attempts += 1
            return self._listen_final(step, hyp, text, now)
        if isinstance(step, ConfirmStep):
            return self._confirm_final(step, text, now)
        return self._menu_final(step, hyp, text, now)

    def on_dtmf(self, now: float, digit: str) -> list[Action]:
        """The caller pressed ``digit``."""
        if self._phase in (Phase.IDLE, Phase.DONE) or self._step is None:
            return []
        step = self._step
        self.outcome.digits.append(digit)
        self._event(now, "dtmf", digit)
        self.outcome.dialogue.append((now, "customer", f"[key {digit}]", None))
        if isinstance(step, TransferStep):
            return []  # already on the way to a person
        if self._phase is Phase.PLAYING:
            if not self._barge_in:
                if self._held_digit is None:
                    self._held_digit = digit
                return []
            self._barge_in = False
            actions: list[Action] = [StopPrompt()]
            if isinstance(step, PromptStep):
                return actions + self._go(step.next, now, digit=digit)
            if isinstance(step, ListenStep | ConfirmStep | MenuStep):
                self._phase = Phase.WAITING
                return actions + self._key(step, digit, now)
            return actions  # pragma: no cover - only prompt and input steps allow barge-in
        actions = []
        if self._phase in (Phase.HEARING, Phase.FINALIZING):
            actions.append(CancelUtterance())
            self._event(now, "cancel_utterance", "dtmf")
        self._phase = Phase.WAITING
        self._deadline = None
        if isinstance(step, ListenStep | ConfirmStep | MenuStep):
            return actions + self._key(step, digit, now)
        return actions  # pragma: no cover - only input steps wait or hear

    def on_deadline(self, now: float) -> list[Action]:
        """The server's sweep found ``now >= next_deadline``."""
        step = self._step
        if self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        if not isinstance(step, ListenStep | ConfirmStep | MenuStep):
            return []  # pragma: no cover - deadlines are set only in input steps
        if self._phase is Phase.WAITING:
            if isinstance(step, ListenStep):
                self.outcome.attempts += 1
            return self._fail(step, "no_input", now)
        if self._phase is Phase.HEARING:
            return self._endpoint(now, now, "max_speech")
        if self._phase is Phase.FINALIZING:
            self._event(now, "finalize_timeout", step.name)
            self._phase = Phase.WAITING
            if isinstance(step, ListenStep):
                self.outcome.attempts += 1
            return [CancelUtterance(), *self._fail(step, "no_match", now)]
        return []  # pragma: no cover

    def on_hangup(self, now: float) -> list[Action]:
        """The caller hung up; the session ends where it is."""
        if self._phase is Phase.DONE:
            return []
        actions: list[Action] = []
        if self._phase in (Phase.HEARING, Phase.FINALIZING):
            actions.append(CancelUtterance())
        self._event(now, "caller_hangup", self.step or "")
        self._finish("caller_hangup")
        return actions

    # -- steps -------------------------------------------------------------------

    def _go(
        self, name: str, now: float, *, hearing_at: float | None = None, digit: str | None = None
    ) -> list[Action]:
        if digit is not None and digit == self.flow.operator.key:
            return self._operator(now, by_speech=False)
        return self._enter(name, now, hearing_at=hearing_at, digit=digit)

    def _enter(
        self,
        name: str,
        now: float,
        *,
        reprompt: str | None = None,
        hearing_at: float | None = None,
        digit: str | None = None,
    ) -> list[Action]:
        step = self.flow.steps[name]
        self._step, self._deadline, self._held_digit = step, None, None
        self._event(now, "step", name)
        if isinstance(step, PromptStep):
            return self._play(step.prompt, step.barge_in, now)
        if isinstance(step, MessageStep):
            return self._play(step.prompt, False, now)
        if isinstance(step, TransferStep):
            return self._enter_transfer(step, now)
        if isinstance(step, HangupStep):
            if step.message is None:
                return self._hangup(step.reason, now)
            return self._play(step.message, False, now)
        if digit is not None and self._accepts(step, digit):
            self._phase = Phase.WAITING
            return self._key(step, digit, now)
        if hearing_at is not None:
            return self._open_utterance(step, now, hearing_at)
        prompt = step.prompt
        if reprompt == "no_input":
            prompt = step.no_input
        elif reprompt == "no_match":
            prompt = step.no_match
        return self._play(prompt, step.barge_in, now)

    def _play(self, prompt: Prompt, barge_in: bool, now: float) -> list[Action]:
        if isinstance(prompt, str):
            label = self._pending.label if self._pending else None
            label = label or (self._decision.label if self._decision else None)
            prompt = render(prompt, label or "")
        self._phase, self._barge_in = Phase.PLAYING, barge_in
        self.outcome.prompts.append(prompt)
        said = prompt if isinstance(prompt, str) else f"[{prompt.name}]"  # a file: its name
        self.outcome.dialogue.append((now, "ivr", said, None))
        self._event(now, "prompt", str(prompt))
        return [PlayPrompt(prompt, barge_in)]

    def _open_utterance(self, step: InputStep, now: float, at_s: float) -> list[Action]:
        self._phase = Phase.HEARING
        self._deadline = at_s + self.flow.endpointing.max_speech_ms / 1000.0
        self._event(now, "speech_start", f"{at_s:.3f}")
        return [StartUtterance(self._context(step))]

    def _endpoint(self, now: float, at_s: float, why: str) -> list[Action]:
        self.outcome.last_speech_end_s = at_s
        self._phase = Phase.FINALIZING
        self._deadline = now + self.flow.endpointing.finalize_timeout_ms / 1000.0
        self._event(now, why, f"{at_s:.3f}")
        return [FinishUtterance()]

    def recognition_contexts(self) -> tuple[RecognitionContext, ...]:
        """What the flow's input steps listen with: the server has them compiled at start."""
        steps = self.flow.steps.values()
        return tuple(self._context(step) for step in steps if isinstance(step, InputStep))

    def _context(self, step: InputStep) -> RecognitionContext:
        context = self._contexts.get(step.name)
        if context is None:
            name = f"{self.flow.name}.{step.name}"
            operator = self.flow.operator.phrases
            if isinstance(step, ConfirmStep):
                context = RecognitionContext(
                    grammar=_unique(step.yes + step.no + operator), name=name
                )
            elif isinstance(step, MenuStep):
                names = tuple(n for choice in step.options.values() for n in choice.names)
                context = RecognitionContext(phrases=_unique(names + operator), name=name)
            else:
                context = RecognitionContext(
                    phrases=_unique(tuple(self.matcher.phrases()) + operator),
                    name=name,
                    general_english=OPEN_QUESTION_GENERAL_ENGLISH,
                )
            self._contexts[step.name] = context
        return context

    # -- speech decisions ------------------------------------------------------------

    def _listen_final(
        self, step: ListenStep, hyp: Hypothesis, text: str, now: float
    ) -> list[Action]:
        if not text:
            return self._fail(step, "no_match", now)
        match = self.matcher.match_best(hyp)
        self._event(now, "match", f"{match.intent} {match.confidence:.2f}")
        emergency = self.flow.emergency
        if match.intent is not None and emergency and match.intent in emergency.intents:
            return self._emergency(match.intent, match.label, match.queue, match.priority,
                                   match.confidence, True, now)  # fmt: skip
        if says(text, self.flow.operator.phrases) or (
            match.intent in self.flow.operator.intents
            and match.confidence >= self.flow.confirm_below
        ):
            return self._operator(now, by_speech=True)
        if match.intent is None:
            return self._fail(step, "no_match", now)
        decision = _Decision(
            match.intent, match.label, match.queue or self.matcher.queue_of(match.intent),
            match.priority, match.confidence, "speech", True,
        )  # fmt: skip
        if match.confidence >= self.flow.confirm_below:
            return self._decide(decision, step.on_intent, now)
        if step.confirm is None:
            return self._fail(step, "no_match", now)
        self._pending = decision  # the outcome records it only once confirmed
        return self._enter(step.confirm, now)

    def _confirm_final(self, step: ConfirmStep, text: str, now: float) -> list[Action]:
        if says(text, self.flow.operator.phrases):
            return self._operator(now, by_speech=True)
        # "no" first: "that's not right" also holds "right".
        if says(text, step.no):
            return self._answer(step, False, now)
        if says(text, step.yes):
            return self._answer(step, True, now, by_speech=True)
        return self._fail(step, "no_match", now)

    def _menu_final(self, step: MenuStep, hyp: Hypothesis, text: str, now: float) -> list[Action]:
        if not text:
            return self._fail(step, "no_match", now)
        emergency = self.flow.emergency
        match = self.matcher.match_best(hyp)
        self._event(now, "match", f"{match.intent} {match.confidence:.2f}")
        if match.intent is not None and emergency and match.intent in emergency.intents:
            return self._emergency(match.intent, match.label, match.queue, match.priority,
                                   match.confidence, True, now)  # fmt: skip
        if says(text, self.flow.operator.phrases):
            return self._operator(now, by_speech=True)
        for choice in step.options.values():
            if says(text, choice.names):
                return self._choose(step, choice, now, by_speech=True)
        for choice in step.options.values():
            if choice.intent == match.intent and match.confidence >= self.flow.confirm_below:
                return self._choose(step, choice, now, by_speech=True)
        return self._fail(step, "no_match", now)

    # -- keys ------------------------------------------------------------------------

    def _accepts(self, step: InputStep, digit: str) -> bool:
        if digit == self.flow.operator.key:
            return True
        if isinstance(step, ConfirmStep):
            return digit in (step.yes_key, step.no_key)
        if isinstance(step, MenuStep):
            return digit in step.options
        return digit in step.dtmf

    def _key(self, step: InputStep, digit: str, now: float) -> list[Action]:
        if digit == self.flow.operator.key:
            return self._operator(now, by_speech=False)
        if isinstance(step, ConfirmStep):
            if digit == step.yes_key:
                return self._answer(step, True, now, by_speech=False)
            if digit == step.no_key:
                return self._answer(step, False, now)
            return self._fail(step, "no_match", now)
        if isinstance(step, MenuStep):
            if digit in step.options:
                return self._choose(step, step.options[digit], now, by_speech=False)
            return self._fail(step, "no_match", now)
        if digit in step.dtmf:
            return self._choose(step, step.dtmf[digit], now, by_speech=False)
        # A key the listen step does not know: the caller wants the keypad menu.
        target = self.flow.steps[step.on_failure]
        if isinstance(target, MenuStep):
            return self._enter(target.name, now, digit=digit)
        return self._fail(step, "no_match", now)

    def _choose(
        self, step: ListenStep | MenuStep, choice: Choice, now: float, *, by_speech: bool
    ) -> list[Action]:
        method: Method = "speech" if by_speech else "dtmf"
        intent = choice.intent
        if intent is None:
            assert choice.step is not None  # the loader requires one of them
            decision = _Decision(None, None, None, choice.priority, None, method, by_speech)
            return self._decide(decision, choice.step, now)
        label, queue = self.matcher.label_of(intent), self.matcher.queue_of(intent)
        emergency = self.flow.emergency
        if emergency and intent in emergency.intents:
            return self._emergency(intent, label, queue, choice.priority, None, by_speech, now)
        if intent in self.flow.operator.intents:
            return self._operator(now, by_speech=by_speech)
        decision = _Decision(intent, label, queue, choice.priority, None, method, by_speech)
        return self._decide(decision, step.on_intent, now)

    # -- decisions and endings -------------------------------------------------------

    def _answer(
        self, step: ConfirmStep, yes: bool, now: float, *, by_speech: bool = False
    ) -> list[Action]:
        self.outcome.confirmed = yes
        self._event(now, "confirm", "yes" if yes else "no")
        pending, self._pending = self._pending, None
        if yes and pending is not None:
            return self._decide(
                _Decision(pending.intent, pending.label, pending.queue, pending.priority,
                          pending.confidence, "speech", by_speech),
                step.on_yes, now,
            )  # fmt: skip
        listen = self.flow.steps[step.on_no]
        assert isinstance(listen, ListenStep)  # the loader checks on_no
        return self._fail(listen, "no_match", now)

    def _emergency(
        self, intent: str, label: str | None, queue: str | None, priority: int | None,
        confidence: float | None, by_speech: bool, now: float,
    ) -> list[Action]:  # fmt: skip
        assert self.flow.emergency is not None
        decision = _Decision(intent, label, queue or self.matcher.queue_of(intent), priority,
                             confidence, "emergency", by_speech)  # fmt: skip
        return self._decide(decision, self.flow.emergency.step, now)

    def _operator(self, now: float, *, by_speech: bool) -> list[Action]:
        decision = _Decision(None, None, None, None, None, "operator", by_speech)
        return self._decide(decision, self.flow.operator.step, now)

    def _decide(self, decision: _Decision, step_name: str, now: float) -> list[Action]:
        self._decision, self._pending = decision, None
        out = self.outcome
        out.intent, out.label, out.confidence = decision.intent, decision.label, decision.confidence
        out.method, out.decided_by_speech, out.decision_at = (
            decision.method,
            decision.by_speech,
            now,
        )
        self._event(now, "decision", f"{decision.method} {decision.intent}")
        return self._enter(step_name, now)

    def _fail(self, step: InputStep, kind: str, now: float) -> list[Action]:
        count = self._failures[step.name] = self._failures.get(step.name, 0) + 1
        self._event(now, kind, f"{step.name} {count}")
        if count > step.max_retries:
            self._event(now, "retries_exhausted", step.name)
            return self._enter(step.on_failure, now)
        return self._enter(step.name, now, reprompt=kind)

    def _enter_transfer(self, step: TransferStep, now: float) -> list[Action]:
        if self._decision is None:
            # Reached without a decision (on_failure, or a fixed route): the step decides.
            method: Method = "operator" if step.name == self.flow.operator.step else "none"
            self._decide_quietly(_Decision(None, None, None, None, None, method, False), now)
        decision = self._decision
        assert decision is not None
        queue = step.queue or decision.queue or self._operator_queue()
        priority = step.priority if step.priority is not None else (decision.priority or 0)
        self.outcome.queue, self.outcome.priority = queue, priority
        message = step.messages.get(decision.intent or "", step.message)
        if message is None:
            return self._transfer(step, now)
        return self._play(message, False, now)

    def _decide_quietly(self, decision: _Decision, now: float) -> None:
        self._decision = decision
        self.outcome.method, self.outcome.decision_at = decision.method, now
        self.outcome.decided_by_speech = False
        self._event(now, "decision", f"{decision.method} None")

    def _operator_queue(self) -> str:
        operator = self.flow.steps[self.flow.operator.step]
        assert isinstance(operator, TransferStep) and operator.queue is not None
        return operator.queue

    def _transfer(self, step: TransferStep, now: float) -> list[Action]:
        decision = self._decision
        queue, priority = self.outcome.queue, self.outcome.priority
        assert decision is not None and queue is not None and priority is not None
        self._event(now, "transfer", f"{queue} {priority}")
        self._finish("transfer")
        return [Transfer(queue, decision.intent, priority)]

    def _hangup(self, reason: str, now: float) -> list[Action]:
        self._event(now, "hangup", reason)
        self._finish("hangup")
        return [Hangup(reason)]

    def _finish(self, ended_by: Ending) -> None:
        self._phase, self._deadline, self._barge_in = Phase.DONE, None, False
        self.outcome.ended_by = ended_by

    def _event(self, now: float, kind: str, detail: str) -> None:
        self.outcome.events.append((now, kind, detail))


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
