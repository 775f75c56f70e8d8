"""The search query language's specification: what a QA person types, what it means,
and what reaches SQLite FTS5 and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from conversations import InvalidValue
from conversations.search_query import (
    MAX_TERMS,
    And,
    Not,
    Or,
    Term,
    parse,
    positive_terms,
    to_fts5,
    to_tsquery,
    tokens,
)


def T(*words: str, prefix: bool = False) -> Term:
    return Term(words, prefix)


# ---------------------------------------------------------------- words as the index cuts them


def test_words_are_lower_case_without_accents_and_cut_at_punctuation():
    assert tokens("Café, CRÈME-brûlée! it's 4 o'clock") == [
        "cafe",
        "creme",
        "brulee",
        "it",
        "s",
        "4",
        "o",
        "clock",
    ]
    assert tokens("ＦＵＬＬ width ﬁle") == ["full", "width", "file"]  # NFKC
    assert tokens("[card] under_score") == ["card", "under", "score"]
    assert tokens("Ünïcödé ДОБРЫЙ день") == ["unicode", "добрыи", "день"]


# ---------------------------------------------------------------- the language


def test_words_side_by_side_must_all_match():
    assert parse("chest pain") == And((T("chest"), T("pain")))
    assert parse("chest AND pain") == parse("chest pain")


def test_a_quoted_phrase_is_words_in_a_row():
    assert parse('"chest pain"') == T("chest", "pain")
    assert parse('"Insurance, denied!"') == T("insurance", "denied")


def test_or_binds_looser_than_and():
    assert parse("refund money OR return") == Or((And((T("refund"), T("money"))), T("return")))
    assert parse("a OR b OR c") == Or((T("a"), T("b"), T("c")))


def test_lower_case_operators_are_plain_words():
    assert parse("this or that") == And((T("this"), T("or"), T("that")))
    assert parse("not now") == And((T("not"), T("now")))


def test_not_and_minus_exclude():
    assert parse("refund NOT cancel") == And((T("refund"), Not(T("cancel"))))
    assert parse("refund -cancel") == parse("refund NOT cancel")
    assert parse("refund -(cancel OR void)") == And(
        (T("refund"), Not(Or((T("cancel"), T("void")))))
    )


def test_a_dash_inside_a_word_is_not_a_minus():
    assert parse("e-mail") == T("e", "mail")  # as the index cuts "e-mail"
    assert parse("follow-up -spam") == And((T("follow", "up"), Not(T("spam"))))


def test_a_star_ends_a_prefix():
    assert parse("refund*") == T("refund", prefix=True)
    assert parse('"credit ca"*') == T("credit", "ca", prefix=True)


def test_parentheses_group():
    assert parse("(refund OR return) order") == And((Or((T("refund"), T("return"))), T("order")))
    assert parse("((refund))") == T("refund")


def test_punctuation_alone_is_ignored_and_double_negation_cancels():
    assert parse("refund & ... order") == And((T("refund"), T("order")))
    assert parse("refund NOT -order") == And((T("refund"), T("order")))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "no words"),
        ("   !!! ", "no words"),
        ('"chest pain', "unclosed quote at column 1"),
        ("(refund", "has no matching"),
        ("refund)", "unexpected ) at column 7"),
        ("()", "empty parentheses"),
        ("OR refund", "OR needs something"),
        ("refund OR", "OR needs something"),
        ("AND refund", "AND at column 1"),
        ("refund NOT", "NOT at column 8 needs a word"),
        ("-cancel", "only excluded words"),
        ("NOT cancel -void", "only excluded words"),
        ("refund OR -cancel", "OR cannot join an excluded word"),
        ("ref*und", "'*' only ends a word"),
        ("*", "'*' only ends a word"),
        ("x" * 1001, "longer than 1000"),
        (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), "words and phrases"),
    ],
)
def test_bad_queries_say_what_is_wrong(query: str, message: str):
    with pytest.raises(InvalidValue, match=re.escape(message)):
        parse(query)


def test_the_terms_to_highlight_leave_out_exclusions_and_repeats():
    node = parse('"chest pain" OR (refund* -cancel) OR refund*')
    assert positive_terms(node) == (T("chest", "pain"), T("refund", prefix=True))


def test_a_term_matches_a_word_sequence_phrase_and_prefix_aware():
    words = ["my", "chest", "pain", "and", "refunds"]
    assert T("chest", "pain").matches_at(words, 1)
    assert not T("chest", "pain").matches_at(words, 2)
    assert T("refund", prefix=True).matches_at(words, 4)
    assert not T("refund").matches_at(words, 4)
    assert not T("refunds", "x").matches_at(words, 4)  # runs off the end


# ---------------------------------------------------------------- rendering


def test_fts5_gets_every_term_quoted():
    assert to_fts5(parse('chest "pain killer" OR refund* -cancel')) == (
        '(("chest" AND "pain killer") OR (("refund"*) NOT ("cancel")))'
    )


@pytest.mark.parametrize(
    "hostile", ["NEAR(a b)", "body:secret", "^start", "a + b", '"a" OR "b"*', "{a b}: c"]
)
def test_fts5_syntax_typed_by_a_user_stays_words(hostile: str):
    rendered = to_fts5(parse(hostile))
    # Outside quoted strings only our operators, parentheses and stars remain.
    outside = "".join(rendered.split('"')[::2])
    assert set(outside.replace("AND", "").replace("OR", "").replace("NOT", "")) <= set("() *")


def test_tsquery_uses_phrase_and_prefix_operators():
    assert to_tsquery(parse('"chest pain" OR refund* -cancel')) == (
        "(('chest' <-> 'pain') | ('refund':* & !'cancel'))"
    )
    assert to_tsquery(parse('"credit ca"*')) == "('credit' <-> 'ca':*)"


def test_sqlite_runs_the_rendered_queries_with_the_meaning_they_have_here():
    import sqlite3

    documents = {
        1: "I have chest pain since monday",
        2: "pain in my chest, I want a refund",
        3: "refunded yesterday but cancel the order",
        4: "e-mail me the NEAR(a b) body:secret",
    }
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(body, content='', tokenize='unicode61')")
    for rowid, text in documents.items():
        db.execute("INSERT INTO f (rowid, body) VALUES (?, ?)", (rowid, " ".join(tokens(text))))

    def found(query: str) -> set[int]:
        sql = "SELECT rowid FROM f WHERE f MATCH ?"
        return {row[0] for row in db.execute(sql, (to_fts5(parse(query)),))}

    assert found('"chest pain"') == {1}
    assert found("chest pain") == {1, 2}
    assert found("refund*") == {2, 3}
    assert found("refund* -cancel") == {2}
    assert found("monday OR cancel") == {1, 3}
    assert found("(monday OR refund) chest") == {1, 2}
    assert found("e-mail") == {4}
    assert found("NEAR(a b)") == {4}
    assert found("body:secret") == {4}
