"""N-best alternatives on a final hypothesis, and the matcher choosing among them."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.results import Hypothesis, Word
from ivr.intents import IntentMatcher

SPEC = Path(__file__).resolve().parents[3] / "ivr" / "flows" / "hospital_intents.yaml"


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher.from_file(SPEC)


def _final(text: str, confidence: float, alternatives: tuple[str, ...] = ()) -> Hypothesis:
    words = tuple(Word(w, 0.0, 0.1, confidence) for w in text.split())
    return Hypothesis(text, words, confidence, True, alternatives)


def test_alternatives_default_to_none() -> None:
    assert Hypothesis("yes", (), 1.0, True).alternatives == ()


def test_match_best_without_alternatives_is_match(matcher: IntentMatcher) -> None:
    hyp = _final("my knee is swollen", 0.9)
    assert matcher.match_best(hyp) == matcher.match(hyp.text, hyp.words)


def test_a_sure_best_text_is_kept(matcher: IntentMatcher) -> None:
    hyp = _final("reception please", 0.95, ("i can't breathe", "i have can't breathe"))
    assert matcher.match_best(hyp).intent == "operator"


def test_an_emergency_most_alternatives_hear_wins_over_an_unsure_best_text(
    matcher: IntentMatcher,
) -> None:
    hyp = _final(
        "i can't hurt in my left arm is numb",
        0.74,
        (
            "my cat hurt in my left arm is numb",
            "i can't hurt and my left arm is numb",
            "my can't hurt in my left arm is numb",
            "my chest hurts and my left arm is numb",
        ),
    )
    assert matcher.match(hyp.text, hyp.words).intent == "neurology"
    best = matcher.match_best(hyp)
    assert best.intent == "emergency"
    assert best.confidence == pytest.approx(0.75)  # three alternatives of four


def test_one_alternative_hearing_an_emergency_is_not_enough(matcher: IntentMatcher) -> None:
    hyp = _final("my knee is swollen", 0.9, ("my knee is swollen", "i can't breathe", "my knees"))
    assert matcher.match_best(hyp).intent == "orthopedics"


def test_alternatives_vote_when_the_best_text_has_no_intent(matcher: IntentMatcher) -> None:
    hyp = _final("i have got hear", 0.4, ("i have a toothache", "i have toothache", "i have hair"))
    best = matcher.match_best(hyp)
    assert best.intent == "dental"
    assert 0.0 < best.confidence <= 1.0


def test_language_model_phrases_have_spoken_contractions(matcher: IntentMatcher) -> None:
    phrases = set(matcher.phrases())
    assert "i can't breathe" in phrases
    assert "i can not breathe" in phrases
