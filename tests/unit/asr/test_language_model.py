import math
import os
import re
import tempfile

import pocketsphinx  # type: ignore[import-untyped]
import pytest

from asr.language_model import build_arpa, words_of

PHRASES = ["I have a toothache", "my chest hurts", "I need a refill", "I need an appointment",
           "my back hurts", "I need a refill"]  # fmt: skip


def parse_arpa(
    text: str,
) -> tuple[list[dict[tuple[str, ...], tuple[float, float | None]]], list[int]]:
    sections: list[dict[tuple[str, ...], tuple[float, float | None]]] = [{}]
    declared: list[int] = []
    order = 0
    for line in text.splitlines():
        if m := re.fullmatch(r"ngram (\d+)=(\d+)", line):
            declared.append(int(m.group(2)))
        elif m := re.fullmatch(r"\\(\d+)-grams:", line):
            order = int(m.group(1))
            sections.append({})
        elif order and line and not line.startswith("\\"):
            fields = line.split("\t")
            gram = tuple(fields[1].split())
            assert len(gram) == order
            sections[order][gram] = (
                float(fields[0]),
                float(fields[2]) if len(fields) > 2 else None,
            )
    return sections, declared


def prob(sections, history: tuple[str, ...], word: str) -> float:
    weight = 0.0
    while True:
        gram = (*history, word)
        if gram in sections[len(gram)]:
            return 10 ** (weight + sections[len(gram)][gram][0])
        bow = sections[len(history)].get(history, (0.0, 0.0))[1] if history else 0.0
        weight += bow or 0.0
        history = history[1:]


def test_words_of_normalizes_case_and_punctuation():
    assert words_of("I'm fine, THANKS!  ") == ["i'm", "fine", "thanks"]


def test_header_counts_match_sections_and_has_sentence_markers():
    sections, declared = parse_arpa(build_arpa(PHRASES))
    assert declared == [len(s) for s in sections[1:]]
    assert sections[1][("<s>",)][0] == -99.0
    assert ("</s>",) in sections[1]
    assert ("<s>", "i", "need") in sections[3]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_history_sums_to_one(order: int):
    sections, _ = parse_arpa(build_arpa(PHRASES, order=order))
    vocabulary = [w for (w,) in sections[1] if w != "<s>"]
    histories = [()] + [g for n in range(1, order) for g in sections[n] if g[-1] != "</s>"]
    for history in histories:
        total = sum(
            prob(sections, history[-(order - 1) :] if order > 1 else (), w) for w in vocabulary
        )
        assert total == pytest.approx(1.0, abs=1e-4), history


def test_backoff_weights_are_probabilities_and_seen_beats_unseen():
    sections, _ = parse_arpa(build_arpa(PHRASES))
    for n in (1, 2):
        for gram, (_, bow) in sections[n].items():
            if gram[-1] != "</s>":
                assert bow is not None and bow <= 0.0, gram
    assert prob(sections, ("i", "need"), "a") > prob(sections, ("i", "need"), "chest")
    assert prob(sections, ("need", "a"), "refill") > prob(sections, ("need", "a"), "toothache")


BACKGROUND = {"the": 40.0, "my": 10.0, "hurts": 5.0, "slurred": 1.0, "</s>": 99.0}


@pytest.mark.parametrize("order", [1, 3])
def test_background_words_join_the_vocabulary_and_every_history_still_sums_to_one(order: int):
    sections, _ = parse_arpa(
        build_arpa(PHRASES, order=order, background=BACKGROUND, background_weight=0.2)
    )
    vocabulary = [w for (w,) in sections[1] if w != "<s>"]
    assert {"the", "slurred"} <= set(vocabulary)
    histories = [()] + [g for n in range(1, order) for g in sections[n] if g[-1] != "</s>"]
    for history in histories:
        total = sum(prob(sections, history, w) for w in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-4), history


def test_background_takes_its_share_of_unigrams_in_proportion():
    plain, _ = parse_arpa(build_arpa(PHRASES))
    mixed, _ = parse_arpa(build_arpa(PHRASES, background=BACKGROUND, background_weight=0.2))
    unigram = {g[0]: 10**v for g, (v, _) in mixed[1].items() if g != ("<s>",)}
    # 0.2 of the mass over the, my, hurts, slurred (56 parts; </s> is never background).
    assert unigram["the"] / unigram["slurred"] == pytest.approx(40.0)
    assert unigram["slurred"] == pytest.approx(0.2 / 56)
    assert unigram["refill"] == pytest.approx(0.8 * 10 ** plain[1][("refill",)][0])
    # In-domain sequences still win: the phrases' bigrams are untouched.
    assert prob(mixed, ("need", "a"), "refill") > prob(mixed, ("need", "a"), "the")


# p(word | history) of the background, listed where it beats its backoff.
BACKGROUND_BIGRAMS = {
    "<s>": {"my": 0.3, "the": 0.2},
    "the": {"slurred": 0.1, "chest": 0.05},
    "is": {"slurred": 0.4},  # "is" is a phrase word the background never has as unigram
    "slurred": {"</s>": 0.6},
    "need": {"the": 0.5},
}


@pytest.mark.parametrize("order", [2, 3])
def test_background_bigrams_keep_every_history_summing_to_one(order: int):
    sections, _ = parse_arpa(
        build_arpa(
            PHRASES,
            order=order,
            background=BACKGROUND,
            background_weight=0.2,
            background_bigrams=BACKGROUND_BIGRAMS,
        )
    )
    vocabulary = [w for (w,) in sections[1] if w != "<s>"]
    histories = [()] + [g for n in range(1, order) for g in sections[n] if g[-1] != "</s>"]
    assert ("the", "slurred") in sections[2] and ("slurred", "</s>") in sections[2]
    for history in histories:
        total = sum(prob(sections, history, w) for w in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-4), history


def test_background_bigrams_are_interpolated_at_every_order():
    unigrams_only, _ = parse_arpa(build_arpa(PHRASES, background=BACKGROUND, background_weight=0.2))
    mixed, _ = parse_arpa(
        build_arpa(
            PHRASES,
            background=BACKGROUND,
            background_weight=0.2,
            background_bigrams=BACKGROUND_BIGRAMS,
        )
    )
    # A listed pair: (1 - 0.2) p_phrases + 0.2 p_background; "the" is no phrase history.
    slurred = 10 ** mixed[1][("slurred",)][0]
    assert prob(mixed, ("the",), "slurred") == pytest.approx(0.8 * 0 + 0.2 * 0.1, rel=1e-3)
    assert prob(mixed, ("the",), "slurred") > 2 * slurred
    assert prob(mixed, ("the",), "slurred") > prob(unigrams_only, ("the",), "slurred")
    # The phrases still win where they have seen the words, a trigram included.
    assert prob(mixed, ("need", "a"), "refill") > prob(mixed, ("need", "a"), "the")
    assert prob(mixed, ("i", "need"), "a") > prob(mixed, ("i", "need"), "the")
    # A history the phrases know gives the background only the share its backoff
    # leaves (``0.2 * bow``), not 0.2: "a" after "need" keeps more than 0.8 of it.
    assert prob(mixed, ("need",), "a") > 0.85 * prob(unigrams_only, ("need",), "a")


def test_no_background_weight_changes_nothing():
    assert build_arpa(PHRASES, background=BACKGROUND, background_weight=0.0) == build_arpa(PHRASES)
    assert build_arpa(
        PHRASES,
        background=BACKGROUND,
        background_weight=0.0,
        background_bigrams=BACKGROUND_BIGRAMS,
    ) == build_arpa(PHRASES)
    with pytest.raises(ValueError, match="background_weight"):
        build_arpa(PHRASES, background=BACKGROUND, background_weight=1.0)


def test_rejects_empty_input():
    with pytest.raises(ValueError, match="no words"):
        build_arpa(["", " ,. "])
    with pytest.raises(ValueError, match="order"):
        build_arpa(PHRASES, order=0)


def test_pocketsphinx_loads_the_model():
    decoder = pocketsphinx.Decoder(lm=None, loglevel="FATAL")
    with tempfile.NamedTemporaryFile("w", suffix=".arpa", delete=False) as handle:
        handle.write(build_arpa(PHRASES))
    try:
        lm = pocketsphinx.NGramModel(decoder.config, decoder.logmath, handle.name)
    finally:
        os.unlink(handle.name)
    # NGramModel.score returns a log score in the decoder's log base; compare orders.
    assert math.isfinite(lm.prob(["refill", "a", "need"]))
    assert lm.prob(["refill", "a", "need"]) > lm.prob(["chest", "a", "need"])
