"""SIP and tel URIs (RFC 3261 §19.1, §25.1), including IPv6 references."""

from __future__ import annotations

import pytest

from sip.errors import RemoteProtocolError
from sip.uri import SipUri, parse_hostport


def refused(text: str) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        SipUri.parse(text)
    return caught.value


def test_parses_user_password_host_port_params_and_headers() -> None:
    uri = SipUri.parse("sips:alice:secret@Atlanta.Example.COM:5061;transport=TCP;lr?subject=hi")
    assert uri.scheme == "sips"
    assert (uri.user, uri.password) == ("alice", "secret")
    assert (uri.host, uri.port) == ("atlanta.example.com", 5061)
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.headers == "subject=hi"


def test_scheme_is_case_insensitive_and_host_is_lowered() -> None:
    uri = SipUri.parse("SIP:Bob@BILOXI.com")
    assert (uri.scheme, uri.user, uri.host) == ("sip", "Bob", "biloxi.com")


def test_parameter_names_are_lowered_and_flags_have_no_value() -> None:
    uri = SipUri.parse("sip:h;MADDR=239.255.255.1;Lr")
    assert uri.params == {"maddr": "239.255.255.1", "lr": None}


def test_transport_defaults_to_udp_and_is_lowered() -> None:
    assert SipUri.parse("sip:h").transport == "udp"
    assert SipUri.parse("sip:h;transport=TCP").transport == "tcp"


def test_serializes_back_to_an_equal_uri() -> None:
    text = "sip:alice:pw@example.com:5080;transport=tcp;lr?h=v"
    assert str(SipUri.parse(text)) == text
    assert str(SipUri.parse(str(SipUri.parse(text)))) == text


def test_user_part_may_hold_question_marks_and_semicolons() -> None:
    # RFC 4475 §3.1.1.2 and §3.1.1.9: "@" is the only delimiter of userinfo.
    uri = SipUri.parse("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:p$w@example.com")
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "p$w"
    assert (uri.host, uri.params, uri.headers) == ("example.com", {}, "")
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert (uri.user, uri.host) == ("user;par=u%40example.net", "example.com")


def test_escapes_are_kept_as_received() -> None:
    uri = SipUri.parse("sip:%75se%72@example.com;n%61me=v%61lue")
    assert uri.user == "%75se%72"
    assert uri.params == {"n%61me": "v%61lue"}


def test_ipv6_reference_keeps_brackets_and_lowers_hex() -> None:
    uri = SipUri.parse("sip:alice@[2001:DB8::1]:5070;transport=udp")
    assert (uri.host, uri.port) == ("[2001:db8::1]", 5070)
    assert uri.host_unbracketed == "2001:db8::1"
    assert str(uri) == "sip:alice@[2001:db8::1]:5070;transport=udp"


def test_ipv6_reference_without_user_or_port() -> None:
    uri = SipUri.parse("sip:[::1]")
    assert (uri.user, uri.host, uri.port) == (None, "[::1]", None)


def test_ipv4_mapped_ipv6_reference_is_accepted() -> None:
    assert SipUri.parse("sip:[::ffff:192.0.2.1]:5060").host == "[::ffff:192.0.2.1]"


@pytest.mark.parametrize(
    "text",
    [
        "sip:[1::2::3]",  # two "::"
        "sip:[1:2]",  # too few groups
        "sip:[2001:db8::zz]",  # not hex
        "sip:[::1",  # unterminated
        "sip:[::1]x",  # junk after "]"
        "sip:[]",
    ],
)
def test_bad_ipv6_references_are_refused_with_400(text: str) -> None:
    assert refused(text).status_code == 400


def test_unsupported_scheme_is_416() -> None:
    assert refused("http://www.example.com").status_code == 416
    assert refused("soap.beep://192.0.2.103:3002").status_code == 416


@pytest.mark.parametrize("text", ["<sip:user@example.com>", "1sip:x", "s p:x", "sip", "sip:", ":x"])
def test_text_that_is_no_uri_at_all_is_400_not_416(text: str) -> None:
    assert refused(text).status_code == 400


@pytest.mark.parametrize(
    "text",
    [
        "sip:@example.com",  # empty user
        "sip:user@",  # empty host
        "sip:user@exa mple.com",  # space in host
        "sip:user@example.com:",  # empty port
        "sip:user@example.com:0",
        "sip:user@example.com:65536",
        "sip:user@example.com:50x",
        "sip:user@example.com:\u00b2",  # "²" passes str.isdigit but not int()
        "sip:user@example.com:" + "1" * 5000,  # beyond int()'s digit limit
        "sip:user@example.com;;lr",  # empty parameter
        "sip:user@example.com;a b=c",  # bad parameter name
    ],
)
def test_malformed_sip_uris_are_refused_with_400(text: str) -> None:
    assert refused(text).status_code == 400


def test_port_with_leading_zeros_is_a_port() -> None:
    assert SipUri.parse("sip:h:05060").port == 5060


def test_tel_uri_keeps_number_and_parameters() -> None:
    uri = SipUri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert (uri.scheme, uri.user) == ("tel", "+1-201-555-0123")
    assert uri.params == {"phone-context": "example.com"}
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_parse_hostport_splits_host_and_port() -> None:
    assert parse_hostport("Example.com:5060") == ("example.com", 5060)
    assert parse_hostport("192.0.2.1") == ("192.0.2.1", None)
    assert parse_hostport(" [::1]:5061 ") == ("[::1]", 5061)
