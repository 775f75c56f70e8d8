"""Identity normalisation: one spelling per customer identity (E.164 for phones)."""

from __future__ import annotations

import pytest

from conversations import normalize_identity, normalize_phone

PHONES = [
    # The contract's examples: SIP From / P-Asserted-Identity values, tel URIs, typed digits.
    ("sip:+15551234567@host", "+15551234567"),
    ("<sip:5551234567@h;user=phone>", "+15551234567"),
    ("tel:+1-555-123-4567", "+15551234567"),
    ('"Ann" <sip:0015551234567@h>', "+15551234567"),
    ("555 123 4567", "+15551234567"),
    # Header forms: display names with quotes and '<', header params after '>'.
    ('"Smith, Ann \\"Dr\\" <x>" <sip:+15551234567@pbx.example.com>;tag=a6c85cf', "+15551234567"),
    ("Ann <sips:+15551234567@pbx.example.com:5061;transport=tls>", "+15551234567"),
    ("<tel:+15551234567>;tag=1", "+15551234567"),
    ("  sip:+15551234567@10.0.0.1;user=phone  ", "+15551234567"),
    # RFC 3261 §19.1.1: a password after the user; user part %-escaped; SIP scheme case.
    ("sip:+1-212-555-1212:1234@gateway.com;user=phone", "+12125551212"),
    ("SIP:%2B15551234567@host", "+15551234567"),
    # RFC 3966: visual separators, parameters, a local number with a global phone-context.
    ("tel:+1.555.123.4567;ext=22", "+15551234567"),
    ("tel:(555)123-4567;phone-context=+1", "+15551234567"),
    ("tel:7042;phone-context=+1-555-123", "+15551237042"),
    # North American dialling: 1 + 10 digits, 011 international prefix.
    ("1 (555) 123-4567", "+15551234567"),
    ("1-555-123-4567", "+15551234567"),
    ("011 44 20 7946 0000", "+442079460000"),
    ("+44 20 7946 0000", "+442079460000"),
    ("0044 20 7946 0000", "+442079460000"),
    ("+683 4002", "+6834002"),  # Niue: 7 digits in all
    ("+86 10 1234 5678 901", "+861012345678901"),  # 15 digits: the E.164 maximum
]


@pytest.mark.parametrize("raw, expected", PHONES, ids=[raw for raw, _ in PHONES])
def test_phone_numbers_become_e164(raw: str, expected: str):
    assert normalize_phone(raw) == expected
    assert normalize_phone(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "raw, country, expected",
    [
        ("020 7946 0000", "44", "+442079460000"),  # the trunk 0 goes
        ("sip:02079460000@gw.example.co.uk", "44", "+442079460000"),
        ("030 123456", "49", "+4930123456"),
        ("00 1 555 123 4567", "44", "+15551234567"),  # international from abroad
    ],
)
def test_national_numbers_take_the_sites_country_code(raw: str, country: str, expected: str):
    assert normalize_phone(raw, default_country_code=country) == expected


def test_011_dials_abroad_only_in_north_america():
    assert normalize_phone("011 49 30 123456") == "+4930123456"
    # In the UK it is a national number: +44 11 ... is one digit too long for E.164.
    with pytest.raises(ValueError, match="16 digits"):
        normalize_phone("011 44 20 7946 0000", default_country_code="44")


BAD_PHONES = [
    ("sip:alice@example.com", "'alice' is not a number"),
    ("sip:anonymous@anonymous.invalid", "not a number"),
    ('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1', "not a number"),
    ("sip:example.com", "no user part"),
    ("mailto:ann@example.com", "not a sip, sips or tel URI"),
    ("", "no phone number"),
    ("   ", "no phone number"),
    ("tel:", "no phone number"),
    ('"Ann <sip:+15551234567@h>', "unterminated display name"),
    ("<sip:+15551234567@h", "'<' without '>'"),
    ("sip:1001@pbx", "10 digits"),  # an extension, not a phone number
    ("555 1234", "10 digits"),
    ("+1 555 123 45678", "10 digits"),
    ("+44 20", "expected 7 to 15"),
    ("+86 10 1234 5678 9012", "expected 7 to 15"),
    ("+0 555 123 4567", "do not start with 0"),
    ("tel:*100#", "not a number"),
    ("+1 555 CALL NOW", "not a number"),
    ("+١٥٥٥١٢٣٤٥٦٧", "not a number"),  # Arabic-Indic digits are not E.164
]


@pytest.mark.parametrize("raw, message", BAD_PHONES, ids=[raw or "empty" for raw, _ in BAD_PHONES])
def test_input_without_a_phone_number_raises_a_value_error_quoting_it(raw: str, message: str):
    with pytest.raises(ValueError, match="no (E.164|phone) number") as error:
        normalize_phone(raw)
    assert message in str(error.value)
    assert repr(raw) in str(error.value) or "display name" in str(error.value)


@pytest.mark.parametrize("country", ["", "0", "44a", "1234", "01"])
def test_a_bad_country_code_is_refused(country: str):
    with pytest.raises(ValueError, match="country code"):
        normalize_phone("555 123 4567", default_country_code=country)


def test_a_non_string_is_refused_not_crashed_on():
    with pytest.raises(ValueError, match="string"):
        normalize_phone(5551234567)  # type: ignore[arg-type]


IDENTITIES = [
    ("phone", "tel:+1-555-123-4567", "+15551234567"),
    ("email", "  Ann.Smith@Example.COM ", "ann.smith@example.com"),
    ("email", "mailto:Ann@Example.com", "ann@example.com"),
    ("email", '"odd@local"@example.com', '"odd@local"@example.com'),
    ("webchat", "  3f9c0b2e-visitor ", "3f9c0b2e-visitor"),
    ("account", " ACC-00042 ", "ACC-00042"),  # ids keep their case
]


@pytest.mark.parametrize("kind, value, expected", IDENTITIES)
def test_identities_have_one_spelling(kind: str, value: str, expected: str):
    assert normalize_identity(kind, value) == expected


def test_phone_identities_use_the_given_country():
    assert normalize_identity("phone", "020 7946 0000", default_country_code="44") == (
        "+442079460000"
    )


BAD_IDENTITIES = [
    ("fax", "123", "kind must be one of"),
    ("phone", "sip:alice@h", "no phone number"),
    ("email", "ann", "not an e-mail address"),
    ("email", "ann@", "not an e-mail address"),
    ("email", "@example.com", "not an e-mail address"),
    ("email", "ann smith@example.com", "not an e-mail address"),
    ("email", "a" * 250 + "@example.com", "longer than 254"),
    ("webchat", "", "empty"),
    ("account", "   ", "empty"),
    ("account", "x" * 201, "longer than 200"),
    ("account", "acc\n42", "control characters"),
    ("email", 42, "must be a string"),
]


@pytest.mark.parametrize("kind, value, message", BAD_IDENTITIES)
def test_bad_identities_raise_a_value_error_that_says_why(kind: str, value, message: str):
    with pytest.raises(ValueError, match=message):
        normalize_identity(kind, value)
