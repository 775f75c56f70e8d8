"""Intent matching for the hospital hotline: a specification in examples.

The vocabulary is ``ivr/flows/hospital_intents.yaml``. The dev corpus routes almost
all of its lines; a held-out set written before the vocabulary (other wordings of
the same needs) shows that it generalises.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from asr.results import Word
from ivr.intents import NUMBER_WORDS, IntentMatcher, normalize, stem
from ivr.source import FlowError, load_yaml

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "ivr" / "flows" / "hospital_intents.yaml"
DEV = ROOT / "tests" / "data" / "corpus" / "utterances_dev.tsv"
HELDOUT = ROOT / "tests" / "data" / "intents_heldout.tsv"


def _rows(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(text, intent) for text, intent in (line.split("\t") for line in lines if line)]


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher.from_file(SPEC)


def _route(matcher: IntentMatcher, text: str) -> str | None:
    return matcher.match(text).intent


# --- normalisation ----------------------------------------------------------------


def test_normalize_expands_contractions_spells_numbers_and_drops_punctuation() -> None:
    assert normalize("I can't breathe!") == ["i", "can", "not", "breathe"]
    assert normalize("It won't stop, I'm scared") == [
        "it", "will", "not", "stop", "i", "am", "scared"]
    assert normalize("she's 4") == ["she", "is", "four"]
    assert normalize("my dad's X-ray, 39") == ["my", "dad", "x", "ray", "thirty", "nine"]
    assert normalize("I CANNOT hear \u2019") == ["i", "can", "not", "hear"]


def test_stem_lets_word_forms_meet() -> None:
    assert stem("hurts") == stem("hurting") == stem("hurt")
    assert stem("aches") == stem("aching") == stem("ache")
    assert stem("swelling") == stem("swell")
    assert stem("vomited") == stem("vomiting") == stem("vomit")
    assert stem("sinuses") == stem("sinus")
    assert stem("bleeding") == stem("bleed")


# --- emergency wins over everything -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "pain in my chest",
        "my heart hurts",
        "there's a tightness in my chest",
        "he can't breathe",
        "I'm short of breath",
        "she is bleeding badly",
        "the bleeding won't stop",
        "my grandmother fainted",
        "my husband passed out",
        "he collapsed in the garden",
        "she's not responding",
        "his face is drooping",
        "her speech is slurred",
        "my right arm is weak",
        "I think he's having a stroke",
        "my throat is swelling up",
        "her tongue is swollen",
        "I'm having an allergic reaction",
    ],
)
def test_emergency_signs(matcher: IntentMatcher, text: str) -> None:
    result = matcher.match(text)
    assert result.intent == "emergency", result
    assert result.queue == "emergency"
    assert result.priority > max(
        matcher.match(t).priority for t in ("I have a rash", "I need a refill", "operator"))
    assert result.reason.startswith("emergency phrase '")


@pytest.mark.parametrize(
    "text",
    [
        "my son can't breathe",
        "my baby is choking",
        "my daughter fainted at school",
        "my little boy collapsed and has a rash",
        "my toddler's lips are swelling",
    ],
)
def test_emergency_wins_for_children_too(matcher: IntentMatcher, text: str) -> None:
    assert _route(matcher, text) == "emergency"


def test_emergency_wins_over_a_department_and_a_request(matcher: IntentMatcher) -> None:
    result = matcher.match("I need a refill, I have chest pain and a rash")
    assert result.intent == "emergency"
    assert result.confidence > 0.9  # the others do not dilute an emergency
    assert {name for name, _ in result.alternatives} >= {"pharmacy", "dermatology"}


def test_emergency_label_is_what_was_heard(matcher: IntentMatcher) -> None:
    assert matcher.match("I have chest pain").label == "chest pain"
    assert matcher.match("he passed out").label == "someone collapsed or unconscious"
    assert matcher.match("her face is drooping").label == "signs of a stroke"
    assert matcher.match("I need a refill").label == "a refill"


def test_an_arm_numb_without_a_side_is_neurology_not_a_stroke(matcher: IntentMatcher) -> None:
    assert _route(matcher, "my hands feel numb") == "neurology"
    assert _route(matcher, "my left arm is numb") == "emergency"


# --- negation: a cheap window rule -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I have no chest pain but my knee hurts", "orthopedics"),
        ("I don't have chest pain, I have a toothache", "dental"),
        ("it's not bleeding heavily, my gums bleed when I brush", "dental"),
        ("my son has no fever but he has a rash", "pediatrics"),
    ],
)
def test_negated_symptoms_do_not_count(matcher: IntentMatcher, text: str, intent: str) -> None:
    assert _route(matcher, text) == intent


def test_a_negated_symptom_alone_is_no_match(matcher: IntentMatcher) -> None:
    for text in ("my chest does not hurt", "I do not have a rash", "never had a headache"):
        result = matcher.match(text)
        assert result.intent is None, result
        assert result.confidence == 0.0


def test_a_negation_inside_the_symptom_is_the_symptom(matcher: IntentMatcher) -> None:
    # "not" belongs to the phrase here, it does not negate it.
    assert _route(matcher, "I can't breathe") == "emergency"
    assert _route(matcher, "he is not responding") == "emergency"
    assert _route(matcher, "my baby won't eat") == "pediatrics"
    assert _route(matcher, "I can't hear properly") == "ent"


# --- a child's symptom goes to pediatrics -------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "my son has an earache",
        "my daughter twisted her ankle",
        "my little girl has a rash",
        "my grandson keeps throwing up",
        "our newborn has a high temperature",
        "my 3 year old has a fever",
        "my six month old won't stop crying",
        "the kid has a headache",
        "my toddler has pink eye",
        "my boy has a toothache",
    ],
)
def test_a_childs_symptom_goes_to_pediatrics(matcher: IntentMatcher, text: str) -> None:
    result = matcher.match(text)
    assert result.intent == "pediatrics", result
    assert result.reason.startswith("child '")
    assert "-> pediatrics" in result.reason


def test_a_childs_request_is_still_a_request(matcher: IntentMatcher) -> None:
    assert _route(matcher, "I want my daughter's test results") == "test_results"
    assert _route(matcher, "I need to book an appointment for my son") == "appointments"
    assert _route(matcher, "I have a question about my son's bill") == "billing"


def test_an_adults_fever_alone_has_no_department(matcher: IntentMatcher) -> None:
    assert _route(matcher, "I have a fever") is None
    assert _route(matcher, "my son has a fever") == "pediatrics"


# --- departments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("there's a lump on my skin", "dermatology"),
        ("I have hives", "dermatology"),
        ("my shoulder is killing me", "orthopedics"),
        ("I fractured my leg", "orthopedics"),
        ("my knees are sore", "orthopedics"),
        ("my throat hurts", "ent"),
        ("I've got a blocked nose", "ent"),
        ("I keep throwing up", "gastroenterology"),
        ("my belly hurts", "gastroenterology"),
        ("the room is spinning", "neurology"),
        ("my head hurts", "neurology"),
        ("my eyesight is getting worse", "ophthalmology"),
        ("I have a cataract", "ophthalmology"),
        ("my molar is aching", "dental"),
        ("my filling fell out", "dental"),
    ],
)
def test_a_symptom_goes_to_its_department(matcher: IntentMatcher, text: str,
                                          intent: str) -> None:
    assert _route(matcher, text) == intent


# --- requests and the operator ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I need to refill my inhaler", "pharmacy"),
        ("I'm running out of my tablets", "pharmacy"),
        ("can I move my appointment to friday", "appointments"),
        ("I'd like a check up", "appointments"),
        ("I have to cancel my booking", "appointments"),
        ("why was I charged for this", "billing"),
        ("is this covered by my insurance", "billing"),
        ("my ultrasound report", "test_results"),
        ("have my results come back", "test_results"),
        ("put me through to reception", "operator"),
        ("I want a human", "operator"),
        ("can I speak to somebody", "operator"),
    ],
)
def test_requests(matcher: IntentMatcher, text: str, intent: str) -> None:
    assert _route(matcher, text) == intent


@pytest.mark.parametrize(
    "text",
    ["can I reschedule my dentist", "please rebook my tooth filling", "cancel my eye test"],
)
def test_booking_with_a_department_is_an_appointment(matcher: IntentMatcher, text: str) -> None:
    result = matcher.match(text)
    assert result.intent == "appointments"
    assert result.reason.startswith("booking '")


def test_booking_does_not_hide_an_emergency(matcher: IntentMatcher) -> None:
    assert _route(matcher, "I wanted to book a visit but now I can't breathe") == "emergency"


def test_someone_to_look_at_is_not_a_request_for_a_person(matcher: IntentMatcher) -> None:
    assert _route(matcher, "I want someone to look at my rash") == "dermatology"


# --- confidence ------------------------------------------------------------------


def test_nothing_heard_is_no_match_with_zero_confidence(matcher: IntentMatcher) -> None:
    for text in ("", "hello", "um well you know", "what time is it"):
        result = matcher.match(text)
        assert result == matcher.match("hello")
        assert (result.intent, result.queue, result.confidence) == (None, None, 0.0)


def test_a_clear_match_is_confident(matcher: IntentMatcher) -> None:
    assert matcher.match("I have a toothache").confidence >= 0.9
    assert matcher.match("I want to pay my bill").confidence >= 0.9


def test_weak_evidence_gives_low_confidence(matcher: IntentMatcher) -> None:
    # A body part alone, with nothing wrong said about it.
    result = matcher.match("it's about my ear")
    assert result.intent == "ent"
    assert result.confidence <= 0.6


def test_two_departments_tied_give_low_confidence(matcher: IntentMatcher) -> None:
    result = matcher.match("my ear and my eye hurt")
    assert result.intent in {"ent", "ophthalmology"}
    assert result.confidence < 0.5
    assert result.alternatives[0][0] in {"ent", "ophthalmology"} - {result.intent}


def _words(text: str, low: dict[str, float]) -> list[Word]:
    return [
        Word(w, i * 0.3, i * 0.3 + 0.25, low.get(w, 0.95)) for i, w in enumerate(text.split())
    ]


def test_a_key_word_heard_at_low_confidence_weakens_the_match(matcher: IntentMatcher) -> None:
    text = "I have a toothache"
    sure = matcher.match(text, _words(text, {}))
    unsure = matcher.match(text, _words(text, {"toothache": 0.3}))
    assert sure.intent == unsure.intent == "dental"
    assert sure.confidence >= 0.9
    assert unsure.confidence <= 0.3


def test_a_low_confidence_filler_word_does_not(matcher: IntentMatcher) -> None:
    text = "I have a toothache"
    assert matcher.match(text, _words(text, {"a": 0.2})).confidence >= 0.9


def test_an_unsure_emergency_is_still_routed_but_marked_unsure(matcher: IntentMatcher) -> None:
    text = "my chest hurts"
    result = matcher.match(text, _words(text, {"chest": 0.4}))
    assert result.intent == "emergency"
    assert result.confidence <= 0.4


def test_words_are_matched_when_given(matcher: IntentMatcher) -> None:
    # The recognizer's words are the evidence; contractions inside one word expand.
    words = [Word("i", 0.0, 0.1, 0.9), Word("can't", 0.1, 0.4, 0.9),
             Word("breathe", 0.4, 0.8, 0.8)]
    result = matcher.match("i can't breathe", words)
    assert result.intent == "emergency"
    assert result.confidence == pytest.approx(0.8)


# --- the corpora ----------------------------------------------------------------


def _accuracy(matcher: IntentMatcher, rows: list[tuple[str, str]]) -> tuple[float, list[str]]:
    misses = [f"{text!r}: want {want}, got {matcher.match(text)}"
              for text, want in rows if _route(matcher, text) != want]
    return 1 - len(misses) / len(rows), misses


def test_dev_corpus_routes_at_least_98_percent(matcher: IntentMatcher) -> None:
    rows = _rows(DEV)
    assert len(rows) >= 50
    accuracy, misses = _accuracy(matcher, rows)
    assert accuracy >= 0.98, misses


def test_heldout_utterances_route_at_least_90_percent(matcher: IntentMatcher) -> None:
    rows = _rows(HELDOUT)
    assert len(rows) >= 60
    assert {intent for _, intent in rows} == set(matcher.intents())
    accuracy, misses = _accuracy(matcher, rows)
    assert accuracy >= 0.90, misses


def test_no_dev_line_is_in_the_vocabulary_verbatim() -> None:
    spec = SPEC.read_text(encoding="utf-8").lower()
    for text, _ in _rows(DEV):
        assert text.lower() not in spec


_FILLERS = ("uh", "um", "the", "well", "like", "okay")


@pytest.mark.parametrize("corpus", [DEV, HELDOUT], ids=["dev", "heldout"])
def test_one_non_key_word_dropped_or_substituted_still_routes(
    matcher: IntentMatcher, corpus: Path
) -> None:
    # ASR noise: one word the vocabulary does not listen for is lost or misheard.
    key_words = matcher.vocabulary()
    rng = random.Random(20240601)
    failures = []
    trials = 0
    for text, want in _rows(corpus):
        if _route(matcher, text) != want:
            continue  # only what routes on clean text can be robust
        words = normalize(text)
        free = [i for i, w in enumerate(words) if w not in key_words | NUMBER_WORDS]
        for _ in range(3):
            if not free:
                break
            i = rng.choice(free)
            dropped = words[:i] + words[i + 1:]
            swapped = words[:i] + [rng.choice(_FILLERS)] + words[i + 1:]
            for noisy in (dropped, swapped):
                trials += 1
                if _route(matcher, " ".join(noisy)) != want:
                    failures.append(f"{' '.join(noisy)!r} (from {text!r})")
    assert trials > 100
    assert not failures


# --- phrases for the recognizer's language model ----------------------------------


def test_phrases_cover_every_word_the_matcher_listens_for(matcher: IntentMatcher) -> None:
    phrases = matcher.phrases()
    heard = {word for sentence in phrases for word in normalize(sentence)}
    missing = matcher.vocabulary() - heard
    assert not missing
    assert {"yes", "no", "operator"} <= heard


def test_phrases_are_generated_sentences_not_a_word_list(matcher: IntentMatcher) -> None:
    phrases = matcher.phrases()
    assert 300 <= len(phrases) <= 5000
    assert len(set(phrases)) == len(phrases)
    assert "my knee hurts" in phrases or "my knee is aching" in phrases or any(
        p.startswith("my knee ") for p in phrases)
    assert any(p.startswith("my son has ") for p in phrases)
    assert any(re.search(r"\b(two|three|four|six) year old\b", p) for p in phrases)
    assert all("{" not in p and "#" not in p for p in phrases)
    # Most sentences are several words, as callers say them.
    assert sum(len(p.split()) >= 3 for p in phrases) / len(phrases) > 0.8


def test_generated_phrases_route_to_some_intent(matcher: IntentMatcher) -> None:
    templated = [p for p in matcher.phrases() if p.startswith(("i have a question about my",
                                                               "i need to "))]
    assert templated
    assert all(_route(matcher, p) is not None for p in templated)


def test_intents_queues_and_labels(matcher: IntentMatcher) -> None:
    assert set(matcher.intents()) == {
        "emergency", "pediatrics", "dermatology", "orthopedics", "ent",
        "gastroenterology", "neurology", "ophthalmology", "dental", "pharmacy",
        "appointments", "billing", "test_results", "operator"}
    assert matcher.queue_of("emergency") == "emergency"
    assert matcher.label_of("pharmacy") == "a prescription or medication question"


# --- validation: file, line and field -------------------------------------------

_GOOD = """\
concepts:
  tooth: [tooth, teeth]
  child: [son, daughter]
  bill: [bill]
intents:
  dental:
    label: a tooth problem
    cues: [tooth]
  pediatrics:
    label: a child who is unwell
    cues: [child + tooth]
  billing:
    label: a bill
    kind: request
    cues: [bill]
rules:
  - name: child
    if_concept: child
    if_kinds: [symptom]
    route: pediatrics
    overrides: [symptom]
"""


def _build(text: str, prefix: str = "") -> IntentMatcher:
    data, lines = load_yaml(text, "intents.yaml")
    return IntentMatcher.from_spec(data, lines, prefix)


def test_a_small_spec_builds_and_routes() -> None:
    matcher = _build(_GOOD)
    assert matcher.match("my teeth").intent == "dental"
    assert matcher.match("my son's tooth").intent == "pediatrics"
    assert matcher.queue_of("billing") == "billing"  # the queue defaults to the intent


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "problem"),
    [
        ("    cues: [child + tooth]", "    cues: [child + tooht]", 11,
         "intents.pediatrics.cues.0", "no concept named 'tooht'"),
        ("    route: pediatrics", "    route: pediatric", 20,
         "rules.0.route", "no intent named 'pediatric'"),
        ("  bill: [bill]", "  bill: []", 4, "concepts.bill", "the list is empty"),
        ("    label: a bill\n", "    label: a bill\n    colour: blue\n", 14,
         "intents.billing.colour", "unknown key 'colour'"),
        ("    kind: request", "    kind: question", 14,
         "intents.billing.kind", "'question' is not one of"),
        ("    cues: [bill]", "    cues: bill", 15, "intents.billing.cues", "expected a list"),
        ("    if_kinds: [symptom]", "    if_kinds: [symptoms]", 19,
         "rules.0.if_kinds.0", "'symptoms' is not one of"),
        ("    if_concept: child", "    if_concept: children", 18,
         "rules.0.if_concept", "no concept named 'children'"),
        ("    cues: [tooth]", "    cues: [{when: tooth, weight: 2}]", 8,
         "intents.dental.cues.0.weight", "outside"),
    ],
)
def test_validation_errors_name_file_line_and_field(
    old: str, new: str, line: int, field: str, problem: str
) -> None:
    assert old in _GOOD
    with pytest.raises(FlowError) as caught:
        _build(_GOOD.replace(old, new, 1))
    error = caught.value
    assert (error.source, error.line, error.field_path) == ("intents.yaml", line, field)
    assert problem in error.problem
    assert str(error).startswith(f"intents.yaml:{line}: {field}: ")


def test_an_unknown_intent_in_unless_names_its_line() -> None:
    text = _GOOD.replace("    overrides: [symptom]",
                         "    overrides: [symptom]\n    unless: [emergency]")
    with pytest.raises(FlowError) as caught:
        _build(text)
    assert caught.value.field_path == "rules.0.unless.0"
    assert caught.value.line == 22
    assert "no intent named 'emergency'" in caught.value.problem


def test_a_template_slot_must_be_defined() -> None:
    text = _GOOD + "templates:\n  slots:\n    t: [tooth]\n  sentences:\n    - my {t} {x}\n"
    with pytest.raises(FlowError) as caught:
        _build(text)
    assert (caught.value.line, caught.value.field_path) == (26, "templates.sentences.0")
    assert "no slot named 'x'" in caught.value.problem


def test_errors_inside_an_embedded_spec_carry_the_prefix() -> None:
    # hospital.yaml may embed the spec under a key instead of naming a file.
    embedded = "intents_spec:\n" + "".join(f"  {line}\n" for line in _GOOD.splitlines())
    embedded = embedded.replace("cues: [bill]", "cues: []")
    data, lines = load_yaml(embedded, "hospital.yaml")
    with pytest.raises(FlowError) as caught:
        IntentMatcher.from_spec(data["intents_spec"], lines, "intents_spec")
    assert caught.value.field_path == "intents_spec.intents.billing.cues"
    assert caught.value.line == 16
    assert str(caught.value).startswith("hospital.yaml:16: intents_spec.intents.billing.cues:")


def test_missing_sections_and_wrong_top_keys() -> None:
    with pytest.raises(FlowError, match=r"intents.yaml:1: 'intents' is missing"):
        _build("concepts:\n  a: [b]\n")
    with pytest.raises(FlowError, match=r"intents.yaml:3: colours: unknown key"):
        _build("concepts:\n  a: [b]\ncolours: 3\n")


def test_the_hospital_spec_file_loads_with_its_own_name() -> None:
    assert IntentMatcher.from_file(SPEC).intents()[0] == "emergency"
