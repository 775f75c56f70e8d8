"""PII redaction's specification: what is masked, what is left readable, and how.

The card numbers are the well-known test numbers (4111 1111 1111 1111 passes the
Luhn check; 4111 1111 1111 1112 does not).
"""

from __future__ import annotations

import pytest

from conversations import RedactionPolicy
from conversations.redaction import luhn_valid

POLICY = RedactionPolicy()
CARD_WORDS = "four one one one one one one one one one one one one one one one"


# ---------------------------------------------------------------- Luhn (ISO/IEC 7812-1 annex B)


@pytest.mark.parametrize(
    "digits", ["4111111111111111", "5500005555555559", "378282246310005", "79927398713"]
)
def test_luhn_accepts_valid_numbers(digits: str):
    assert luhn_valid(digits)


@pytest.mark.parametrize("digits", ["4111111111111112", "79927398710", "1234567812345678"])
def test_luhn_rejects_a_wrong_check_digit(digits: str):
    assert not luhn_valid(digits)


# ---------------------------------------------------------------- typed text


@pytest.mark.parametrize(
    "typed",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",  # Amex, 15 digits
    ],
)
def test_a_typed_card_number_is_masked_whatever_its_grouping(typed: str):
    assert POLICY.text(f"my card is {typed}, thanks") == "my card is [card], thanks"


def test_a_card_beside_a_security_code_is_still_found_as_a_card():
    assert POLICY.text("4111 1111 1111 1111 123") == "[card] 123"
    no_ids = RedactionPolicy(ids=False)
    assert no_ids.text("card 4111 1111 1111 1111 123 exp") == "card [card] 123 exp"


def test_sixteen_digits_failing_luhn_are_not_a_card_but_still_an_id():
    assert POLICY.text("ref 4111 1111 1111 1112") == "ref [id]"
    assert RedactionPolicy(ids=False).text("ref 4111 1111 1111 1112") == ("ref 4111 1111 1111 1112")


@pytest.mark.parametrize(
    "typed",
    [
        "5551234567",
        "555-123-4567",
        "(555) 123-4567",
        "555.123.4567",
        "1 555 123 4567",
        "+44 20 7946 0958",
        "+15551234567",
    ],
)
def test_phone_numbers_of_ten_or_eleven_digits_or_e164_are_masked(typed: str):
    assert POLICY.text(f"call me on {typed} tonight") == "call me on [phone] tonight"


def test_the_default_id_pattern_is_a_us_social_security_number():
    assert POLICY.text("SSN 123-45-6789.") == "SSN [id]."


def test_any_other_run_of_seven_or_more_digits_is_an_id():
    assert POLICY.text("account 1234567 and order 123456") == "account [id] and order 123456"
    assert POLICY.text("policy 12 34 56 78") == "policy [id]"


def test_short_numbers_dates_of_the_month_and_amounts_stay_readable():
    text = "I paid 45.99 on the 3rd, order 12345, room 101"
    assert POLICY.text(text) == text


def test_custom_id_patterns_mask_letters_too():
    policy = RedactionPolicy(id_patterns=(r"\b[A-Z]{2}\d{6}[A-D]\b",))  # UK NI number shape
    assert policy.text("NI number QQ123456C please") == "NI number [id] please"
    with pytest.raises(ValueError, match="bad id pattern"):
        RedactionPolicy(id_patterns=("(unclosed",))


def test_unicode_digits_are_digits_too():
    assert POLICY.text("٤١١١١١١١١١١١١١١١") == "[card]"  # Arabic-Indic digits


def test_each_kind_can_be_turned_off_and_redaction_disabled_altogether():
    text = "card 4111111111111111 phone 5551234567 ssn 123-45-6789"
    assert RedactionPolicy(cards=False).text(text) == (
        "card 4111111111111111 phone [phone] ssn [id]"
    )
    assert RedactionPolicy(phones=False).text(text) == "card [card] phone 5551234567 ssn [id]"
    assert RedactionPolicy(ids=False).text(text) == "card [card] phone [phone] ssn 123-45-6789"
    assert RedactionPolicy(enabled=False).text(text) == text
    assert not RedactionPolicy(cards=False, phones=False, ids=False).active


def test_a_card_number_spelled_in_digit_words_in_a_chat_is_masked_too():
    assert POLICY.text(f"it is {CARD_WORDS.title()}") == "it is [card]"


# ---------------------------------------------------------------- spoken words


def test_a_spoken_card_number_becomes_one_mask_and_its_other_words_empty():
    words = ["my", "card", "is", *CARD_WORDS.split(), "thanks"]
    masked = POLICY.words(words)
    assert len(masked) == len(words)
    assert masked[:4] == ["my", "card", "is", "[card]"]
    assert masked[4:19] == [""] * 15
    assert masked[19] == "thanks"


def test_oh_double_and_triple_are_digits_when_spoken():
    # 0 2 0 7 9 4 6 0 9 5 8 = 11 digits: a phone number
    words = "oh two oh seven nine four six oh nine five eight".split()
    assert POLICY.words(words) == ["[phone]"] + [""] * 10
    # 5 5 5 55 111 2 3 -> 5555511123, 10 digits: a phone number
    words = "five five five double five triple one two three".split()
    assert POLICY.words(words) == ["[phone]"] + [""] * 8


def test_double_before_a_word_that_is_not_a_digit_is_an_ordinary_word():
    words = "a double room for one two three".split()
    assert POLICY.words(words) == words


def test_words_mixing_digits_and_digit_words_are_one_run():
    words = ["4111", "one", "one", "one", "one", "1111", "1111"]
    assert POLICY.words(words) == ["[card]", "", "", "", "", "", ""]


def test_a_spoken_social_security_number_is_an_id():
    words = "it is one two three four five six seven eight nine ok".split()
    assert POLICY.words(words) == ["it", "is", "[id]"] + [""] * 8 + ["ok"]


def test_a_recognizer_word_with_punctuation_keeps_the_text_outside_the_span():
    assert POLICY.words(["card:4111111111111111."]) == ["card:[card]."]
    assert POLICY.words(["is", "4111", "1111", "1111", "1111."]) == ["is", "[card]", "", "", "."]


def test_counting_and_small_numbers_in_speech_stay_readable():
    words = "one two three testing and i am twenty nine oh".split()
    assert POLICY.words(words) == words


def test_words_keep_their_number_and_an_empty_list_is_fine():
    assert POLICY.words([]) == []
    assert RedactionPolicy(enabled=False).words(CARD_WORDS.split()) == CARD_WORDS.split()
