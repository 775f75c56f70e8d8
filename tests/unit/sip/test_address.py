"""name-addr / addr-spec header values and Via (RFC 3261 §20.10, §20.42, §25.1)."""

from __future__ import annotations

import pytest

from sip.address import NameAddress, Via, split_list
from sip.errors import RemoteProtocolError


def address_refused(text: str) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        NameAddress.parse(text)
    return caught.value


# ---------------------------------------------------------------- NameAddress


def test_name_addr_with_quoted_display_name_uri_and_tag() -> None:
    address = NameAddress.parse('"Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774')
    assert address.display_name == "Alice Liddell"
    assert str(address.uri) == "sip:alice@atlanta.example.com"
    assert address.tag == "1928301774"


def test_quoted_pairs_in_display_names_are_unescaped() -> None:
    address = NameAddress.parse(r'"J Rosenberg \\\"" <sip:jdrosen@example.com>')
    assert address.display_name == 'J Rosenberg \\"'


def test_quoted_display_name_may_hold_separators() -> None:
    address = NameAddress.parse('"Bell, Alexander; <Aleck>" <sip:a.g.bell@example.com>;tag=43')
    assert address.display_name == "Bell, Alexander; <Aleck>"
    assert address.tag == "43"


def test_token_display_name_needs_no_space_before_the_bracket() -> None:
    address = NameAddress.parse("caller<sip:caller@example.com>;tag=323")
    assert address.display_name == "caller"
    assert address.uri.user == "caller"


def test_utf8_display_names_quoted_and_unquoted() -> None:
    assert NameAddress.parse('"José Müller 山田" <sip:j@example.com>').display_name == (
        "José Müller 山田"
    )
    assert NameAddress.parse("Zoë <sip:z@example.com>").display_name == "Zoë"


def test_unquoted_non_token_display_name_is_tolerated() -> None:
    # RFC 4475 §3.1.2.15 allows inferring the missing quotes; nothing is ambiguous.
    assert NameAddress.parse("Bell, Alexander <sip:a@example.com>").display_name == (
        "Bell, Alexander"
    )


def test_no_display_name() -> None:
    address = NameAddress.parse("<sip:bob@biloxi.example.com>")
    assert address.display_name is None
    assert address.params == {}


def test_addr_spec_parameters_belong_to_the_header_not_the_uri() -> None:
    # §20.10: without <>, ";tag" and every other parameter are header parameters.
    address = NameAddress.parse("sip:+12125551212@server.phone2net.com;tag=887s;user=phone")
    assert address.params == {"tag": "887s", "user": "phone"}
    assert address.uri.params == {}


def test_bracketed_uri_parameters_stay_with_the_uri() -> None:
    address = NameAddress.parse("<sip:bob@example.com;transport=tcp>;expires=60")
    assert address.uri.params == {"transport": "tcp"}
    assert address.params == {"expires": "60"}


def test_lws_around_parameters_is_allowed() -> None:
    address = NameAddress.parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
    assert address.tag == "1918181833n"


def test_spaces_inside_angle_brackets_are_ignored() -> None:
    assert str(NameAddress.parse("< sip:t.watson@example.org >").uri) == "sip:t.watson@example.org"


def test_ipv6_uri_in_a_name_addr() -> None:
    address = NameAddress.parse("<sip:alice@[2001:db8::1]:5070>;tag=a")
    assert (address.uri.host, address.uri.port) == ("[2001:db8::1]", 5070)


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"Mr. J. User <sip:j.user@example.com>',  # unterminated quote (RFC 4475 §3.1.2.6)
        "<sip:j.user@example.com",  # unterminated angle bracket
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",  # §3.1.2.13
        "sip:a b@example.com",
        '"Joe" <sip:joe@example.org>;;;;',  # empty parameters (§3.1.2.1)
        "<sip:joe@example.org>;tag=1;",  # trailing ";"
        "<sip:joe@example.org> junk;tag=1",  # text between ">" and ";"
        '"unterminated \\" <sip:x@example.com>',
        '<sip:joe@example.org>;tag="open',
    ],
)
def test_malformed_addresses_are_refused_with_400(text: str) -> None:
    assert address_refused(text).status_code == 400


def test_unknown_uri_scheme_in_an_address_is_refused() -> None:
    assert address_refused("<http://www.example.com>;tag=3234233").reason


def test_serialization_quotes_the_display_name_and_round_trips() -> None:
    address = NameAddress.parse(r'"say \"hi\" \\ bye" <sip:a@example.com>;tag=x')
    text = str(address)
    assert text == r'"say \"hi\" \\ bye" <sip:a@example.com>;tag=x'
    assert NameAddress.parse(text) == address


# ----------------------------------------------------------------------- Via


def test_via_with_port_branch_received_and_rport_flag() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bK776asdhds;received=192.0.2.9;rport")
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.4", 5070)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.params["received"] == "192.0.2.9"
    assert via.params["rport"] is None


def test_via_allows_lws_around_slashes_and_parameters() -> None:
    via = Via.parse("SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239")
    assert (via.transport, via.host, via.branch) == ("UDP", "192.168.255.111", "z9hG4bK30239")


def test_via_protocol_and_transport_are_case_insensitive() -> None:
    via = Via.parse("sip/2.0/tcp Host.Example.com")
    assert (via.transport, via.host, via.branch) == ("TCP", "host.example.com", None)


def test_via_with_ipv6_sent_by() -> None:
    via = Via.parse("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKx")
    assert (via.host, via.port) == ("[2001:db8::9]", 5061)
    assert str(via) == "SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKx"


def test_via_serializes_canonically() -> None:
    via = Via.parse("SIP / 2.0 / UDP  host.example.com : 5060 ;branch=z9hG4bKa")
    assert str(via) == "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKa"


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",  # no sent-by
        "SIP/7.0/UDP host",
        "SIP/2.0 host",
        "SIP/2.0/UDP host:0",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP 192.0.2.15;;",  # RFC 4475 §3.1.2.1
        "SIP/2.0/UDP host;branch=a;",
        "SIP/2.0/UDP host extra",
    ],
)
def test_malformed_vias_are_refused(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        Via.parse(text)


# ----------------------------------------------------------------- split_list


def test_split_list_respects_quotes_and_brackets() -> None:
    value = '"Doe, John" <sip:j@example.com;a=1,2>, <sip:k@example.com> , '
    assert split_list(value) == ['"Doe, John" <sip:j@example.com;a=1,2>', "<sip:k@example.com>"]
