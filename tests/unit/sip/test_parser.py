"""parse_message, StreamFramer and make_response (RFC 3261 §7, §8.2.6, §18.3)."""

from __future__ import annotations

import pytest

from sip.errors import RemoteProtocolError
from sip.message import Request, Response, make_response
from sip.parser import MAX_HEADERS, MAX_MESSAGE_BYTES, ParseError, StreamFramer, parse_message

INVITE_LINE = "INVITE sip:bob@biloxi.example.com SIP/2.0"
BASE = [
    ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"),
    ("Max-Forwards", "70"),
    ("To", "Bob <sip:bob@biloxi.example.com>"),
    ("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774"),
    ("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"),
    ("CSeq", "314159 INVITE"),
    ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
]


def wire(
    headers: list[tuple[str, str]] | None = None,
    *,
    start: str = INVITE_LINE,
    body: bytes = b"",
    length: str | None = "auto",
    eol: str = "\r\n",
) -> bytes:
    """A message on the wire; ``length`` None leaves Content-Length out."""
    lines = [start] + [f"{name}: {value}" for name, value in (BASE if headers is None else headers)]
    if length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return (eol.join(lines) + eol + eol).encode() + body


def with_header(name: str, value: str | None) -> list[tuple[str, str]]:
    """BASE with ``name`` replaced by ``value`` (dropped when None)."""
    headers = [(n, v) for n, v in BASE if n != name]
    return headers if value is None else [*headers, (name, value)]


def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def refused(data: bytes) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    return caught.value


SDP = b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"


# ----------------------------------------------------------------- start line


def test_parses_a_request() -> None:
    request = parse_request(wire())
    assert request.method == "INVITE"
    assert str(request.uri) == "sip:bob@biloxi.example.com"
    assert request.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (request.cseq.number, request.cseq.method) == (314159, "INVITE")
    assert request.via.branch == "z9hG4bK776asdhds"
    assert request.from_.tag == "1928301774"
    assert request.to.tag is None
    assert request.body == b""


def test_parses_a_response_with_a_reason_of_several_words() -> None:
    message = parse_message(
        wire(
            with_header("To", "Bob <sip:bob@b.example.com>;tag=a6c85cf"),
            start="SIP/2.0 486 Busy Here, try later",
        )
    )
    assert isinstance(message, Response)
    assert (message.status_code, message.reason) == (486, "Busy Here, try later")
    assert message.to.tag == "a6c85cf"


def test_empty_reason_phrase_is_allowed() -> None:
    message = parse_message(wire(start="SIP/2.0 100 "))
    assert isinstance(message, Response)
    assert (message.status_code, message.reason) == (100, "")


@pytest.mark.parametrize(
    "start",
    [
        "SIP/2.0 099 Low",
        "SIP/2.0 700 High",
        "SIP/2.0 4294967301 x",
        "SIP/2.0 20 OK",
        "SIP/2.0 200OK",
        "SIP/2.0  200 OK",
    ],
)
def test_bad_status_lines_are_refused_without_partial(start: str) -> None:
    error = refused(wire(start=start))
    assert error.status_code == 400
    assert error.partial is None


def test_response_of_another_version_is_505() -> None:
    assert refused(wire(start="SIP/3.0 200 OK")).status_code == 505


def test_request_of_another_version_is_505_with_partial() -> None:
    error = refused(wire(start="INVITE sip:bob@biloxi.example.com SIP/3.0"))
    assert error.status_code == 505
    assert error.partial is not None
    assert error.partial.method == "INVITE"


def test_extra_spaces_in_the_request_line_are_tolerated() -> None:
    # RFC 4475 §3.1.2.9 / §3.1.2.10: may be accepted; not sent on.
    request = parse_request(wire(start="INVITE  sip:bob@biloxi.example.com   SIP/2.0  "))
    assert bytes(request).startswith(b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n")


@pytest.mark.parametrize(
    "start",
    [
        "INVITE sip:bob@biloxi.example.com; lr SIP/2.0",  # LWS in the URI (§3.1.2.8)
        "INVITE sip:bob@biloxi.example.com",  # no version
        "INVITE sip:bob@biloxi.example.com HTTP/1.1",
        "INVITE\tsip:bob@biloxi.example.com\tSIP/2.0",  # only SP separates
    ],
)
def test_bad_request_lines_are_400_and_answerable(start: str) -> None:
    error = refused(wire(start=start))
    assert error.status_code == 400
    assert error.partial is not None
    assert error.partial.method == "INVITE"


def test_request_line_without_a_token_method_cannot_be_answered() -> None:
    error = refused(wire(start="IN<VITE sip:bob@biloxi.example.com SIP/2.0"))
    assert (error.status_code, error.partial) == (400, None)


def test_unsupported_request_uri_scheme_is_416_with_partial() -> None:
    error = refused(
        wire(
            start="OPTIONS mailto:bob@biloxi.example.com SIP/2.0",
            headers=with_header("CSeq", "1 OPTIONS"),
        )
    )
    assert error.status_code == 416
    assert error.partial is not None


def test_request_uri_with_headers_is_400() -> None:
    error = refused(wire(start="INVITE sip:bob@biloxi.example.com?Route=%3Csip:x%3E SIP/2.0"))
    assert error.status_code == 400
    assert error.partial is not None


def test_tel_and_ipv6_request_uris() -> None:
    assert parse_request(wire(start="INVITE tel:+12015550123 SIP/2.0")).uri.user == "+12015550123"
    request = parse_request(wire(start="INVITE sip:ivr@[2001:db8::10]:5060 SIP/2.0"))
    assert (request.uri.host, request.uri.port) == ("[2001:db8::10]", 5060)


# -------------------------------------------------------------------- headers


def test_header_names_are_case_insensitive_and_compact_forms_understood() -> None:
    headers = [
        ("v", BASE[0][1]),
        ("MAX-FORWARDS", "70"),
        ("t", BASE[2][1]),
        ("f", BASE[3][1]),
        ("i", BASE[4][1]),
        ("cseq", BASE[5][1]),
        ("m", BASE[6][1]),
    ]
    request = parse_request(
        wire(headers, body=SDP, length=None).replace(
            b"\r\n\r\n", f"\r\nc: application/sdp\r\nl: {len(SDP)}\r\n\r\n".encode(), 1
        )
    )
    assert request.call_id == BASE[4][1]
    assert request.content_type == "application/sdp"
    assert request.headers.get("Content-Length") == str(len(SDP))
    assert request.body == SDP
    assert [name for name, _ in request.headers][:3] == ["Via", "Max-Forwards", "To"]


def test_lws_before_the_colon_is_allowed() -> None:
    request = parse_request(wire(start=INVITE_LINE).replace(b"Call-ID:", b"Call-ID  \t:"))
    assert request.call_id == BASE[4][1]


def test_folded_header_lines_are_joined_with_one_space() -> None:
    data = wire(with_header("Subject", "placeholder")).replace(
        b"Subject: placeholder", b"Subject: first\r\n second\r\n\t third"
    )
    assert parse_request(data).headers.get("Subject") == "first second third"


def test_folded_from_with_parameters_on_continuation_lines() -> None:
    data = wire().replace(b";tag=1928301774", b"\r\n  ;\r\n  tag = 1928301774")
    assert parse_request(data).from_.tag == "1928301774"


def test_multi_valued_header_on_one_line_or_many() -> None:
    one = with_header(
        "Via",
        "SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/TCP b.example.com;branch=z9hG4bKb",
    )
    many = [
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bKa"),
        ("Via", "SIP/2.0/TCP b.example.com;branch=z9hG4bKb"),
        *BASE[1:],
    ]
    for headers in (one, many):
        assert [v.branch for v in parse_request(wire(headers)).vias] == ["z9hG4bKa", "z9hG4bKb"]


def test_quoted_string_escapes_in_display_names() -> None:
    request = parse_request(
        wire(with_header("From", r'"A \"quoted\" \\ name" <sip:a@example.com>;tag=9'))
    )
    assert request.from_.display_name == 'A "quoted" \\ name'


def test_utf8_display_name() -> None:
    request = parse_request(wire(with_header("From", '"Zoë Ünal 山田" <sip:z@example.com>;tag=9')))
    assert request.from_.display_name == "Zoë Ünal 山田"


def test_ipv6_in_via_contact_and_from() -> None:
    headers = [
        ("Via", "SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK6;rport"),
        *BASE[1:3],
        ("From", "<sip:alice@[2001:db8::1]>;tag=6"),
        *BASE[4:6],
        ("Contact", "<sip:alice@[2001:db8::1]:5070>"),
    ]
    request = parse_request(wire(headers))
    assert (request.via.host, request.via.port) == ("[2001:db8::1]", 5070)
    assert request.from_.uri.host_unbracketed == "2001:db8::1"
    assert request.contacts[0].uri.port == 5070


def test_unknown_headers_are_kept_verbatim() -> None:
    request = parse_request(wire([*BASE, ("X-Weird", ";;,,;;,;"), ("P-Thing", "a, b")]))
    assert request.headers.get("X-Weird") == ";;,,;;,;"
    assert request.headers.get_all("P-Thing") == ["a, b"]


@pytest.mark.parametrize("line", [b"NoColonHere", b"Bad Name: x", b": empty name", b"To\x00: x"])
def test_bad_header_lines_are_refused(line: bytes) -> None:
    data = wire().replace(b"Max-Forwards: 70", line)
    assert refused(data).status_code == 400


def test_headers_must_be_utf8() -> None:
    assert refused(wire().replace(b"Alice", b"Al\xffce")).status_code == 400


def test_body_need_not_be_utf8() -> None:
    body = bytes(range(256))
    request = parse_request(wire([*BASE, ("Content-Type", "application/octet-stream")], body=body))
    assert request.body == body


def test_bare_lf_line_ends_are_accepted() -> None:
    request = parse_request(wire(eol="\n"))
    assert request.call_id == BASE[4][1]


def test_leading_crlfs_before_the_start_line_are_skipped() -> None:
    assert parse_request(b"\r\n\r\n" + wire()).method == "INVITE"


def test_missing_empty_line_after_the_headers_is_refused() -> None:
    data = wire().rstrip(b"\r\n") + b"\r\n"
    error = refused(data)
    assert (error.status_code, error.partial) == (400, None)


def test_too_many_header_lines_are_refused() -> None:
    headers = BASE + [("X-Pad", str(n)) for n in range(MAX_HEADERS)]
    assert refused(wire(headers)).status_code == 400


def test_too_many_list_elements_are_refused_before_they_are_validated() -> None:
    contacts = ", ".join(["<sip:a@example.com>"] * MAX_HEADERS)
    error = refused(wire(with_header("Contact", contacts)))
    assert (error.status_code, error.reason) == (400, "too many header fields")


def test_oversized_datagram_is_513() -> None:
    data = wire([*BASE, ("X-Pad", "a" * MAX_MESSAGE_BYTES)])
    assert refused(data).status_code == 513


# ------------------------------------------------------------ request checks


@pytest.mark.parametrize("name", ["To", "From", "CSeq", "Call-ID", "Via"])
def test_missing_mandatory_header_is_400_and_unaddressable(name: str) -> None:
    error = refused(wire(with_header(name, None)))
    assert error.status_code == 400
    assert name in error.reason
    assert error.partial is None


@pytest.mark.parametrize("name", ["To", "From", "CSeq", "Call-ID", "Max-Forwards"])
def test_repeated_single_valued_header_is_400(name: str) -> None:
    value = dict(BASE)[name]
    error = refused(wire([*BASE, (name, value)]))
    assert error.status_code == 400
    assert error.partial is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CSeq", "314159 OPTIONS"),  # method mismatch
        ("CSeq", "2147483648 INVITE"),  # 2**31
        ("CSeq", "-1 INVITE"),
        ("CSeq", "\u00b2 INVITE"),  # a digit to str.isdigit, not to int()
        ("CSeq", "9" * 5000 + " INVITE"),  # beyond int()'s 4300 digits
        ("CSeq", "1"),
        ("Max-Forwards", "256"),
        ("Max-Forwards", "seventy"),
        ("Max-Forwards", "\u0667"),  # ARABIC-INDIC DIGIT SEVEN
        ("Expires", "soon"),
        ("Via", "SIP/2.0/UDP"),
        ("Via", "SIP/2.0/UDP host;;branch=z9hG4bK1"),
        ("To", '"unterminated <sip:bob@biloxi.example.com>'),
        ("To", "isbn:2983792873"),
        ("Contact", "sip:a@example.com?Route=%3Csip:x%3E"),
        ("Contact", "<http://example.com>"),
    ],
)
def test_bad_header_values_are_400_and_answerable(name: str, value: str) -> None:
    error = refused(wire(with_header(name, value)))
    assert error.status_code == 400  # never 416 for a header's URI scheme
    assert error.partial is not None


def test_a_bad_via_below_the_top_one_is_refused_too() -> None:
    headers = [*BASE, ("Via", "SIP/2.0/UDP")]
    assert refused(wire(headers)).status_code == 400


def test_leading_zeros_and_huge_expires_are_accepted() -> None:
    headers = [(n, {"CSeq": "0009 INVITE", "Max-Forwards": "0068"}.get(n, v)) for n, v in BASE]
    request = parse_request(wire([*headers, ("Expires", "1" + "0" * 100)]))
    assert request.cseq.number == 9
    assert request.headers.get("Max-Forwards") == "0068"


def test_wildcard_contact_is_accepted() -> None:
    headers = [*with_header("Contact", "*"), ("Expires", "0")]
    headers = [(n, "1 REGISTER" if n == "CSeq" else v) for n, v in headers]
    request = parse_request(wire(headers, start="REGISTER sip:biloxi.example.com SIP/2.0"))
    assert request.headers.get("Contact") == "*"


def test_body_without_content_type_is_refused() -> None:
    assert refused(wire(body=SDP)).status_code == 400


# ----------------------------------------------------- Content-Length framing


def test_body_is_cut_at_content_length() -> None:
    data = wire(
        [*BASE, ("Content-Type", "application/sdp")],
        body=SDP + b"trailing junk",
        length=str(len(SDP)),
    )
    assert parse_request(data).body == SDP


def test_body_shorter_than_content_length_is_400_with_partial() -> None:
    data = wire([*BASE, ("Content-Type", "application/sdp")], body=SDP, length=str(len(SDP) + 1))
    error = refused(data)
    assert error.status_code == 400
    assert "shorter" in error.reason
    assert error.partial is not None


def test_without_content_length_the_datagram_ends_the_body() -> None:
    data = wire([*BASE, ("Content-Type", "application/sdp")], body=SDP, length=None)
    assert parse_request(data).body == SDP


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "\u00b2", "1" * 5000, ""])
def test_bad_content_length_is_400(value: str) -> None:
    assert refused(wire(length=value)).status_code == 400


def test_conflicting_content_lengths_are_400() -> None:
    data = wire([*BASE, ("Content-Length", "0"), ("l", "5")], body=b"hello", length=None)
    assert refused(data).status_code == 400


def test_serialization_always_writes_the_true_content_length() -> None:
    request = parse_request(wire([*BASE, ("Content-Type", "application/sdp")], body=SDP))
    request.body = b"v=0\r\n"
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in bytes(request)


# -------------------------------------------------------- response checks


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CSeq", "99999999999 INVITE"),
        ("Via", None),
        ("Via", "SIP/2.0/UDP"),
        ("Call-ID", None),
        ("To", '"open <sip:b@example.com>'),
    ],
)
def test_bad_responses_are_dropped_with_a_parse_error(name: str, value: str | None) -> None:
    error = refused(wire(with_header(name, value), start="SIP/2.0 200 OK"))
    assert error.status_code == 400
    assert error.partial is None


def test_parse_error_is_a_remote_protocol_error() -> None:
    error = refused(b"garbage")
    assert isinstance(error, RemoteProtocolError)
    assert error.reason


# ---------------------------------------------------------------- StreamFramer


def frames_of(*chunks: bytes) -> list[bytes]:
    framer = StreamFramer()
    frames = []
    for chunk in chunks:
        framer.feed(chunk)
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    return frames


def test_framer_cuts_back_to_back_messages_by_content_length() -> None:
    first = wire([*BASE, ("Content-Type", "application/sdp")], body=SDP)
    second = wire(with_header("CSeq", "314160 INVITE"))
    assert frames_of(first + second) == [first, second]


def test_framer_waits_for_the_rest_of_a_message() -> None:
    data = wire([*BASE, ("Content-Type", "application/sdp")], body=SDP)
    framer = StreamFramer()
    framer.feed(data[:-1])
    assert framer.next_frame() is None
    assert framer.buffered_bytes == len(data) - 1
    framer.feed(data[-1:])
    assert framer.next_frame() == data


def test_framer_skips_keep_alive_crlfs() -> None:
    message = wire()
    assert frames_of(b"\r\n\r\n", b"\r\n" + message + b"\r\n", b"\r\n") == [message]


def test_framer_understands_compact_content_length() -> None:
    message = wire(length=None).replace(b"\r\n\r\n", b"\r\nl: 5\r\n\r\n") + b"hello"
    assert frames_of(message + message) == [message, message]


@pytest.mark.parametrize("length", [None, "x", "-1"])
def test_framer_needs_a_valid_content_length(length: str | None) -> None:
    framer = StreamFramer()
    framer.feed(wire(length=length))
    with pytest.raises(ParseError):
        framer.next_frame()


def test_framer_refuses_oversized_messages_with_513() -> None:
    framer = StreamFramer(max_message_bytes=1000)
    framer.feed(wire(length="5000"))
    with pytest.raises(ParseError) as caught:
        framer.next_frame()
    assert caught.value.status_code == 513
    framer = StreamFramer()
    framer.feed(wire(length="9" * 5000))
    with pytest.raises(ParseError) as caught:
        framer.next_frame()
    assert caught.value.status_code == 513


def test_framer_refuses_endless_headers_with_513() -> None:
    framer = StreamFramer(max_message_bytes=100)
    framer.feed(b"INVITE sip:a@b SIP/2.0\r\nX-Pad: " + b"a" * 200)
    with pytest.raises(ParseError) as caught:
        framer.next_frame()
    assert caught.value.status_code == 513


# --------------------------------------------------------------- make_response


def test_response_copies_via_from_to_call_id_cseq_in_order() -> None:
    headers = [
        ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
        ("Via", "SIP/2.0/UDP b;branch=z9hG4bK2"),
        *BASE[1:],
    ]
    request = parse_request(wire(headers))
    response = make_response(request, 180, to_tag="x")
    names = [name for name, _ in response.headers]
    assert names == ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.headers.get("From") == request.headers.get("From")
    assert response.headers.get("Call-ID") == request.headers.get("Call-ID")
    assert response.headers.get("CSeq") == request.headers.get("CSeq")
    assert response.reason == "Ringing"


def test_to_tag_is_added_when_the_request_had_none() -> None:
    response = make_response(parse_request(wire()), 200, to_tag="a6c85cf")
    assert response.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf"
    assert response.to.tag == "a6c85cf"


@pytest.mark.parametrize(
    "to",
    [
        "<sip:bob@b.example.com>;tag=old",
        "<sip:bob@b.example.com> ;  TAG = old",
        "sip:bob@b.example.com;tag=old",
    ],
)
def test_existing_to_tag_is_kept_however_it_is_spelled(to: str) -> None:
    response = make_response(parse_request(wire(with_header("To", to))), 200, to_tag="new")
    assert response.headers.get("To") == to


def test_no_to_tag_on_100_trying() -> None:
    response = make_response(parse_request(wire()), 100, to_tag="a6c85cf")
    assert response.headers.get("To") == "Bob <sip:bob@biloxi.example.com>"


def test_timestamp_is_copied_into_100_only() -> None:
    request = parse_request(wire([*BASE, ("Timestamp", "54.12 0.3")]))
    assert make_response(request, 100).headers.get("Timestamp") == "54.12 0.3"
    assert make_response(request, 180, to_tag="x").headers.get("Timestamp") is None
    assert make_response(parse_request(wire()), 100).headers.get("Timestamp") is None


def test_extra_headers_reason_and_body() -> None:
    response = make_response(
        parse_request(wire()),
        486,
        "Agents Busy",
        to_tag="t",
        headers=[("Retry-After", "30")],
        body=b"x",
    )
    wire_bytes = bytes(response)
    assert wire_bytes.startswith(b"SIP/2.0 486 Agents Busy\r\n")
    assert b"\r\nRetry-After: 30\r\n" in wire_bytes
    assert wire_bytes.endswith(b"Content-Length: 1\r\n\r\nx")


def test_answer_to_repeated_headers_echoes_only_the_first() -> None:
    error = refused(wire([*BASE, ("To", "Other <sip:o@example.com>"), ("Call-ID", "second")]))
    assert error.partial is not None
    response = make_response(error.partial, 400, to_tag="t")
    assert response.headers.get_all("To") == ["Bob <sip:bob@biloxi.example.com>;tag=t"]
    assert response.headers.get_all("Call-ID") == [BASE[4][1]]


def test_response_to_a_parsed_request_parses_back() -> None:
    request = parse_request(wire())
    response = parse_message(bytes(make_response(request, 200, to_tag="z")))
    assert isinstance(response, Response)
    assert (response.status_code, response.to.tag, response.cseq) == (200, "z", request.cseq)
