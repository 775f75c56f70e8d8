import shutil

import pytest

from asr.engine_pocketsphinx import PocketsphinxEngine
from asr.pronounce import espeak_mnemonics_to_arpabet, espeak_phones, pronounce


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


def test_toothache_is_not_in_cmudict_but_its_parts_are(engine: PocketsphinxEngine):
    assert engine.lookup("toothache") is None
    never = lambda word: pytest.fail(f"espeak asked for {word}")  # noqa: E731
    assert pronounce("toothache", engine.lookup, never) == "T UW TH EY K"
    assert pronounce("earache", engine.lookup, never) == f"{engine.lookup('ear')} EY K"


def test_mnemonics_map_longest_match_first_and_refuse_unknown_symbols():
    assert espeak_mnemonics_to_arpabet("k'0vId") == "K AA V IH D"
    assert espeak_mnemonics_to_arpabet(",aIbju:pr'oUf@n") == "AY B Y UW P R OW F AH N"
    assert espeak_mnemonics_to_arpabet("k'0v!d") is None
    assert espeak_mnemonics_to_arpabet("  ") is None


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_word_with_no_dictionary_parts_comes_from_espeak(engine: PocketsphinxEngine):
    assert engine.lookup("covid") is None
    assert pronounce("covid", engine.lookup) == espeak_phones("covid") == "K AA V IH D"
