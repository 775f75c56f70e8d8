"""Finding the matched word inside a found document, and cutting its snippet."""

from __future__ import annotations

from conversations.search_match import SNIPPET_WORDS, first_match, snippet, word_at_token
from conversations.search_query import Term, parse, positive_terms, tokens

CHEST_PAIN = Term(("chest", "pain"))


def test_the_first_match_is_the_earliest_of_any_term():
    parts = [tokens("hello there"), tokens("my chest pain and a refund")]
    assert first_match([Term(("refund",)), CHEST_PAIN], parts) == (1, 1)
    assert first_match([Term(("hel",), prefix=True)], parts) == (0, 0)
    assert first_match([Term(("nothing",))], parts) is None


def test_a_phrase_may_run_from_one_part_into_the_next_as_in_the_index():
    parts = [["my", "chest"], [], ["pain", "now"]]
    assert first_match([CHEST_PAIN], parts) == (0, 1)
    assert first_match([Term(("now",))], parts) == (2, 1)  # empty parts own nothing


def test_a_token_is_found_in_the_word_that_holds_it():
    words = ["e-mail", "[card]", "ok."]
    assert [word_at_token(words, index) for index in range(4)] == [0, 0, 1, 2]


def test_a_snippet_highlights_every_match_and_keeps_the_words_as_written():
    words = "Is it CHEST pain? Yes, chest pain and a refund.".split()
    terms = positive_terms(parse('"chest pain" OR refund* -yes'))
    assert snippet(words, terms, 2) == (
        ("Is it ", False),
        ("CHEST pain?", True),
        (" Yes, ", False),
        ("chest pain", True),
        (" and a ", False),
        ("refund.", True),
    )


def test_a_long_text_is_cut_around_the_match_with_ellipses():
    words = [f"w{i}" for i in range(100)]
    cut = snippet(words, [Term(("w50",))], 50)
    assert cut[0] == ("\u2026 w44 w45 w46 w47 w48 w49 ", False)
    assert cut[1] == ("w50", True)
    assert cut[2][0].endswith(f"w{44 + SNIPPET_WORDS - 1} \u2026")
    start = snippet(words, [Term(("w0",))], 0)
    assert start[0] == ("w0", True) and start[-1][0].endswith("\u2026")
    end = snippet(words, [Term(("w99",))], 99)
    assert end[0][0].startswith("\u2026 w76") and end[-1] == ("w99", True)
    assert snippet([], [Term(("x",))], 0) == ()
