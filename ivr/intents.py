"""Intent matching: what the caller said -> which intent (queue), and how sure.

Sans-IO and pure Python. The matcher is built from a declarative spec (YAML, see
``ivr/flows/hospital_intents.yaml``) with four parts:

``concepts``
    Named synonym groups: ``pain: [pain, hurts, aching, sore, killing me]``. A phrase
    may have several words; ``#`` stands for a number ("# year old").
``intents``
    Each with ``queue``, ``label`` (read back in a confirm prompt), ``priority``,
    ``kind`` (``emergency``, ``symptom``, ``request`` or ``person``) and ``cues``:
    conjunctions of concepts (``"limb + pain"``), each with a weight and an optional
    label of its own.
``rules``
    Evaluated in order after scoring: "emergency wins over everything", "a child +
    any symptom -> pediatrics unless emergency". A rule routes to one intent and
    overrides either every other intent or the intents of the kinds it names.
``templates``
    Sentences with ``{slot}`` placeholders filled from concepts, for ``phrases()``:
    the training sentences of the recognizer's small language model.

Matching: normalise (lowercase, contractions, digits to number words, no
punctuation), stem lightly, spot concept phrases longest-first, drop the ones
negated by a nearby "no"/"not"/"never" in the same clause, score every intent's
cues (weighted by the ASR confidence of the words that matched), apply the rules,
and turn the winner's strength and its margin over the runner-up into a
confidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asr.results import Hypothesis, Word
from ivr.source import Lines, load_yaml

__all__ = ["IntentMatch", "IntentMatcher", "normalize", "stem"]

KINDS = ("emergency", "symptom", "request", "person")
NUMBER_KEY = "#"

# --- normalisation -------------------------------------------------------------------

_IRREGULAR = {
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "shan't": "shall not",
    "ain't": "is not",
    "let's": "let us",
}
_SUFFIXES = (("n't", " not"), ("'m", " am"), ("'re", " are"), ("'ve", " have"),
             ("'ll", " will"), ("'d", " would"))
# "'s" is "is" after these; after a noun it is a possessive and goes away.
_IS_HOSTS = frozenset(
    "he she it that there what who where here how this everything something".split()
)
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = frozenset(_ONES + _TENS[2:] + ["hundred", "thousand"])
_WORD_RE = re.compile(r"[a-z0-9']+")
_DIGITS_RE = re.compile(r"(\d+)")


def _number_words(digits: str) -> str:
    value = int(digits)
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    # Phone-style: larger numbers are read digit by digit ("one two five").
    return " ".join(_ONES[int(d)] for d in digits)


def _expand(word: str) -> str:
    word = word.strip("'")
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, full in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)] + full
    if word.endswith("'s"):
        host = word[:-2]
        return f"{host} is" if host in _IS_HOSTS else host
    return word.replace("'", "")


def normalize(text: str) -> list[str]:
    """Lowercase words with contractions expanded, digits spelled and no punctuation.

    >>> normalize("I can't breathe! My 4-year-old's hurt")
    ['i', 'can', 'not', 'breathe', 'my', 'four', 'year', 'old', 'hurt']
    """
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _DIGITS_RE.sub(lambda m: f" {_number_words(m.group(1))} ", text)
    out: list[str] = []
    for raw in _WORD_RE.findall(text):
        out.extend(_expand(raw).split())
    return out


def stem(word: str) -> str:
    """A light, consistent stem: enough that "hurts/hurting", "aches/aching/ache" meet.

    Both the spec's phrases and the caller's words go through it, so the stems need
    not be words, only agree.
    """
    if len(word) <= 3 or word == NUMBER_KEY:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 5 and not word[:-2].endswith("e"):
        word = word[:-2]
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class _Token:
    surface: str  # normalised word(s), e.g. "thirty nine" for a number run
    key: str  # stem, or "#" for a run of number words
    confidence: float


_CLAUSE_RE = re.compile(r"[,.;:!?]+")
CLAUSE_KEY = "|"  # a comma or full stop in typed text: no phrase or negation crosses it


def _tokens(words: Iterable[tuple[str, float]]) -> list[_Token]:
    """Normalised tokens, each run of number words collapsed into one ``#``."""
    out: list[_Token] = []
    for text, confidence in words:
        for k, clause in enumerate(_CLAUSE_RE.split(text)):
            if k and out and out[-1].key != CLAUSE_KEY:
                out.append(_Token(CLAUSE_KEY, CLAUSE_KEY, 1.0))
            _add_words(out, normalize(clause), confidence)
    return out


def _add_words(out: list[_Token], words: Iterable[str], confidence: float) -> None:
    for word in words:
        if word not in NUMBER_WORDS:
            out.append(_Token(word, stem(word), confidence))
        elif out and out[-1].key == NUMBER_KEY:
            last = out[-1]
            out[-1] = _Token(f"{last.surface} {word}", NUMBER_KEY,
                             min(last.confidence, confidence))
        else:
            out.append(_Token(word, NUMBER_KEY, confidence))


def _phrase_key(phrase: str) -> tuple[str, ...]:
    # "#" in a spec phrase is any number: spell it as one so it collapses to NUMBER_KEY.
    return tuple(t.key for t in _tokens([(phrase.replace(NUMBER_KEY, " one "), 1.0)]))


# --- the compiled spec ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent heard in one utterance, or ``intent=None``."""

    intent: str | None  # None = no match
    queue: str | None
    confidence: float  # 0..1: match strength x margin over the runner-up x ASR confidence
    priority: int  # emergency highest
    reason: str  # "emergency phrase 'chest pain'", "child 'son' + symptom ... -> pediatrics"
    label: str  # read back in a confirm prompt: "chest pain", "a refill"
    alternatives: tuple[tuple[str, float], ...]  # other intents heard, strongest first


@dataclass(frozen=True, slots=True)
class _Cue:
    concepts: tuple[str, ...]
    weight: float
    label: str | None


@dataclass(frozen=True, slots=True)
class _Intent:
    name: str
    queue: str
    label: str
    priority: int
    kind: str
    cues: tuple[_Cue, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    route: str
    if_intents: frozenset[str] | None
    if_kinds: frozenset[str] | None
    if_concept: str | None
    unless: frozenset[str]
    overrides: frozenset[str] | None  # None = every other intent; else these kinds
    reason: str
    label: str | None


@dataclass(frozen=True, slots=True)
class _Occurrence:
    concepts: frozenset[str]
    start: int
    end: int
    surface: str
    confidence: float


@dataclass(slots=True)
class _Score:
    raw: float
    cue: _Cue
    evidence: tuple[_Occurrence, ...]


_DEFAULT_NEGATORS = ("no", "not", "never", "without", "nothing", "none", "neither", "nor")
_DEFAULT_BREAKERS = ("but", "and", "although", "though", "however", "except", "yet",
                     "because", "so")
_EXTRA_CUE_BONUS = 0.05  # each further cue of the same intent adds a little certainty
_MAX_RAW = 1.25
_TIE_PENALTY = 0.6  # an exact tie with the runner-up keeps 40% of the strength
_SENTENCES_PER_TEMPLATE = 100
_TEMPLATE_OFFSET = 37  # where template n starts walking its fillers: n * this
_NBEST_DECAY = 0.7  # match_best: an alternative's vote weight per rank
_NBEST_FLOOR = 0.3  # ... times the utterance confidence, at least this
_NBEST_TRUST = 0.5  # match_best: a best text matched this surely needs no vote
_NBEST_OVERRULE = 2.0  # ... and alternatives overrule its intent only with this many times its vote
# An emergency that most of the first alternatives hear wins even over a sure best
# text ("i can't hurt in my left arm is numb" against "my chest hurts and my ..."):
# missing one costs far more than a nurse's minute on a false alarm.
_NBEST_EMERGENCY_RANKS = 5
_NBEST_EMERGENCY_QUORUM = 0.6
_NBEST_EMERGENCY_SURE = 0.9  # ... unless the best text is matched at least this surely

_TOP_KEYS = {"concepts", "intents", "rules", "templates", "extra_phrases", "negation"}
_INTENT_KEYS = {"queue", "label", "priority", "kind", "cues"}
_CUE_KEYS = {"when", "weight", "label"}
_RULE_KEYS = {"name", "route", "if_intents", "if_kinds", "if_concept", "unless",
              "overrides", "reason", "label"}
_TEMPLATE_KEYS = {"slots", "sentences"}
_NEGATION_KEYS = {"words", "breakers", "window"}
_SLOT_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class _Checker:
    """Type checks that raise ``FlowError`` at the field's line."""

    def __init__(self, lines: Lines, prefix: str) -> None:
        self.lines, self.prefix = lines, prefix

    def path(self, field_path: str) -> str:
        if not self.prefix:
            return field_path
        return f"{self.prefix}.{field_path}" if field_path else self.prefix

    def fail(self, field_path: str, problem: str) -> Exception:
        return self.lines.error(self.path(field_path), problem)

    def mapping(self, value: Any, field_path: str, allowed: set[str] | None = None,
                ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field_path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(field_path, f"keys must be text, got {key!r}")
            if allowed is not None and key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(_join(field_path, key), f"unknown key '{key}' (known: {known})")
        return value

    def text(self, value: Any, field_path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field_path, f"expected non-empty text, got {_type_name(value)}")
        return value.strip()

    def text_list(self, value: Any, field_path: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(field_path, f"expected a list, got {_type_name(value)}")
        if not value:
            raise self.fail(field_path, "the list is empty")
        return [self.text(item, f"{field_path}.{i}") for i, item in enumerate(value)]

    def number(self, value: Any, field_path: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field_path, f"expected a number, got {_type_name(value)}")
        if not low < value <= high:
            raise self.fail(field_path, f"{value} is outside ({low}, {high}]")
        return float(value)

    def integer(self, value: Any, field_path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field_path, f"expected a whole number, got {_type_name(value)}")
        return value


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"text {value!r}", bool: f"{value}"}.get(
        type(value), f"{type(value).__name__} {value!r}")


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


class IntentMatcher:
    """Maps recognised words to an intent, built from a declarative spec."""

    def __init__(
        self,
        concepts: Mapping[str, tuple[str, ...]],
        intents: Sequence[_Intent],
        rules: Sequence[_Rule],
        slots: Mapping[str, tuple[str, ...]],
        sentences: Sequence[str],
        extra_phrases: Sequence[str],
        negators: Iterable[str] = _DEFAULT_NEGATORS,
        breakers: Iterable[str] = _DEFAULT_BREAKERS,
        negation_window: int = 3,
    ) -> None:
        self._concepts = dict(concepts)
        self._intents = {intent.name: intent for intent in intents}
        self._rules = tuple(rules)
        self._slots = dict(slots)
        self._sentences = tuple(sentences)
        self._extra = tuple(extra_phrases)
        self._negators = frozenset(negators)
        self._breakers = frozenset(breakers)
        self._window = negation_window
        trie: dict[tuple[str, ...], set[str]] = {}
        for name, phrases in self._concepts.items():
            for phrase in phrases:
                trie.setdefault(_phrase_key(phrase), set()).add(name)
        self._trie = {key: frozenset(names) for key, names in trie.items() if key}
        # Negation is about symptoms ("no chest pain"); "I can't make my appointment"
        # still wants appointments.
        self._negatable = frozenset(
            name for intent in self._intents.values() if intent.kind in ("emergency", "symptom")
            for cue in intent.cues for name in cue.concepts
        )
        self._longest = max((len(key) for key in self._trie), default=1)
        self._phrases: tuple[str, ...] | None = None

    # --- construction ----------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> IntentMatcher:
        """Read a spec file (YAML).

        Raises:
            FlowError: the file is not valid YAML or not a valid spec.
        """
        path = Path(path)
        data, lines = load_yaml(path.read_text(encoding="utf-8"), str(path))
        return cls.from_spec(data, lines)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], lines: Lines, prefix: str = "") -> IntentMatcher:
        """Check and compile a spec read by ``ivr.source.load_yaml``.

        ``prefix`` is the dotted path of the spec inside its file, when it is embedded
        in a larger document, so errors name the right field.

        Raises:
            FlowError: naming the file, line and field of the first problem.
        """
        check = _Checker(lines, prefix)
        top = check.mapping(spec, "", _TOP_KEYS)
        for required in ("concepts", "intents"):
            if required not in top:
                raise check.fail("", f"'{required}' is missing")

        concepts_spec = check.mapping(top["concepts"], "concepts")
        if not concepts_spec:
            raise check.fail("concepts", "no concepts")
        concepts: dict[str, tuple[str, ...]] = {}
        for name, phrases in concepts_spec.items():
            field = f"concepts.{name}"
            items = check.text_list(phrases, field)
            for i, phrase in enumerate(items):
                if not _phrase_key(phrase):
                    raise check.fail(f"{field}.{i}", f"'{phrase}' has no words")
            concepts[name] = tuple(items)

        intents_spec = check.mapping(top["intents"], "intents")
        if not intents_spec:
            raise check.fail("intents", "no intents")
        intents = [
            cls._intent(check, name, body, concepts) for name, body in intents_spec.items()
        ]
        names = {intent.name for intent in intents}

        rules: list[_Rule] = []
        rules_spec = top.get("rules", [])
        if not isinstance(rules_spec, list):
            raise check.fail("rules", f"expected a list, got {_type_name(rules_spec)}")
        for i, body in enumerate(rules_spec):
            rules.append(cls._rule(check, f"rules.{i}", body, names, concepts))

        slots: dict[str, tuple[str, ...]] = {}
        sentences: list[str] = []
        if "templates" in top:
            templates = check.mapping(top["templates"], "templates", _TEMPLATE_KEYS)
            for slot, refs in check.mapping(templates.get("slots", {}), "templates.slots").items():
                field = f"templates.slots.{slot}"
                slots[slot] = tuple(check.text_list(refs, field))
                for j, ref in enumerate(slots[slot]):
                    if ref not in concepts:
                        raise check.fail(f"{field}.{j}", f"no concept named '{ref}'")
            sentences = check.text_list(templates.get("sentences"), "templates.sentences")
            for j, sentence in enumerate(sentences):
                for slot in _SLOT_RE.findall(sentence):
                    if slot not in slots:
                        raise check.fail(f"templates.sentences.{j}",
                                         f"no slot named '{slot}' in templates.slots")
        extra: list[str] = []
        if "extra_phrases" in top:
            extra = check.text_list(top["extra_phrases"], "extra_phrases")

        negation: dict[str, Any] = {}
        if "negation" in top:
            negation = check.mapping(top["negation"], "negation", _NEGATION_KEYS)
        negators = check.text_list(negation.get("words", list(_DEFAULT_NEGATORS)),
                                   "negation.words")
        breakers = check.text_list(negation.get("breakers", list(_DEFAULT_BREAKERS)),
                                   "negation.breakers")
        window = check.integer(negation.get("window", 3), "negation.window")
        if window < 0:
            raise check.fail("negation.window", "must not be negative")
        return cls(concepts, intents, rules, slots, sentences, extra,
                   negators, breakers, window)

    @staticmethod
    def _intent(check: _Checker, name: Any, body: Any,
                concepts: Mapping[str, tuple[str, ...]]) -> _Intent:
        field = f"intents.{name}"
        spec = check.mapping(body, field, _INTENT_KEYS)
        if "label" not in spec:
            raise check.fail(field, "'label' is missing")
        if "cues" not in spec:
            raise check.fail(field, "'cues' is missing")
        kind = check.text(spec.get("kind", "symptom"), f"{field}.kind")
        if kind not in KINDS:
            raise check.fail(f"{field}.kind", f"'{kind}' is not one of {', '.join(KINDS)}")
        cues_spec = spec["cues"]
        if not isinstance(cues_spec, list):
            raise check.fail(f"{field}.cues", f"expected a list, got {_type_name(cues_spec)}")
        if not cues_spec:
            raise check.fail(f"{field}.cues", "the list is empty")
        cues: list[_Cue] = []
        for i, cue in enumerate(cues_spec):
            cue_field = f"{field}.cues.{i}"
            weight, label = 1.0, None
            if isinstance(cue, dict):
                cue_map = check.mapping(cue, cue_field, _CUE_KEYS)
                if "when" not in cue_map:
                    raise check.fail(cue_field, "'when' is missing")
                when = check.text(cue_map["when"], f"{cue_field}.when")
                if "weight" in cue_map:
                    weight = check.number(cue_map["weight"], f"{cue_field}.weight", 0.0, 1.0)
                if "label" in cue_map:
                    label = check.text(cue_map["label"], f"{cue_field}.label")
                when_field = f"{cue_field}.when"
            else:
                when, when_field = check.text(cue, cue_field), cue_field
            parts = tuple(part.strip() for part in when.split("+"))
            for part in parts:
                if part not in concepts:
                    raise check.fail(when_field, f"no concept named '{part}'")
            cues.append(_Cue(parts, weight, label))
        return _Intent(
            name=str(name),
            queue=check.text(spec.get("queue", str(name)), f"{field}.queue"),
            label=check.text(spec["label"], f"{field}.label"),
            priority=check.integer(spec.get("priority", 0), f"{field}.priority"),
            kind=kind,
            cues=tuple(cues),
        )

    @staticmethod
    def _rule(check: _Checker, field: str, body: Any, names: set[str],
              concepts: Mapping[str, tuple[str, ...]]) -> _Rule:
        spec = check.mapping(body, field, _RULE_KEYS)
        for required in ("name", "route"):
            if required not in spec:
                raise check.fail(field, f"'{required}' is missing")

        def intent_list(key: str) -> frozenset[str] | None:
            if key not in spec:
                return None
            values = check.text_list(spec[key], f"{field}.{key}")
            for i, value in enumerate(values):
                if value not in names:
                    raise check.fail(f"{field}.{key}.{i}", f"no intent named '{value}'")
            return frozenset(values)

        def kind_list(key: str) -> frozenset[str] | None:
            if key not in spec:
                return None
            values = check.text_list(spec[key], f"{field}.{key}")
            for i, value in enumerate(values):
                if value not in KINDS:
                    raise check.fail(f"{field}.{key}.{i}",
                                     f"'{value}' is not one of {', '.join(KINDS)}")
            return frozenset(values)

        route = check.text(spec["route"], f"{field}.route")
        if route not in names:
            raise check.fail(f"{field}.route", f"no intent named '{route}'")
        if_concept = None
        if "if_concept" in spec:
            if_concept = check.text(spec["if_concept"], f"{field}.if_concept")
            if if_concept not in concepts:
                raise check.fail(f"{field}.if_concept", f"no concept named '{if_concept}'")
        if_intents, if_kinds = intent_list("if_intents"), kind_list("if_kinds")
        if if_intents is None and if_kinds is None:
            raise check.fail(field, "needs 'if_intents' or 'if_kinds'")
        overrides: frozenset[str] | None = None
        raw_overrides = spec.get("overrides", "all")
        if raw_overrides != "all":
            overrides = kind_list("overrides")
        name = check.text(spec["name"], f"{field}.name")
        reason = check.text(spec.get("reason", "{name}: {evidence}"), f"{field}.reason")
        try:
            reason.format(name="", evidence="", route="", concept="", trigger="")
        except (KeyError, IndexError, ValueError) as exc:
            raise check.fail(f"{field}.reason", f"bad placeholder {exc}") from None
        label = check.text(spec["label"], f"{field}.label") if "label" in spec else None
        return _Rule(
            name=name,
            route=route,
            if_intents=if_intents,
            if_kinds=if_kinds,
            if_concept=if_concept,
            unless=intent_list("unless") or frozenset(),
            overrides=overrides,
            reason=reason,
            label=label,
        )

    # --- queries ---------------------------------------------------------------------

    def intents(self) -> tuple[str, ...]:
        """Every intent name, in spec order."""
        return tuple(self._intents)

    def queue_of(self, intent: str) -> str:
        """The queue that ``intent`` routes to."""
        return self._intents[intent].queue

    def label_of(self, intent: str) -> str:
        """What a confirm prompt reads back for ``intent``."""
        return self._intents[intent].label

    def vocabulary(self) -> frozenset[str]:
        """Every normalised word of every concept phrase: what the recognizer must hear."""
        words: set[str] = set()
        for phrases in self._concepts.values():
            for phrase in phrases:
                words.update(w for w in normalize(phrase) if w != NUMBER_KEY)
        return frozenset(words)

    # --- matching --------------------------------------------------------------------

    def match_best(self, hypothesis: Hypothesis) -> IntentMatch:
        """The intent of a recognizer's final, weighing its n-best ``alternatives`` too.

        The best text (with its word confidences) and each alternative vote for the
        intent they match, with their match confidence times a weight that falls
        with rank (``_NBEST_DECAY ** rank``). The intent with the most votes wins;
        the match returned is that of the best-ranked text voting for it, its
        confidence scaled by the winner's share of all votes. Without
        alternatives, or when the best text alone matches with confidence
        ``_NBEST_TRUST`` or more, this is ``match(hypothesis.text, hypothesis.words)``.
        """
        first = self.match(hypothesis.text, hypothesis.words)
        if (urgent := self._emergency_heard(hypothesis, first)) is not None:
            return urgent
        if not hypothesis.alternatives or (
            first.intent is not None and first.confidence >= _NBEST_TRUST
        ):
            return first
        votes: dict[str, float] = {}
        chosen: dict[str, IntentMatch] = {}
        utterance_weight = max(hypothesis.confidence, _NBEST_FLOOR)
        if first.intent is not None:
            # On the alternatives' scale (text only): word posteriors of a telephone
            # call run low even when every word is right.
            votes[first.intent] = utterance_weight * self.match(hypothesis.text).confidence
            chosen[first.intent] = first
        for rank, text in enumerate(hypothesis.alternatives, start=1):
            other = self.match(text)
            if other.intent is None:
                continue
            # Alternatives carry no word confidences: the utterance's stands in.
            weight = _NBEST_DECAY**rank * utterance_weight
            votes[other.intent] = votes.get(other.intent, 0.0) + weight * other.confidence
            chosen.setdefault(other.intent, other)
        if not votes:
            return first
        winner = max(votes, key=lambda name: (votes[name], name == first.intent))
        if first.intent is not None and votes[winner] < _NBEST_OVERRULE * votes[first.intent]:
            winner = first.intent  # near-duplicate alternatives must not outvote the best
        picked = chosen[winner]
        share = votes[winner] / sum(votes.values())
        return replace(picked, confidence=round(picked.confidence * share, 4))

    def _emergency_heard(self, hypothesis: Hypothesis, first: IntentMatch) -> IntentMatch | None:
        """An emergency most of the first alternatives match, when the best text is unsure.

        "Emergency wins over everything" holds across the n-best too: when at least
        ``_NBEST_EMERGENCY_QUORUM`` of the first ``_NBEST_EMERGENCY_RANKS``
        alternatives match an emergency intent and the best text matches neither an
        emergency nor anything with ``_NBEST_EMERGENCY_SURE``, the best-ranked of them is the match,
        its confidence scaled by that share.
        """
        if first.intent is not None and (
            self._intents[first.intent].kind == "emergency"
            or first.confidence >= _NBEST_EMERGENCY_SURE
        ):
            return None
        ranks = hypothesis.alternatives[:_NBEST_EMERGENCY_RANKS]
        if len(ranks) < 2:
            return None
        urgent = [
            match for match in map(self.match, ranks)
            if match.intent is not None and self._intents[match.intent].kind == "emergency"
        ]  # fmt: skip
        share = len(urgent) / len(ranks)
        if share < _NBEST_EMERGENCY_QUORUM:
            return None
        return replace(urgent[0], confidence=round(urgent[0].confidence * share, 4))

    def match(self, text: str, words: Sequence[Word] | None = None) -> IntentMatch:
        """The intent in ``text``; with ``words``, their ASR confidences weigh the evidence.

        When ``words`` is given and not empty, the words are matched (``text`` is
        taken to be their join).
        """
        pairs = [(w.text, w.confidence) for w in words] if words else [(text, 1.0)]
        tokens = _tokens(pairs)
        found = self._spot(tokens)
        scores = self._score(found)
        raw = {name: score.raw for name, score in scores.items()}

        candidates = set(raw)
        fired: tuple[_Rule, tuple[_Occurrence, ...], str, str | None] | None = None
        for rule in self._rules:
            outcome = self._apply(rule, scores, found)
            if outcome is None:
                continue
            route_raw, evidence, trigger, concept = outcome
            raw[rule.route] = max(raw.get(rule.route, 0.0), route_raw)
            if rule.overrides is None:
                candidates = {rule.route}
            else:
                candidates = {
                    name for name in candidates
                    if self._intents[name].kind not in rule.overrides
                } | {rule.route}
            reason = rule.reason.format(
                name=rule.name, evidence=_describe(evidence), route=rule.route,
                concept=f"'{concept}'" if concept else "", trigger=trigger,
            )
            trigger_label = scores[trigger].cue.label if trigger in scores else None
            label = rule.label or (trigger_label if rule.route == trigger else None)
            fired = (rule, evidence, reason, label)
            if rule.overrides is None:
                break

        ranked = sorted(
            candidates, key=lambda n: (raw[n], self._intents[n].priority), reverse=True
        )
        if not ranked:
            return IntentMatch(None, None, 0.0, 0, "no intent phrase heard", "", ())
        best = self._intents[ranked[0]]
        best_raw = raw[best.name]
        runner_raw = raw[ranked[1]] if len(ranked) > 1 else 0.0
        confidence = min(1.0, best_raw) * (1.0 - _TIE_PENALTY * runner_raw / best_raw)

        if fired is not None and fired[0].route == best.name:
            reason, label = fired[2], fired[3] or best.label
        else:
            score = scores[best.name]
            reason = f"{best.kind} phrase {_describe(score.evidence)} -> {best.name}"
            label = score.cue.label or best.label
        alternatives = tuple(
            (name, round(min(1.0, value), 3))
            for name, value in sorted(raw.items(), key=lambda kv: kv[1], reverse=True)
            if name != best.name
        )
        return IntentMatch(
            intent=best.name,
            queue=best.queue,
            confidence=round(max(0.0, min(1.0, confidence)), 4),
            priority=best.priority,
            reason=reason,
            label=label,
            alternatives=alternatives,
        )

    def _spot(self, tokens: Sequence[_Token]) -> list[_Occurrence]:
        """Concept phrases, longest first, left to right; negated ones left out."""
        spans: list[_Occurrence] = []
        consumed = [False] * len(tokens)
        i = 0
        while i < len(tokens):
            for length in range(min(self._longest, len(tokens) - i), 0, -1):
                names = self._trie.get(tuple(t.key for t in tokens[i:i + length]))
                if names is None:
                    continue
                part = tokens[i:i + length]
                spans.append(_Occurrence(
                    concepts=names, start=i, end=i + length,
                    surface=" ".join(t.surface for t in part),
                    confidence=min(t.confidence for t in part),
                ))
                consumed[i:i + length] = [True] * length
                i += length
                break
            else:
                i += 1
        return [span for span in spans if not self._negated(span, tokens, consumed)]

    def _negated(self, span: _Occurrence, tokens: Sequence[_Token],
                 consumed: Sequence[bool]) -> bool:
        # A cheap window rule: "no chest pain", "not bleeding heavily". A negator that
        # is part of a phrase ("can not breathe", "not responding") is the symptom.
        if not span.concepts & self._negatable:
            return False
        for j in range(span.start - 1, max(-1, span.start - 2 - self._window), -1):
            word = tokens[j].surface
            if word in self._breakers or word == CLAUSE_KEY:
                return False
            if word in self._negators and not consumed[j]:
                return True
        return False

    def _score(self, found: Sequence[_Occurrence]) -> dict[str, _Score]:
        best_of: dict[str, _Occurrence] = {}
        for occurrence in found:
            for name in occurrence.concepts:
                held = best_of.get(name)
                if held is None or occurrence.confidence > held.confidence:
                    best_of[name] = occurrence
        scores: dict[str, _Score] = {}
        for intent in self._intents.values():
            matched: list[tuple[float, _Cue, tuple[_Occurrence, ...]]] = []
            for cue in intent.cues:
                if all(name in best_of for name in cue.concepts):
                    evidence = tuple(dict.fromkeys(best_of[name] for name in cue.concepts))
                    strength = cue.weight * min(o.confidence for o in evidence)
                    matched.append((strength, cue, evidence))
            if not matched:
                continue
            matched.sort(key=lambda m: m[0], reverse=True)
            strength, cue, evidence = matched[0]
            raw = min(_MAX_RAW, strength + _EXTRA_CUE_BONUS * (len(matched) - 1))
            if raw > 0:
                scores[intent.name] = _Score(raw, cue, evidence)
        return scores

    def _apply(
        self, rule: _Rule, scores: Mapping[str, _Score], found: Sequence[_Occurrence]
    ) -> tuple[float, tuple[_Occurrence, ...], str, str | None] | None:
        if any(name in scores for name in rule.unless):
            return None
        triggers = [
            name for name in scores
            if (rule.if_intents is None or name in rule.if_intents)
            and (rule.if_kinds is None or self._intents[name].kind in rule.if_kinds)
        ]
        if not triggers:
            return None
        trigger = max(triggers, key=lambda n: (scores[n].raw, self._intents[n].priority))
        route_raw = scores[trigger].raw
        evidence = scores[trigger].evidence
        concept_surface = None
        if rule.if_concept is not None:
            held = [o for o in found if rule.if_concept in o.concepts]
            if not held:
                return None
            strongest = max(held, key=lambda o: o.confidence)
            route_raw = min(route_raw, strongest.confidence)
            concept_surface = strongest.surface
            # The trigger's own cue may include the concept ("child + fever"): the
            # reason names it once.
            evidence = tuple(o for o in evidence if o is not strongest) or evidence
        return route_raw, evidence, trigger, concept_surface

    # --- language model sentences ----------------------------------------------------

    def phrases(self) -> tuple[str, ...]:
        """Training sentences for the recognizer's language model.

        Templates x vocabulary (every filler of a slot used at least once), the extra
        phrases (yes, no, operator...), and any concept phrase no template produced,
        so every word the matcher listens for can be recognised.
        """
        if self._phrases is not None:
            return self._phrases
        out: dict[str, None] = {}
        fillers = {
            slot: [p for concept in refs for p in self._concepts[concept]]
            for slot, refs in self._slots.items()
        }
        for number, sentence in enumerate(self._sentences):
            slots = _SLOT_RE.findall(sentence)
            if not slots:
                out[_clean(sentence)] = None
                continue
            lists = [fillers[slot] for slot in slots]
            count = min(_SENTENCES_PER_TEMPLATE, max(len(items) for items in lists))
            # Walk every list in step (with co-prime-ish strides) rather than their full
            # product, which for two or three slots runs to hundreds of thousands;
            # each template starts elsewhere, so capped ones still share all fillers.
            for i in range(number * _TEMPLATE_OFFSET, number * _TEMPLATE_OFFSET + count):
                text = sentence
                for k, (slot, items) in enumerate(zip(slots, lists, strict=True)):
                    text = text.replace("{" + slot + "}", items[(i * (k + 1)) % len(items)], 1)
                for variant in _numbers_spelled(text, i):
                    for spoken in _as_spoken(_clean(variant)):
                        out[spoken] = None
        for phrase in self._extra:
            for spoken in _as_spoken(_clean(phrase)):
                out[spoken] = None
        heard = {w for sentence in out for w in normalize(sentence)}
        for phrases in self._concepts.values():
            for phrase in phrases:
                for variant in _numbers_spelled(phrase, 0):
                    if not set(normalize(variant)) <= heard:
                        out[_clean(variant)] = None
                        heard.update(normalize(variant))
        self._phrases = tuple(out)
        return self._phrases


_SPELLED = ("two", "three", "four", "six", "eighteen", "eleven")


def _numbers_spelled(text: str, i: int) -> list[str]:
    if NUMBER_KEY not in text:
        return [text]
    return [text.replace(NUMBER_KEY, _SPELLED[(i + k) % len(_SPELLED)]) for k in range(2)]


# Written forms and how callers say them: the language model gets both, so the
# recognizer hears "can't" as one word (not "can") and ``normalize`` expands it back.
_CONTRACTIONS = (
    ("can not", "can't"), ("do not", "don't"), ("does not", "doesn't"),
    ("will not", "won't"), ("is not", "isn't"), ("are not", "aren't"),
    ("i am", "i'm"), ("i have got", "i've got"), ("i have been", "i've been"),
    ("i have had", "i've had"), ("it is", "it's"),
    ("there is", "there's"), ("he is", "he's"), ("she is", "she's"),
    ("that is", "that's"),
)  # fmt: skip
_CONTRACTION_RES = tuple(
    (re.compile(rf"\b{re.escape(full)}\b"), short) for full, short in _CONTRACTIONS
)


def _as_spoken(sentence: str) -> list[str]:
    """``sentence`` and, when it has any, its contracted form ("i can't breathe")."""
    spoken = sentence
    for pattern, short in _CONTRACTION_RES:
        spoken = pattern.sub(short, spoken)
    return [sentence] if spoken == sentence else [sentence, spoken]


def _clean(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def _describe(evidence: Sequence[_Occurrence]) -> str:
    """``'chest pain'`` for adjacent words, ``'chest' + 'hurts'`` otherwise."""
    groups: list[list[_Occurrence]] = []
    for occurrence in sorted(evidence, key=lambda o: o.start):
        if groups and groups[-1][-1].end == occurrence.start:
            groups[-1].append(occurrence)
        else:
            groups.append([occurrence])
    return " + ".join("'" + " ".join(o.surface for o in group) + "'" for group in groups)

