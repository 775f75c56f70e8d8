"""The header block: case-insensitive names, compact forms, list splitting (§7.3)."""

from __future__ import annotations

import pytest

from sip.errors import RemoteProtocolError
from sip.headers import COMPACT_FORMS, Headers, canonical_name


@pytest.mark.parametrize(("compact", "long_form"), sorted(COMPACT_FORMS.items()))
def test_compact_forms_expand_in_either_case(compact: str, long_form: str) -> None:
    assert canonical_name(compact) == long_form
    assert canonical_name(compact.upper()) == long_form


def test_rfc_3261_compact_forms_are_known() -> None:
    # RFC 3261 §7.3.3 and §20: the forms every SIP element must understand.
    expected = {
        "i": "Call-ID",
        "m": "Contact",
        "e": "Content-Encoding",
        "l": "Content-Length",
        "c": "Content-Type",
        "f": "From",
        "s": "Subject",
        "k": "Supported",
        "t": "To",
        "v": "Via",
    }
    assert expected.items() <= COMPACT_FORMS.items()


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("cseq", "CSeq"),
        ("CALL-ID", "Call-ID"),
        ("www-authenticate", "WWW-Authenticate"),
        ("ViA", "Via"),
        ("max-FORWARDS", "Max-Forwards"),
        ("mime-version", "MIME-Version"),
    ],
)
def test_known_names_take_their_canonical_spelling(spelling: str, canonical: str) -> None:
    assert canonical_name(spelling) == canonical


def test_unknown_names_are_kept_as_received() -> None:
    assert canonical_name("X-Custom-Thing") == "X-Custom-Thing"
    assert canonical_name("C%6Fntact") == "C%6Fntact"  # % is no escape here
    assert canonical_name("z") == "z"  # one letter, but no compact form


def test_lookup_is_case_insensitive_and_understands_compact_forms() -> None:
    headers = Headers([("i", "abc@host"), ("cseq", "1 INVITE")])
    assert headers.get("Call-ID") == headers.get("call-id") == headers.get("I") == "abc@host"
    assert headers.get("CSEQ") == "1 INVITE"
    assert list(headers) == [("Call-ID", "abc@host"), ("CSeq", "1 INVITE")]


def test_values_are_stripped() -> None:
    assert Headers([("Subject", "   hello  ")]).get("Subject") == "hello"


def test_list_headers_split_into_one_entry_per_element() -> None:
    headers = Headers()
    headers.add("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")
    headers.add("v", "SIP/2.0/UDP c;branch=z9hG4bK3")
    assert headers.get_all("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]


def test_comma_separated_and_repeated_lines_read_the_same() -> None:
    one_line = Headers([("Supported", "timer, replaces,100rel")])
    three_lines = Headers([("Supported", "timer"), ("k", "replaces"), ("Supported", "100rel")])
    assert one_line.get_all("Supported") == three_lines.get_all("Supported")


def test_list_split_respects_quotes_and_angle_brackets() -> None:
    headers = Headers([("Contact", '"Doe, John" <sip:j@example.com;x=a,b>, <sip:k@example.com>')])
    assert headers.get_all("m") == ['"Doe, John" <sip:j@example.com;x=a,b>', "<sip:k@example.com>"]


def test_empty_list_elements_are_skipped() -> None:
    assert Headers([("Allow", "INVITE,, ACK ,")]).get_all("Allow") == ["INVITE", "ACK"]


def test_non_list_headers_keep_their_commas() -> None:
    headers = Headers(
        [
            ("Subject", "lunch, maybe"),
            ("Authorization", 'Digest username="bob", realm="biloxi.com"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("From", "Bell, Alexander <sip:a@example.com>"),
        ]
    )
    assert headers.get("Subject") == "lunch, maybe"
    assert headers.get_all("Authorization") == ['Digest username="bob", realm="biloxi.com"']
    assert len(headers) == 4


def test_wildcard_contact_is_one_value() -> None:
    assert Headers([("Contact", "*")]).get_all("Contact") == ["*"]


def test_unterminated_quote_in_a_list_header_is_the_peers_error() -> None:
    with pytest.raises(RemoteProtocolError):
        Headers([("Contact", '"Joe <sip:a@example.com>, <sip:b@example.com>')])


def test_get_returns_default_for_missing_names() -> None:
    headers = Headers()
    assert headers.get("To") is None
    assert headers.get("To", "x") == "x"
    assert headers.get_all("To") == []
    assert "To" not in headers
    assert 42 not in headers


def test_set_replaces_every_value_at_the_first_ones_place() -> None:
    headers = Headers([("Via", "a"), ("To", "t"), ("Via", "b"), ("From", "f")])
    headers.set("v", "c")
    assert list(headers) == [("Via", "c"), ("To", "t"), ("From", "f")]
    headers.set("Subject", "new")
    assert list(headers)[-1] == ("Subject", "new")


def test_remove_drops_every_value() -> None:
    headers = Headers([("Route", "<sip:a>"), ("To", "t"), ("Route", "<sip:b>")])
    headers.remove("route")
    assert list(headers) == [("To", "t")]


def test_prepend_goes_before_the_first_of_its_name_or_first_of_all() -> None:
    headers = Headers([("To", "t"), ("Via", "old")])
    headers.prepend("v", "new")
    assert list(headers) == [("To", "t"), ("Via", "new"), ("Via", "old")]
    headers.prepend("Record-Route", "<sip:p;lr>")
    assert list(headers)[0] == ("Record-Route", "<sip:p;lr>")


def test_copy_is_independent() -> None:
    headers = Headers([("To", "t")])
    clone = headers.copy()
    clone.add("From", "f")
    assert len(headers) == 1
    assert len(clone) == 2
