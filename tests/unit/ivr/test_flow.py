"""The flow file: what a valid flow loads into, and how a bad one is refused.

Every refusal names the file, the line and the field at fault. The flows here
use ``KeywordMatcher``, a small real matcher (keyword -> intent) with the
interface of ``ivr.intents.IntentMatcher``; ``test_session.py`` uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from asr.results import Hypothesis, Word
from ivr.flow import (
    ConfirmStep,
    Flow,
    ListenStep,
    MenuStep,
    MessageStep,
    PromptStep,
    TransferStep,
    normalize,
)
from ivr.source import FlowError, Lines

FLOWS_DIR = Path(__file__).resolve().parents[3] / "ivr" / "flows"


@dataclass(frozen=True)
class KeywordMatch:
    intent: str | None
    queue: str | None
    confidence: float
    priority: int
    reason: str
    label: str
    alternatives: tuple[tuple[str, float], ...] = ()


class KeywordMatcher:
    """The first intent one of whose keywords was said; confidence = the words' mean."""

    def __init__(self, intents: dict[str, dict[str, Any]]) -> None:
        self._intents = intents

    @classmethod
    def from_spec(cls, spec: dict[str, Any], lines: Lines, prefix: str = "") -> KeywordMatcher:
        for name, intent in spec.items():
            path = f"{prefix}.{name}" if prefix else name
            if not isinstance(intent, dict):
                raise lines.error(path, "expected a mapping")
            for key in ("queue", "label", "keywords"):
                if key not in intent:
                    raise lines.error(path, f"missing field '{key}'")
        return cls(spec)

    def match(self, text: str, words: tuple[Word, ...] | None = None) -> KeywordMatch:
        said = f" {normalize(text)} "
        confidence = sum(w.confidence for w in words) / len(words) if words else 1.0
        for name, intent in self._intents.items():
            hit = next((k for k in intent["keywords"] if f" {k} " in said), None)
            if hit is not None:
                return KeywordMatch(
                    name, intent["queue"], confidence, intent.get("priority", 0),
                    f"keyword {hit!r}", intent["label"],
                )  # fmt: skip
        return KeywordMatch(None, None, 0.0, 0, "no keyword", "")

    def match_best(self, hypothesis: Hypothesis) -> KeywordMatch:
        return self.match(hypothesis.text, hypothesis.words)

    def phrases(self) -> tuple[str, ...]:
        return tuple(f"my {k}" for i in self._intents.values() for k in i["keywords"])

    def intents(self) -> tuple[str, ...]:
        return tuple(self._intents)

    def queue_of(self, intent: str) -> str:
        queue: str = self._intents[intent]["queue"]
        return queue

    def label_of(self, intent: str) -> str:
        label: str = self._intents[intent]["label"]
        return label


TEST_FLOW = """\
name: test hospital
language: en-US
voice: {engine: espeak-ng, name: en-us}
intents:
  dental: {queue: dental, label: a tooth problem, priority: 10, keywords: [tooth, dentist]}
  refill: {queue: pharmacy, label: a refill, priority: 5, keywords: [refill, prescription]}
  billing: {queue: billing, label: a bill, priority: 5, keywords: [bill, invoice]}
  emergency: {queue: emergency, label: an emergency, priority: 100, keywords: [chest, bleeding]}
endpointing:
  {speech_end_ms: 600, finalize_timeout_ms: 1500, max_speech_ms: 10000, no_input_ms: 5000}
barge_in: {enabled: true, min_speech_ms: 150}
confirm_below: 0.6
operator: {step: to_operator}
emergency: {intents: [emergency], step: to_emergency}
start: welcome
steps:
  welcome:
    type: prompt
    prompt: Welcome to Test Hospital.
    next: notice
  notice:
    type: message
    prompt: Calls are recorded.
    next: ask
  ask:
    type: listen
    prompt: Tell me in a few words why you are calling.
    no_input: Sorry, I did not hear you.
    no_match: Sorry, I did not get that.
    max_retries: 1
    dtmf: {7: billing}
    on_intent: route
    confirm: check
    on_failure: menu
  check:
    type: confirm
    no_match: Please say yes or no.
    on_yes: route
    on_no: ask
  menu:
    type: menu
    prompt: For the dentist press 1, pharmacy 2, billing 3, a nurse 5, emergency 9.
    no_match: That is not a choice.
    options:
      1: dental
      2: {intent: refill, priority: 7}
      3: {intent: billing, say: [bills, billing]}
      5: {step: to_nurse, say: [nurse]}
      9: emergency
    on_intent: route
  route:
    type: transfer
    message: Connecting you about {label}.
    messages: {dental: Connecting you to the dental desk.}
  to_emergency: {type: transfer, queue: emergency, priority: 100}
  to_nurse: {type: transfer, queue: nurse, priority: 20}
  to_operator: {type: transfer, queue: operator, message: Connecting you to an operator.}
  goodbye: {type: hangup, message: Goodbye., reason: caller done}
"""


def load(text: str = TEST_FLOW, source: str = "test.yaml", base_dir: Path | None = None) -> Flow:
    return Flow.from_text(text, source, base_dir, matcher_factory=KeywordMatcher.from_spec)


# -- a valid flow --------------------------------------------------------------------


def test_a_valid_flow_loads_with_its_settings_and_defaults() -> None:
    flow = load()
    assert (flow.name, flow.language, flow.start) == ("test hospital", "en-US", "welcome")
    assert (flow.voice.engine, flow.voice.name) == ("espeak-ng", "en-us")  # type: ignore[union-attr]
    assert flow.endpointing.speech_end_ms == 600 and flow.endpointing.no_input_ms == 5000
    assert flow.barge_in.enabled and flow.barge_in.min_speech_ms == 150
    assert flow.confirm_below == 0.6
    assert (flow.operator.step, flow.operator.key) == ("to_operator", "0")
    assert "operator" in flow.operator.phrases
    assert flow.emergency is not None and flow.emergency.intents == {"emergency"}


def test_every_step_type_loads_into_its_model() -> None:
    steps = load().steps
    assert isinstance(steps["welcome"], PromptStep) and steps["welcome"].barge_in
    assert isinstance(steps["notice"], MessageStep) and steps["notice"].next == "ask"
    ask = steps["ask"]
    assert isinstance(ask, ListenStep)
    assert (ask.on_intent, ask.confirm, ask.on_failure, ask.max_retries) == (
        "route", "check", "menu", 1,
    )  # fmt: skip
    assert ask.dtmf["7"].intent == "billing"
    check = steps["check"]
    assert isinstance(check, ConfirmStep)
    assert check.prompt == "You said {label}. Is that right?"  # the default
    assert (check.yes_key, check.no_key) == ("1", "2") and "yes" in check.yes
    assert check.no_input == check.prompt  # reprompts default to the prompt
    assert check.on_failure == "to_operator"  # by default, the operator
    menu = steps["menu"]
    assert isinstance(menu, MenuStep)
    assert menu.options["1"].names == ("a tooth problem", "dental")  # label and name
    assert menu.options["2"].priority == 7
    assert menu.options["3"].names == ("bills", "billing")
    assert menu.options["5"].step == "to_nurse" and menu.options["5"].intent is None
    route, operator = steps["route"], steps["to_operator"]
    assert isinstance(route, TransferStep) and route.queue is None and route.priority is None
    assert isinstance(operator, TransferStep) and operator.queue == "operator"
    assert steps["goodbye"].reason == "caller done"  # type: ignore[union-attr]


def test_prompt_texts_are_every_text_the_flow_can_speak() -> None:
    texts = load().prompt_texts()
    assert texts[:2] == ("Welcome to Test Hospital.", "Calls are recorded.")
    assert "Sorry, I did not hear you." in texts
    # A confirm text for every label the flow may ask about (never the emergency).
    assert "You said a tooth problem. Is that right?" in texts
    assert "You said a bill. Is that right?" in texts
    assert "You said an emergency. Is that right?" not in texts
    # Transfer messages: per intent where given, the template for the others.
    assert "Connecting you to the dental desk." in texts
    assert "Connecting you about a refill." in texts
    assert "Connecting you about a tooth problem." not in texts
    assert "Connecting you to an operator." in texts and "Goodbye." in texts
    assert len(texts) == len(set(texts))
    assert all("{" not in text for text in texts)


def test_file_prompts_resolve_against_the_flow_file(tmp_path: Path) -> None:
    (tmp_path / "hello.wav").write_bytes(b"RIFF")
    text = TEST_FLOW.replace("prompt: Welcome to Test Hospital.", "prompt: {file: hello.wav}")
    flow = load(text, str(tmp_path / "flow.yaml"))
    assert flow.steps["welcome"].prompt == tmp_path / "hello.wav"  # type: ignore[union-attr]
    assert flow.prompt_files() == (tmp_path / "hello.wav",)
    assert "Welcome to Test Hospital." not in flow.prompt_texts()


def test_intents_may_come_from_a_file_beside_the_flow(tmp_path: Path) -> None:
    (tmp_path / "intents.yaml").write_text(
        "dental: {queue: dental, label: a tooth problem, keywords: [tooth]}\n"
        "emergency: {queue: er, label: an emergency, keywords: [chest]}\n"
        "refill: {queue: pharmacy, label: a refill, keywords: [refill]}\n"
        "billing: {queue: billing, label: a bill, keywords: [bill]}\n"
    )
    start = TEST_FLOW.index("intents:")
    end = TEST_FLOW.index("endpointing:")
    text = TEST_FLOW[:start] + "intents: intents.yaml\n" + TEST_FLOW[end:]
    (tmp_path / "flow.yaml").write_text(text)
    flow = Flow.from_file(tmp_path / "flow.yaml", matcher_factory=KeywordMatcher.from_spec)
    assert flow.matcher.queue_of("emergency") == "er"


def test_an_error_in_the_intents_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "intents.yaml").write_text("dental: {queue: dental, label: teeth}\n")
    start, end = TEST_FLOW.index("intents:"), TEST_FLOW.index("endpointing:")
    text = TEST_FLOW[:start] + "intents: intents.yaml\n" + TEST_FLOW[end:]
    with pytest.raises(FlowError) as caught:
        load(text, str(tmp_path / "flow.yaml"))
    assert caught.value.source.endswith("intents.yaml") and caught.value.line == 1


def test_an_unreachable_step_is_a_warning_not_an_error() -> None:
    flow = load()
    line = _line_of(TEST_FLOW, "  goodbye:")
    assert flow.warnings == (f"test.yaml:{line}: steps.goodbye: unreachable from start",)


# -- bad flows: each names the file, line and field --------------------------------------

# Each case: the change to TEST_FLOW (old -> new), the field at fault, and words of
# the problem. The expected line is the one the change lands on (or `_LINE_OF`).
BAD_FLOWS = [
    pytest.param(
        "  notice:\n    type: message", "  notice:\n    type: mesage",
        "steps.notice.type", "unknown step type 'mesage'", id="unknown-step-type",
    ),
    pytest.param(
        "    max_retries: 1\n    dtmf", "    max_retires: 1\n    dtmf",
        "steps.ask.max_retires", "unknown field", id="unknown-key",
    ),
    pytest.param(
        "    on_yes: route\n", "",
        "steps.check", "missing field 'on_yes'", id="missing-field",
    ),
    pytest.param(
        "    on_failure: menu", "    on_failure: mneu",
        "steps.ask.on_failure", "no step named 'mneu'", id="undefined-step",
    ),
    pytest.param(
        "    max_retries: 1\n    dtmf", "    max_retries: 9\n    dtmf",
        "steps.ask.max_retries", "9 is out of range 0..5", id="retries-out-of-range",
    ),
    pytest.param(
        "      1: dental", "      1: dentl",
        "steps.menu.options.1", "unknown intent 'dentl'", id="unknown-intent-in-menu",
    ),
    pytest.param(
        "barge_in: {enabled: true,", "barge_in: {enabled: yes please,",
        "barge_in.enabled", "expected true or false", id="wrong-type-bool",
    ),
    pytest.param(
        "max_speech_ms: 10000", "max_speech_ms: 10 s",
        "endpointing.max_speech_ms", "expected a whole number", id="wrong-type-int",
    ),
    pytest.param(
        "confirm_below: 0.6", "confirm_below: 1.5",
        "confirm_below", "out of range 0..1", id="threshold-out-of-range",
    ),
    pytest.param(
        "      9: emergency", "      0: emergency",
        "steps.menu.options.0", "operator key", id="menu-takes-the-operator-key",
    ),
    pytest.param(
        "    next: notice", "    next: check",
        "steps.welcome.next", "confirm step", id="confirm-without-a-listen",
    ),
    pytest.param(
        "    on_failure: menu", "    on_failure: route",
        "steps.ask.on_failure", "no intent is decided here", id="intent-queue-without-intent",
    ),
    pytest.param(
        "    on_intent: route\n    confirm", "    on_intent: menu\n    confirm",
        "steps.ask.on_intent", "must be a transfer step", id="on-intent-not-a-transfer",
    ),
    pytest.param(
        "message: Connecting you about {label}.", "message: Connecting you about {lable}.",
        "steps.route.message", "unknown placeholder {lable}", id="unknown-placeholder",
    ),
    pytest.param(
        "prompt: Calls are recorded.", "prompt: {file: missing.wav}",
        "steps.notice.prompt.file", "no such audio file", id="missing-audio-file",
    ),
    pytest.param(
        "operator: {step: to_operator}", "operator: {step: route}",
        "operator.step", "fixed queue", id="operator-needs-a-queue",
    ),
    pytest.param(
        "start: welcome", "start: hello",
        "start", "no step named 'hello'", id="undefined-start",
    ),
    pytest.param(
        "emergency: {intents: [emergency]", "emergency: {intents: [emergncy]",
        "emergency.intents.0", "unknown intent 'emergncy'", id="unknown-emergency-intent",
    ),
    pytest.param(
        "  emergency: {queue: emergency, label: an emergency,",
        "  emergency: {queue: emergency,",
        "intents.emergency", "missing field 'label'", id="bad-intent-spec-inline",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "problem"), BAD_FLOWS)
def test_a_bad_flow_names_the_line_and_field(
    old: str, new: str, field: str, problem: str, request: pytest.FixtureRequest
) -> None:
    assert TEST_FLOW.count(old) == 1, old
    text = TEST_FLOW.replace(old, new)
    changed = [line for line in new.split("\n") if line not in old.split("\n")]
    anchor = _LINE_OF.get(request.node.callspec.id) or changed[0]
    expected_line = _line_of(text, anchor)
    with pytest.raises(FlowError) as caught:
        load(text)
    error = caught.value
    assert (error.source, error.field_path) == ("test.yaml", field), str(error)
    assert error.line == expected_line, str(error)
    assert problem in error.problem, str(error)
    assert str(error).startswith(f"test.yaml:{expected_line}: {field}: ")


_LINE_OF = {"missing-field": "  check:"}


def _line_of(text: str, fragment: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if fragment.strip() in line]
    assert lines, fragment
    return lines[0]


def test_not_yaml_and_not_a_mapping_are_refused_with_a_line() -> None:
    with pytest.raises(FlowError) as caught:
        load("name: x\nsteps: [a, b\n")
    assert caught.value.line is not None and "not valid YAML" in str(caught.value)
    with pytest.raises(FlowError, match="steps: expected a mapping of step names"):
        load(TEST_FLOW[: TEST_FLOW.index("steps:")] + "steps: [a, b]\n")


def test_a_flow_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="nowhere.yaml: cannot read the flow"):
        Flow.from_file(tmp_path / "nowhere.yaml", matcher_factory=KeywordMatcher.from_spec)


# -- the demo flow -----------------------------------------------------------------------


def _intents_available() -> bool:
    return (FLOWS_DIR.parent / "intents.py").is_file() and (
        FLOWS_DIR / "hospital_intents.yaml"
    ).is_file()


@pytest.mark.skipif(
    not _intents_available(),
    reason="ivr/intents.py or ivr/flows/hospital_intents.yaml is not in the tree yet",
)
def test_the_hospital_demo_flow_loads_with_the_real_intents() -> None:
    flow = Flow.from_file(FLOWS_DIR / "hospital.yaml")
    assert flow.warnings == ()
    ask = flow.steps[flow.start]
    assert isinstance(ask, ListenStep) and ask.on_failure == "menu"
    assert "you can say operator at any time" in normalize(str(ask.prompt))
    menu = flow.steps["menu"]
    assert isinstance(menu, MenuStep)
    assert {k: c.intent or c.step for k, c in menu.options.items()} == {
        "1": "appointments", "2": "pharmacy", "3": "test_results", "4": "billing",
        "5": "to_nurse", "9": "emergency",
    }  # fmt: skip
    assert flow.operator.key == "0"
    queues = {s.queue for s in flow.steps.values() if isinstance(s, TransferStep)}
    assert {"emergency", "nurse", "operator"} <= queues
    texts = flow.prompt_texts()
    assert "Connecting you to the dental desk." in texts
    assert "You said an appointment. Is that right?" in texts
    assert flow.matcher.match("my tooth hurts").intent == "dental"
