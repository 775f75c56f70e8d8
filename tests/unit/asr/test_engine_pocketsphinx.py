from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from decoding import decode

from asr.engine import RecognitionContext
from asr.engine_pocketsphinx import CMN_HOLD_S, CMN_INIT, PocketsphinxEngine
from ivr.intents import IntentMatcher

HOSPITAL_INTENTS = Path(__file__).parents[3] / "ivr" / "flows" / "hospital_intents.yaml"


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


@pytest.mark.parametrize(
    ("fixture", "text"),
    [("en_toothache", "i have a toothache"), ("en_chest", "my chest hurts"),
     ("en_refill", "i need a refill")],
)  # fmt: skip
def test_phrases_with_a_phrase_lm(engine, symptoms, load_wav: Callable, fixture: str, text: str):
    pcm = load_wav(fixture)
    results = decode(engine.decoder(), pcm, symptoms)
    *partials, final = results
    assert final.final and final.text == text
    assert [w.text for w in final.words] == text.split()
    assert partials and not any(p.final for p in partials)
    texts = [p.text for p in partials]
    assert all(a != b for a, b in zip(texts, texts[1:], strict=False)), "a partial repeated"
    duration_s = len(pcm) / 8000
    starts = [w.start_s for w in final.words]
    assert starts == sorted(starts)
    for word in final.words:
        assert 0.0 <= word.start_s < word.end_s <= duration_s
        assert 0.0 <= word.confidence <= 1.0
    # 300 ms of silence pads each fixture: the first word cannot start before it.
    assert final.words[0].start_s >= 0.25
    assert 0.0 < final.confidence <= 1.0


def _hiss(pcm: np.ndarray) -> np.ndarray:
    """The speaker's side of a line: the fixture over a -50 dBFS noise floor."""
    return pcm + np.random.default_rng(1).normal(0.0, 100.0, len(pcm))


def _muffled(pcm: np.ndarray) -> np.ndarray:
    """A dull line: a 4-tap moving average (-6 dB at ~1 kHz, -inf at 2 kHz)."""
    return np.convolve(_hiss(pcm), np.ones(4) / 4, "same").astype(np.int16)


def _quiet(pcm: np.ndarray) -> np.ndarray:
    """A faint line: -20 dB."""
    return (_hiss(pcm) * 0.1).astype(np.int16)


@pytest.mark.parametrize("line", [_muffled, _quiet])
@pytest.mark.parametrize(
    ("fixture", "text"),
    [("en_toothache", "i have a toothache"), ("en_chest", "my chest hurts"),
     ("en_refill", "i need a refill")],
)  # fmt: skip
def test_a_finals_only_decoder_normalises_each_utterance_by_its_own_cepstral_mean(
    engine, symptoms, load_wav: Callable, line: Callable, fixture: str, text: str
):
    # The live decoder, starting from CMN_INIT, heard "my child hurts" and "i have a
    # trouble bill" on the dull line, "my can't hurts" and "i have a to pay" on the faint.
    decoder = engine.decoder(partials=False)
    results = decode(decoder, line(load_wav(fixture)), symptoms)
    assert [r.final for r in results] == [True], "finals only"
    assert results[0].text == text
    assert [w.text for w in results[0].words] == text.split()
    # 300 ms of silence pads each fixture: word times are the audio's, held or not.
    assert results[0].words[0].start_s >= 0.25


def test_a_finals_only_utterance_longer_than_the_hold_is_decoded_whole(
    engine, symptoms, load_wav: Callable
):
    pcm = np.concatenate([load_wav("en_chest"), load_wav("en_refill")])
    assert len(pcm) / 8000 > CMN_HOLD_S
    final = decode(engine.decoder(partials=False), pcm, symptoms)[-1]
    assert final.text == "my chest hurts i need a refill"
    assert final.words[-1].end_s <= len(pcm) / 8000


def test_the_cepstral_mean_of_speech_and_of_too_little_audio(engine, load_wav: Callable):
    assert engine.cepstral_mean(np.zeros(100, np.int16)) == CMN_INIT
    speech = np.repeat(load_wav("en_chest"), 2)  # 16 kHz, near enough for a mean
    mean = [float(c) for c in engine.cepstral_mean(speech).split(",")]
    assert len(mean) == 13 and mean != [float(c) for c in CMN_INIT.split(",")]
    assert engine.cepstral_mean(speech) == engine.cepstral_mean(speech), "no state between calls"


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_yes_no_grammar(engine, yes_no, load_wav: Callable, answer: str):
    final = decode(engine.decoder(), load_wav(f"en_{answer}"), yes_no)[-1]
    assert final.text == answer and final.confidence > 0.5


def test_grammar_only_returns_its_phrases(engine, load_wav: Callable):
    context = RecognitionContext(grammar=("yes", "no"), name="yes-no-only")
    final = decode(engine.decoder(), load_wav("en_refill"), context)[-1]
    assert final.text in ("", "yes", "no")


def test_an_out_of_dictionary_word_in_a_grammar(engine, load_wav: Callable):
    context = RecognitionContext(grammar=("I have a toothache", "I need a refill"), name="oov")
    final = decode(engine.decoder(), load_wav("en_toothache"), context)[-1]
    assert final.text == "i have a toothache"


def test_one_decoder_many_utterances_and_contexts(engine, symptoms, yes_no, load_wav: Callable):
    decoder = engine.decoder()
    texts = [decode(decoder, load_wav(name), context)[-1].text
             for name, context in [("en_refill", symptoms), ("en_yes", yes_no),
                                   ("en_chest", symptoms), ("en_no", yes_no)]]  # fmt: skip
    decoder.close()
    assert texts == ["i need a refill", "yes", "my chest hurts", "no"]


def test_silence_gives_an_empty_final(engine, symptoms):
    final = decode(engine.decoder(), np.zeros(8000, dtype=np.int16), symptoms)[-1]
    assert final.final and final.text == "" and final.words == () and final.confidence == 0.0


def test_restart_mid_utterance_and_close(engine, symptoms, load_wav: Callable):
    decoder = engine.decoder()
    pcm = load_wav("en_chest")
    decoder.start(symptoms)
    decoder.accept(pcm[:4000].tobytes())
    assert decode(decoder, load_wav("en_refill"), symptoms)[-1].text == "i need a refill"
    decoder.close()
    with pytest.raises(RuntimeError):
        decoder.start(symptoms)


def test_an_open_question_admits_everyday_words_and_keeps_its_phrases(
    engine, symptoms, load_wav: Callable
):
    # The demo flow's ~4,750 intent sentences: everyday words at a 0.2 share do not
    # drown them (against the 30 phrases of `symptoms` they did: "my can't heard i").
    phrases = IntentMatcher.from_file(HOSPITAL_INTENTS).phrases()
    open_question = RecognitionContext(phrases=phrases, general_english=0.2, name="open")
    words = engine.compile(open_question).words
    assert {"the", "because", "yesterday"} <= words.keys()
    assert "because" not in engine.compile(symptoms).words
    for fixture, text in [("en_chest", "my chest hurts"), ("en_toothache", "i have a toothache")]:
        assert decode(engine.decoder(), load_wav(fixture), open_question)[-1].text == text


def test_general_bigrams_list_telling_pairs_normalised_over_the_vocabulary(engine):
    vocabulary = {"chest", "pain", "the", "my", "a", "hurts", "payment", "plan", "tonsillitis"}
    table = engine._general_bigrams(vocabulary)
    common = engine._common_words()
    unigram = common["pain"] / sum(common.values())
    # "chest pain" is far likelier than "pain" alone; "</s>" may follow a word.
    assert table["chest"]["pain"] > 10 * unigram
    assert "plan" in table["payment"]
    assert "tonsillitis" not in table  # outside general English: no row, no follower
    for history, row in table.items():
        assert history == "<s>" or history in vocabulary
        assert set(row) <= vocabulary | {"</s>"}
        assert 0.0 < sum(row.values()) <= 1.0 + 1e-9


def test_a_grammar_utterance_of_silence_is_an_empty_final(engine, yes_no) -> None:
    decoder = engine.decoder()
    final = decode(decoder, np.zeros(1600, np.int16), yes_no)[-1]
    assert final.final and final.text == "" and final.words == ()
    # ... and the decoder goes on: the next utterance and closing work.
    decode(decoder, np.zeros(1600, np.int16), yes_no)
    decoder.close()
