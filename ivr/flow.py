"""A speech IVR flow: the YAML schema, its model, and the loader that checks it.

A flow is read once at start-up and is then immutable; every call runs it in
its own ``ivr.session.IvrSession``. Every problem found while loading raises a
``FlowError`` that names the file, line and field
(``hospital.yaml:41: steps.greet.next: no step named 'rout'``).

Schema (all ``*_ms`` are integers in milliseconds)::

    name: hospital                      # required
    language: en-US                     # required
    voice: {engine: espeak-ng, name: en-us}   # optional TTS voice
    intents: hospital_intents.yaml      # file (relative to this one) or inline mapping,
                                        # given to IntentMatcher.from_spec
    endpointing:                        # optional; defaults shown
      speech_end_ms: 700                # VAD hangover (media core)
      finalize_timeout_ms: 1500         # wait for the final after the endpoint
      max_speech_ms: 15000              # an utterance is cut here
      no_input_ms: 6000                 # silence after a prompt finished
    barge_in: {enabled: true, min_speech_ms: 200}
    confirm_below: 0.6                  # matches below this are confirmed first
    operator:                           # required: "operator" or key 0 from any step
      step: to_operator                 # a transfer step with a fixed queue
      key: "0"                          # default "0"
      phrases: [operator, agent]        # default: operator, agent, representative, ...
    emergency:                          # optional: these intents skip confirmation
      intents: [emergency]
      step: to_emergency                # a transfer step
    start: greet
    steps:
      greet:   {type: prompt, prompt: "...", next: ask}     # caller speech cuts it short
      notice:  {type: message, prompt: "...", next: ask}    # never cut
      ask:
        type: listen                    # prompt, then speech and keys together
        prompt: "Tell me in a few words why you are calling."
        on_intent: route                # a transfer step
        confirm: check                  # optional confirm step for low confidence
        dtmf: {1: appointments}         # optional key -> intent
        no_input: "..."                 # optional reprompts (default: the prompt)
        no_match: "..."
        max_retries: 1                  # re-asks after a failure (0..5, default 1)
        on_failure: menu                # default: the operator step
        barge_in: true                  # default: barge_in.enabled
      check:
        type: confirm
        prompt: "You said {label}. Is that right?"   # the default
        on_yes: route                   # a transfer step
        on_no: ask                      # a listen step (counts as a no-match there)
        yes: [yes, ...]  no: [no, ...]  keys: {yes: "1", no: "2"}   # defaults
      menu:
        type: menu
        prompt: "For appointments, press 1. ..."
        options: {1: appointments, 5: {intent: nurse, priority: 2, say: [nurse]}}
        on_intent: route
      route:
        type: transfer
        queue: billing                  # optional: default is the intent's queue
        priority: 5                     # optional: default is the intent's priority
        message: "Connecting you to {label}."   # optional, played (uncut) first
        messages: {dental: "Connecting you to the dental desk."}   # per intent
      bye: {type: hangup, message: "Goodbye.", reason: done}

Prompts are text (spoken by the TTS voice) or ``{file: path}`` (relative to the
flow file). ``{label}`` is the intent's label, allowed in confirm prompts and in
the messages of transfer steps without a fixed queue.

May import: ``asr``, ``ivr.source`` (the intent matcher is found at run time).
"""

from __future__ import annotations

import importlib
import logging
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from asr.results import Hypothesis, Word
from ivr.actions import Prompt
from ivr.source import FlowError, Lines, load_yaml

log = logging.getLogger(__name__)

DTMF_KEYS = frozenset("0123456789*#ABCD")
DEFAULT_CONFIRM_PROMPT = "You said {label}. Is that right?"
DEFAULT_YES = ("yes", "yeah", "yep", "correct", "right", "that's right", "sure")
DEFAULT_NO = ("no", "nope", "wrong", "not right", "that's wrong", "incorrect")
DEFAULT_OPERATOR_PHRASES = (
    "operator", "agent", "representative", "a person", "real person", "someone",
)  # fmt: skip


class IntentMatchLike(Protocol):
    """What ``IntentMatcher.match`` returns (``ivr.intents.IntentMatch``)."""

    @property
    def intent(self) -> str | None: ...  # noqa: D102
    @property
    def queue(self) -> str | None: ...  # noqa: D102
    @property
    def confidence(self) -> float: ...  # noqa: D102
    @property
    def priority(self) -> int: ...  # noqa: D102
    @property
    def label(self) -> str: ...  # noqa: D102


class IntentSource(Protocol):
    """Any intent matcher with the interface of ``ivr.intents.IntentMatcher``."""

    def match(self, text: str, words: tuple[Word, ...] | None = None) -> IntentMatchLike:
        """The best intent for ``text`` (``intent`` is ``None`` when nothing fits)."""

    def match_best(self, hypothesis: Hypothesis) -> IntentMatchLike:
        """The best intent of a recognizer's final, its n-best alternatives included."""

    def phrases(self) -> tuple[str, ...]:
        """Sentences for the recognizer's language model."""

    def intents(self) -> Iterable[str]:
        """Every intent name."""

    def queue_of(self, intent: str) -> str:
        """The queue an intent is routed to."""

    def label_of(self, intent: str) -> str:
        """How an intent is said back to the caller ("a dental appointment")."""


MatcherFactory = Callable[[dict[str, Any], Lines, str], IntentSource]


def default_matcher_factory(spec: dict[str, Any], lines: Lines, prefix: str) -> IntentSource:
    """``ivr.intents.IntentMatcher.from_spec``, imported when a flow is loaded."""
    module = importlib.import_module("ivr.intents")
    matcher: IntentSource = module.IntentMatcher.from_spec(spec, lines, prefix)
    return matcher


@dataclass(frozen=True, slots=True)
class Endpointing:
    """When an utterance starts, ends, and how long the session waits."""

    speech_end_ms: int = 700
    finalize_timeout_ms: int = 1500
    max_speech_ms: int = 15000
    no_input_ms: int = 6000


@dataclass(frozen=True, slots=True)
class BargeIn:
    """Whether caller speech may stop prompts (``min_speech_ms`` is the media core's)."""

    enabled: bool = True
    min_speech_ms: int = 200


@dataclass(frozen=True, slots=True)
class Voice:
    """The TTS engine and voice that speak text prompts."""

    engine: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Operator:
    """The way out to a person, open from every step."""

    step: str
    key: str = "0"
    phrases: tuple[str, ...] = DEFAULT_OPERATOR_PHRASES
    intents: frozenset[str] = frozenset()  # matches of these mean "a person, please"


@dataclass(frozen=True, slots=True)
class Emergency:
    """Intents that transfer at once, never confirmed."""

    intents: frozenset[str]
    step: str


@dataclass(frozen=True, slots=True)
class Choice:
    """A key (or option name) that picks an intent, or a fixed transfer step."""

    intent: str | None
    priority: int | None = None
    names: tuple[str, ...] = ()  # what a caller may say for it in a menu
    step: str | None = None  # a transfer step with a fixed queue, instead of an intent


@dataclass(frozen=True, slots=True)
class PromptStep:
    """Play a prompt, then go to ``next``; caller speech or a key cuts it short."""

    name: str
    prompt: Prompt
    next: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class MessageStep:
    """Play a message that is never cut, then go to ``next``."""

    name: str
    prompt: Prompt
    next: str


@dataclass(frozen=True, slots=True)
class ListenStep:
    """Prompt, then take speech and keys together and match an intent."""

    name: str
    prompt: Prompt
    on_intent: str
    confirm: str | None
    dtmf: Mapping[str, Choice]
    no_input: Prompt
    no_match: Prompt
    max_retries: int
    on_failure: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class ConfirmStep:
    """Ask whether the pending intent is right: yes/no by speech, keys by DTMF."""

    name: str
    prompt: Prompt
    on_yes: str
    on_no: str
    yes: tuple[str, ...]
    no: tuple[str, ...]
    yes_key: str
    no_key: str
    no_input: Prompt
    no_match: Prompt
    max_retries: int
    on_failure: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class MenuStep:
    """A key menu of intents that also accepts the options' names by speech."""

    name: str
    prompt: Prompt
    options: Mapping[str, Choice]
    on_intent: str
    no_input: Prompt
    no_match: Prompt
    max_retries: int
    on_failure: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class TransferStep:
    """Hand the call to a queue: fixed, or the decided intent's."""

    name: str
    queue: str | None
    priority: int | None
    message: Prompt | None
    messages: Mapping[str, Prompt]


@dataclass(frozen=True, slots=True)
class HangupStep:
    """Say an optional goodbye and end the call."""

    name: str
    message: Prompt | None
    reason: str


Step = PromptStep | MessageStep | ListenStep | ConfirmStep | MenuStep | TransferStep | HangupStep
InputStep = ListenStep | ConfirmStep | MenuStep


@dataclass(frozen=True, slots=True)
class Flow:
    """A checked, immutable flow; one per file, shared by all its calls."""

    name: str
    language: str
    voice: Voice | None
    matcher: IntentSource
    endpointing: Endpointing
    barge_in: BargeIn
    confirm_below: float
    operator: Operator
    emergency: Emergency | None
    start: str
    steps: Mapping[str, Step]
    source: str
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def from_file(cls, path: str | Path, matcher_factory: MatcherFactory | None = None) -> Flow:
        """Load and check the flow in ``path``.

        Raises:
            FlowError: the file cannot be read or the flow is not valid.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FlowError(str(path), None, "", f"cannot read the flow: {exc}") from None
        return cls.from_text(text, str(path), path.parent, matcher_factory)

    @classmethod
    def from_text(
        cls,
        text: str,
        source: str,
        base_dir: str | Path | None = None,
        matcher_factory: MatcherFactory | None = None,
    ) -> Flow:
        """Load and check a flow from ``text``; ``source`` names it in errors.

        Files the flow names (intents, audio prompts) are found in ``base_dir``,
        by default the directory of ``source``.

        Raises:
            FlowError: the flow is not valid.
        """
        data, lines = load_yaml(text, source)
        base = Path(base_dir) if base_dir is not None else Path(source).parent
        return _Loader(data, lines, base, matcher_factory or default_matcher_factory).load()

    def queues(self) -> tuple[str, ...]:
        """Every queue a call can leave this flow for: fixed ones and the intents'."""
        names = {step.queue for step in self.steps.values() if isinstance(step, TransferStep)}
        names |= {self.matcher.queue_of(intent) for intent in self.matcher.intents()}
        return tuple(sorted(n for n in names if n))

    def prompt_texts(self) -> tuple[str, ...]:
        """Every text the flow can speak, with ``{label}`` filled for every intent.

        The server renders these with the TTS voice before the first call.
        """
        labels = {intent: self.matcher.label_of(intent) for intent in self.matcher.intents()}
        texts: dict[str, None] = {}

        def add(prompt: Prompt | None, intents: Iterable[str] = labels) -> None:
            if not isinstance(prompt, str):
                return
            if "label" in placeholders(prompt):
                for intent in intents:
                    texts.setdefault(render(prompt, labels[intent]))
            else:
                texts.setdefault(render(prompt, ""))

        for step in self.steps.values():
            if isinstance(step, PromptStep | MessageStep):
                add(step.prompt)
            elif isinstance(step, ConfirmStep):
                # Emergency and operator matches are never confirmed.
                never = self.operator.intents | (
                    self.emergency.intents if self.emergency else set()
                )
                asked = [intent for intent in labels if intent not in never]
                for prompt in (step.prompt, step.no_input, step.no_match):
                    add(prompt, asked)
            elif isinstance(step, ListenStep | MenuStep):
                add(step.prompt)
                add(step.no_input)
                add(step.no_match)
            elif isinstance(step, TransferStep):
                for message in step.messages.values():
                    add(message)
                add(step.message, [i for i in labels if i not in step.messages])
            else:
                add(step.message)
        return tuple(texts)

    def prompt_files(self) -> tuple[Path, ...]:
        """Every audio file the flow can play."""
        files: dict[Path, None] = {}
        for step in self.steps.values():
            for value in vars_of(step):
                if isinstance(value, Path):
                    files.setdefault(value)
                elif isinstance(value, Mapping):
                    for item in value.values():
                        if isinstance(item, Path):
                            files.setdefault(item)
        return tuple(files)


def vars_of(step: Step) -> list[Any]:
    """The field values of a step (steps use slots, so no ``vars``)."""
    return [getattr(step, name) for name in step.__dataclass_fields__]


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a prompt text uses.

    Raises:
        ValueError: unbalanced braces.
    """
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def render(text: str, label: str) -> str:
    """A prompt text with ``{label}`` filled in."""
    return text.format(label=label)


_TOP_KEYS = {
    "name", "language", "voice", "intents", "endpointing", "barge_in", "confirm_below",
    "operator", "emergency", "start", "steps",
}  # fmt: skip
_INPUT_KEYS = {"type", "prompt", "no_input", "no_match", "max_retries", "on_failure", "barge_in"}
_STEP_KEYS: dict[str, set[str]] = {
    "prompt": {"type", "prompt", "next", "barge_in"},
    "message": {"type", "prompt", "next"},
    "listen": _INPUT_KEYS | {"on_intent", "confirm", "dtmf"},
    "confirm": _INPUT_KEYS | {"on_yes", "on_no", "yes", "no", "keys"},
    "menu": _INPUT_KEYS | {"options", "on_intent"},
    "transfer": {"type", "queue", "priority", "message", "messages"},
    "hangup": {"type", "message", "reason"},
}
_MISSING = object()


class _Loader:
    """One pass over a flow's data; raises the first problem found."""

    def __init__(self, data: dict[Any, Any], lines: Lines, base: Path, factory: MatcherFactory):
        self.data, self.lines, self.base, self.factory = data, lines, base, factory
        self.refs: list[tuple[str, str, str]] = []  # (field path, step name, what it must be)
        self.intent_names: set[str] = set()

    def error(self, path: str, problem: str) -> FlowError:
        return self.lines.error(path, problem)

    # -- generic field readers -------------------------------------------------

    def mapping(
        self, value: Any, path: str, allowed: set[str], required: Iterable[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(_join(path, str(key)), "field names are text")
            if key not in allowed:
                raise self.error(
                    _join(path, key),
                    f"unknown field; expected one of: {', '.join(sorted(allowed))}",
                )
        for key in required:
            if key not in value:
                raise self.error(path, f"missing field '{key}'")
        return value

    def text(self, d: dict[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
        if key not in d:
            if default is _MISSING:
                raise self.error(path, f"missing field '{key}'")
            return default
        value = d[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(_join(path, key), f"expected non-empty text, got {_kind(value)}")
        return value

    def integer(
        self, d: dict[str, Any], key: str, path: str, lo: int, hi: int, default: Any
    ) -> Any:
        if key not in d:
            return default
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(_join(path, key), f"expected a whole number, got {_kind(value)}")
        if not lo <= value <= hi:
            raise self.error(_join(path, key), f"{value} is out of range {lo}..{hi}")
        return value

    def boolean(self, d: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = d.get(key, default)
        if not isinstance(value, bool):
            raise self.error(_join(path, key), f"expected true or false, got {_kind(value)}")
        return value

    def words(
        self, d: dict[str, Any], key: str, path: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        if key not in d:
            return default
        value = d[key]
        if not isinstance(value, list) or not value:
            raise self.error(
                _join(path, key), f"expected a non-empty list of phrases, got {_kind(value)}"
            )
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{path}.{key}.{i}", f"expected a phrase, got {_kind(item)}")
        return tuple(normalize(item) for item in value)

    def key(self, value: Any, path: str) -> str:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or text not in DTMF_KEYS:
            raise self.error(path, f"expected one DTMF key (0-9, *, #, A-D), got {value!r}")
        return text

    def prompt(self, value: Any, path: str, allowed: frozenset[str] = frozenset()) -> Prompt:
        if isinstance(value, str):
            if not value.strip():
                raise self.error(path, "the prompt is empty")
            try:
                used = placeholders(value)
            except ValueError as exc:
                raise self.error(path, f"bad braces in the prompt: {exc}") from None
            unknown = used - allowed
            if unknown:
                may = (
                    f"may use only {{{'}, {'.join(sorted(allowed))}}}" if allowed else "takes none"
                )
                raise self.error(
                    path, f"unknown placeholder {{{sorted(unknown)[0]}}}; this prompt {may}"
                )
            return value
        if isinstance(value, dict):
            self.mapping(value, path, {"file"}, ["file"])
            name = value["file"]
            if not isinstance(name, str) or not name.strip():
                raise self.error(f"{path}.file", f"expected a file name, got {_kind(name)}")
            file = self.base / name
            if not file.is_file():
                raise self.error(f"{path}.file", f"no such audio file: {file}")
            return file
        raise self.error(path, f"expected prompt text or {{file: path}}, got {_kind(value)}")

    def ref(
        self, d: dict[str, Any], key: str, path: str, must_be: str, default: Any = _MISSING
    ) -> Any:
        value = self.text(d, key, path, default)
        if key in d:
            self.refs.append((_join(path, key), value, must_be))
        return value

    def intent(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in self.intent_names:
            known = ", ".join(sorted(self.intent_names))
            raise self.error(path, f"unknown intent {value!r}; the intents are: {known}")
        return value

    def intent_list(
        self, d: dict[str, Any], key: str, path: str, *, required: bool
    ) -> frozenset[str]:
        if key not in d and not required:
            return frozenset()
        value = d[key]
        if not isinstance(value, list) or not value:
            raise self.error(_join(path, key), f"expected a list of intents, got {_kind(value)}")
        return frozenset(self.intent(x, f"{path}.{key}.{i}") for i, x in enumerate(value))

    def choices(self, value: Any, path: str, menu: bool) -> dict[str, Choice]:
        if not isinstance(value, dict) or not value:
            raise self.error(path, f"expected a mapping of keys to intents, got {_kind(value)}")
        out: dict[str, Choice] = {}
        for raw_key, item in value.items():
            item_path = f"{path}.{raw_key}"
            key = self.key(raw_key, item_path)
            if key == self.operator_key:
                raise self.error(item_path, f"key {key} is the operator key in every step")
            intent: str | None = None
            step: str | None = None
            priority: int | None = None
            names: tuple[str, ...] = ()
            if isinstance(item, dict):
                self.mapping(item, item_path, {"intent", "step", "priority", "say"})
                if ("intent" in item) == ("step" in item):
                    raise self.error(item_path, "give either 'intent' or 'step'")
                if "intent" in item:
                    intent = self.intent(item["intent"], f"{item_path}.intent")
                else:
                    step = self.ref(item, "step", item_path, "fixed")
                priority = self.integer(item, "priority", item_path, 0, 1000, None)
                names = self.words(item, "say", item_path, ())
            else:
                intent = self.intent(item, item_path)
            if menu and not names and intent is not None:
                names = (
                    normalize(self.matcher.label_of(intent)),
                    normalize(intent.replace("_", " ")),
                )
            out[key] = Choice(intent, priority, names, step)
        return out

    # -- the flow ----------------------------------------------------------------

    def load(self) -> Flow:
        d = self.mapping(
            self.data, "", _TOP_KEYS, ["name", "language", "intents", "operator", "start", "steps"]
        )
        name = self.text(d, "name", "")
        language = self.text(d, "language", "")
        voice = None
        if "voice" in d:
            v = self.mapping(d["voice"], "voice", {"engine", "name"}, ["engine"])
            voice = Voice(self.text(v, "engine", "voice"), self.text(v, "name", "voice", None))
        self.matcher = self.load_intents(d["intents"])
        self.intent_names = set(self.matcher.intents())

        e = self.mapping(
            d.get("endpointing", {}), "endpointing", set(Endpointing.__dataclass_fields__)
        )
        dflt = Endpointing()
        endpointing = Endpointing(
            self.integer(e, "speech_end_ms", "endpointing", 100, 5000, dflt.speech_end_ms),
            self.integer(
                e, "finalize_timeout_ms", "endpointing", 100, 10000, dflt.finalize_timeout_ms
            ),
            self.integer(e, "max_speech_ms", "endpointing", 1000, 60000, dflt.max_speech_ms),
            self.integer(e, "no_input_ms", "endpointing", 1000, 60000, dflt.no_input_ms),
        )
        b = self.mapping(d.get("barge_in", {}), "barge_in", {"enabled", "min_speech_ms"})
        barge_in = BargeIn(
            self.boolean(b, "enabled", "barge_in", True),
            self.integer(b, "min_speech_ms", "barge_in", 0, 2000, BargeIn().min_speech_ms),
        )
        confirm_below = d.get("confirm_below", 0.6)
        if isinstance(confirm_below, bool) or not isinstance(confirm_below, int | float):
            raise self.error("confirm_below", f"expected a number 0..1, got {_kind(confirm_below)}")
        if not 0.0 <= confirm_below <= 1.0:
            raise self.error("confirm_below", f"{confirm_below} is out of range 0..1")

        o = self.mapping(d["operator"], "operator", {"step", "key", "phrases", "intents"}, ["step"])
        self.operator_key = self.key(o.get("key", "0"), "operator.key")
        operator = Operator(
            self.ref(o, "step", "operator", "fixed"),
            self.operator_key,
            self.words(o, "phrases", "operator", DEFAULT_OPERATOR_PHRASES),
            self.intent_list(o, "intents", "operator", required=False),
        )
        emergency = None
        if "emergency" in d:
            m = self.mapping(d["emergency"], "emergency", {"intents", "step"}, ["intents", "step"])
            intents = self.intent_list(m, "intents", "emergency", required=True)
            emergency = Emergency(intents, self.ref(m, "step", "emergency", "transfer"))

        start = self.ref(d, "start", "", "entry")
        steps_data = d["steps"]
        if not isinstance(steps_data, dict) or not steps_data:
            raise self.error(
                "steps", f"expected a mapping of step names to steps, got {_kind(steps_data)}"
            )
        self.confirm_below = float(confirm_below)
        self.default_barge_in = barge_in.enabled
        steps = {str(n): self.step(str(n), s, f"steps.{n}") for n, s in steps_data.items()}
        self.check_refs(steps)
        warnings = self.unreachable(steps, start, operator, emergency)
        for warning in warnings:
            log.warning("%s", warning)
        return Flow(
            name, language, voice, self.matcher, endpointing, barge_in, float(confirm_below),
            operator, emergency, start, steps, self.lines.source, tuple(warnings),
        )  # fmt: skip

    def load_intents(self, value: Any) -> IntentSource:
        if isinstance(value, dict):
            return self.factory(value, self.lines, "intents")
        if isinstance(value, str) and value.strip():
            file = self.base / value
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise self.error("intents", f"cannot read the intents file {file}: {exc}") from None
            spec, lines = load_yaml(text, str(file))
            return self.factory(spec, lines, "")
        raise self.error(
            "intents", f"expected a file name or a mapping of intents, got {_kind(value)}"
        )

    def step(self, name: str, value: Any, path: str) -> Step:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_kind(value)}")
        kind = value.get("type", _MISSING)
        if kind is _MISSING:
            raise self.error(path, "missing field 'type'")
        if kind not in _STEP_KEYS:
            raise self.error(
                f"{path}.type",
                f"unknown step type {kind!r}; expected one of: {', '.join(_STEP_KEYS)}",
            )
        required = {
            "prompt": ["prompt", "next"],
            "message": ["prompt", "next"],
            "listen": ["prompt", "on_intent"],
            "confirm": ["on_yes", "on_no"],
            "menu": ["prompt", "options", "on_intent"],
        }.get(kind, [])
        d = self.mapping(value, path, _STEP_KEYS[kind], required)
        if kind == "prompt":
            return PromptStep(
                name,
                self.prompt(d["prompt"], f"{path}.prompt"),
                self.ref(d, "next", path, "plain"),
                self.boolean(d, "barge_in", path, self.default_barge_in),
            )
        if kind == "message":
            return MessageStep(
                name, self.prompt(d["prompt"], f"{path}.prompt"), self.ref(d, "next", path, "plain")
            )
        if kind == "transfer":
            queue = self.text(d, "queue", path, None)
            allowed = frozenset() if queue is not None else frozenset({"label"})
            messages: dict[str, Prompt] = {}
            raw = d.get("messages", {})
            if not isinstance(raw, dict):
                raise self.error(
                    f"{path}.messages",
                    f"expected a mapping of intents to messages, got {_kind(raw)}",
                )
            for intent, message in raw.items():
                self.intent(intent, f"{path}.messages.{intent}")
                messages[intent] = self.prompt(message, f"{path}.messages.{intent}", allowed)
            return TransferStep(
                name,
                queue,
                self.integer(d, "priority", path, 0, 1000, None),
                self.prompt(d["message"], f"{path}.message", allowed) if "message" in d else None,
                messages,
            )
        if kind == "hangup":
            return HangupStep(
                name,
                self.prompt(d["message"], f"{path}.message") if "message" in d else None,
                self.text(d, "reason", path, "flow ended"),
            )
        return self.input_step(kind, name, d, path)

    def input_step(self, kind: str, name: str, d: dict[str, Any], path: str) -> InputStep:
        labelled = frozenset({"label"}) if kind == "confirm" else frozenset()
        prompt = self.prompt(d.get("prompt", DEFAULT_CONFIRM_PROMPT), f"{path}.prompt", labelled)
        no_input = (
            self.prompt(d["no_input"], f"{path}.no_input", labelled) if "no_input" in d else prompt
        )
        no_match = (
            self.prompt(d["no_match"], f"{path}.no_match", labelled) if "no_match" in d else prompt
        )
        max_retries = self.integer(d, "max_retries", path, 0, 5, 1)
        on_failure = self.ref(d, "on_failure", path, "plain", self.operator_step_name())
        barge_in = self.boolean(d, "barge_in", path, self.default_barge_in)
        if kind == "listen":
            confirm = self.ref(d, "confirm", path, "confirm", None)
            dtmf = self.choices(d["dtmf"], f"{path}.dtmf", menu=False) if "dtmf" in d else {}
            on_intent = self.ref(d, "on_intent", path, "transfer")
            return ListenStep(
                name, prompt, on_intent, confirm, dtmf, no_input, no_match, max_retries,
                on_failure, barge_in,
            )  # fmt: skip
        if kind == "menu":
            options = self.choices(d["options"], f"{path}.options", menu=True)
            on_intent = self.ref(d, "on_intent", path, "transfer")
            return MenuStep(
                name, prompt, options, on_intent, no_input, no_match, max_retries, on_failure,
                barge_in,
            )  # fmt: skip
        keys = self.mapping(d.get("keys", {}), f"{path}.keys", {"yes", "no"})
        yes_key = self.key(keys.get("yes", "1"), f"{path}.keys.yes")
        no_key = self.key(keys.get("no", "2"), f"{path}.keys.no")
        for field_name, k in (("yes", yes_key), ("no", no_key)):
            if k == self.operator_key:
                raise self.error(
                    f"{path}.keys.{field_name}", f"key {k} is the operator key in every step"
                )
        if yes_key == no_key:
            raise self.error(f"{path}.keys.no", f"yes and no are both key {yes_key}")
        return ConfirmStep(
            name, prompt,
            self.ref(d, "on_yes", path, "transfer"), self.ref(d, "on_no", path, "listen"),
            self.words(d, "yes", path, DEFAULT_YES), self.words(d, "no", path, DEFAULT_NO),
            yes_key, no_key, no_input, no_match, max_retries, on_failure, barge_in,
        )  # fmt: skip

    def operator_step_name(self) -> str:
        step: str = self.data["operator"]["step"]
        return step

    def check_refs(self, steps: dict[str, Step]) -> None:
        for path, target, must_be in self.refs:
            step = steps.get(target)
            if step is None:
                raise self.error(path, f"no step named {target!r}")
            fixed = isinstance(step, TransferStep) and step.queue is not None
            if must_be == "transfer" and not isinstance(step, TransferStep):
                raise self.error(path, f"{target!r} must be a transfer step")
            if must_be == "fixed" and not fixed:
                raise self.error(path, f"{target!r} must be a transfer step with a fixed queue")
            if must_be == "confirm" and not isinstance(step, ConfirmStep):
                raise self.error(path, f"{target!r} must be a confirm step")
            if must_be == "listen" and not isinstance(step, ListenStep):
                raise self.error(path, f"{target!r} must be a listen step")
            if must_be in ("plain", "entry"):
                if isinstance(step, ConfirmStep):
                    raise self.error(
                        path,
                        f"{target!r} is a confirm step, reached only by a listen step's confirm",
                    )
                if isinstance(step, TransferStep) and not fixed:
                    raise self.error(
                        path,
                        f"{target!r} takes the intent's queue, but no intent is decided here",
                    )

    def unreachable(
        self, steps: dict[str, Step], start: str, operator: Operator, emergency: Emergency | None
    ) -> list[str]:
        seen: set[str] = set()
        todo = [start, operator.step] + ([emergency.step] if emergency else [])
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(next_steps(steps[name]))
        return [
            self.error(f"steps.{name}", "unreachable from start").args[0]
            for name in steps
            if name not in seen
        ]


def next_steps(step: Step) -> list[str]:
    """The steps ``step`` can go to."""
    if isinstance(step, PromptStep | MessageStep):
        return [step.next]
    if isinstance(step, ListenStep):
        chosen = [c.step for c in step.dtmf.values() if c.step]
        return [step.on_intent, step.on_failure, *chosen] + ([step.confirm] if step.confirm else [])
    if isinstance(step, ConfirmStep):
        return [step.on_yes, step.on_no, step.on_failure]
    if isinstance(step, MenuStep):
        return [step.on_intent, step.on_failure, *(c.step for c in step.options.values() if c.step)]
    return []


def normalize(text: str) -> str:
    """Lower case, words only, single spaces: how phrases are compared."""
    kept = "".join(c if c.isalnum() or c == "'" else " " for c in text.lower())
    return " ".join(kept.split())


def says(text: str, phrases: Iterable[str]) -> bool:
    """Whether normalized ``text`` contains any of ``phrases`` as whole words."""
    padded = f" {text} "
    return any(f" {phrase} " in padded for phrase in phrases)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{value!r} (true/false)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value!r}"
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
