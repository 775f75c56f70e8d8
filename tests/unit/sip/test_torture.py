"""RFC 4475 torture messages (and a few of hotline's own) against the SIP parser.

The corpus lives in tests/data/sip: ``valid/`` files must parse, ``invalid/``
files must be refused with the status code below, ``streams/`` hold TCP byte
streams. tests/data/sip/README.md explains each file and each decision where
RFC 4475 lets an implementation choose between tolerance and a 400.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sip.message import Request, Response, make_response
from sip.parser import ParseError, StreamFramer, parse_message

DATA = Path(__file__).parents[2] / "data" / "sip"

# file stem -> RFC 4475 section (or "hotline") of the messages that parse.
VALID = {
    "wsinv": "3.1.1.1",
    "intmeth": "3.1.1.2",
    "esc01": "3.1.1.3",
    "escnull": "3.1.1.4",
    "esc02": "3.1.1.5",
    "lwsdisp": "3.1.1.6",
    "longreq": "3.1.1.7",
    "dblreq": "3.1.1.8",
    "semiuri": "3.1.1.9",
    "transports": "3.1.1.10",
    "mpart01": "3.1.1.11",
    "unreason": "3.1.1.12",
    "noreason": "3.1.1.13",
    # RFC 4475 says these may be tolerated; hotline does (see the README).
    "lwsstart": "3.1.2.9",
    "trws": "3.1.2.10",
    "baddate": "3.1.2.12",
    "badaspec": "3.1.2.14",
    "badbranch": "3.2.1",
    # Syntactically valid; what to answer is for the layers above the parser.
    "bext01": "3.3.5",
    "invut": "3.3.6",
    "regaut01": "3.3.7",
    "bcast": "3.3.10",
    "zeromf": "3.3.11",
    "cparam01": "3.3.12",
    "cparam02": "3.3.13",
    "regescrt": "3.3.14",
    "sdp01": "3.3.15",
    "inv2543": "3.4.1",
    "hl-ipv6": "hotline",
    "hl-utf8-display": "hotline",
    "hl-compact": "hotline",
    "hl-baddn-terminated": "hotline",
}

# file stem -> (status code, whether a response can be addressed: ParseError.partial).
INVALID = {
    "badinv01": (400, True),  # 3.1.2.1 empty Via and Contact parameters
    "clerr": (400, True),  # 3.1.2.2 Content-Length beyond the datagram
    "ncl": (400, True),  # 3.1.2.3 negative Content-Length
    "scalar02": (400, True),  # 3.1.2.4 CSeq beyond 2**31
    "scalarlg": (400, False),  # 3.1.2.5 a response: dropped, never answered
    "quotbal": (400, True),  # 3.1.2.6 unterminated quoted display name
    "ltgtruri": (400, True),  # 3.1.2.7 Request-URI in <>
    "lwsruri": (400, True),  # 3.1.2.8 LWS inside the Request-URI
    "escruri": (400, True),  # 3.1.2.11 headers in the Request-URI
    "regbadct": (400, True),  # 3.1.2.13 URI with headers outside <>
    "baddn": (400, False),  # 3.1.2.15 the RFC's bytes have no empty line after the headers
    "badvers": (505, True),  # 3.1.2.16 SIP/7.0
    "mismatch01": (400, True),  # 3.1.2.17 CSeq method differs from the Request-Line
    "mismatch02": (400, True),  # 3.1.2.18 idem with an unknown method (400 rather than 501)
    "bigcode": (400, False),  # 3.1.2.19 status code 4294967301: dropped
    "insuf": (400, False),  # 3.3.1 no To, From, Call-ID: nothing to address a reply with
    "unkscm": (416, True),  # 3.3.2 unknown Request-URI scheme
    "novelsc": (416, True),  # 3.3.3 known but unsupported scheme (soap.beep)
    "unksm2": (400, True),  # 3.3.4 non-SIP To/From/Contact: what a registrar answers
    "multi01": (400, True),  # 3.3.8 two To, From, CSeq, Call-ID, Max-Forwards
    "mcl01": (400, True),  # 3.3.9 two different Content-Lengths
    "hl-unicode-digits": (400, True),  # "Content-Length: ²" once escaped as ValueError
    "hl-huge-cseq": (400, True),  # 5000-digit CSeq once escaped as ValueError
    "hl-bad-ipv6": (400, True),  # "[2001:db8::zz]" is not an IPv6 address
    "hl-unterminated-list": (400, False),  # list header with an open quote
    "hl-bad-via-response": (400, False),  # a response's broken Via escaped as bare error
}


def read(kind: str, stem: str) -> bytes:
    return (DATA / kind / f"{stem}.sip").read_bytes()


def parse_request(stem: str) -> Request:
    message = parse_message(read("valid", stem))
    assert isinstance(message, Request)
    return message


def parse_response(stem: str) -> Response:
    message = parse_message(read("valid", stem))
    assert isinstance(message, Response)
    return message


def refusal(stem: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_message(read("invalid", stem))
    return caught.value


def key_fields(message: Request | Response) -> tuple[object, ...]:
    start = (
        (message.method, str(message.uri))
        if isinstance(message, Request)
        else (message.status_code,)
    )
    return (
        start,
        message.call_id,
        message.cseq,
        [via.branch for via in message.vias],
        message.from_.tag,
        message.to.tag,
        str(message.from_.uri),
        str(message.to.uri),
        message.body,
    )


# ------------------------------------------------------------------ the tables


def test_the_tables_cover_exactly_the_corpus_files() -> None:
    assert {p.stem for p in (DATA / "valid").glob("*.sip")} == set(VALID)
    assert {p.stem for p in (DATA / "invalid").glob("*.sip")} == set(INVALID)


def test_the_readme_documents_every_corpus_file() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for path in DATA.glob("*/*.sip"):
        assert f"`{path.parent.name}/{path.name}`" in readme


def test_corpus_files_use_crlf_line_ends() -> None:
    for path in DATA.glob("*/*.sip"):
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
        assert b"\n" not in head.replace(b"\r\n", b""), path.name


# ------------------------------------------------------- valid: parse, round-trip


@pytest.mark.parametrize("stem", sorted(VALID))
def test_valid_message_parses(stem: str) -> None:
    message = parse_message(read("valid", stem))
    assert isinstance(message, Request | Response)
    key_fields(message)  # every typed view of the key headers reads without error


@pytest.mark.parametrize("stem", sorted(VALID))
def test_valid_message_survives_serialize_and_parse(stem: str) -> None:
    message = parse_message(read("valid", stem))
    again = parse_message(bytes(message))
    assert key_fields(again) == key_fields(message)


# ------------------------------------------------------ invalid: status, partial


@pytest.mark.parametrize("stem", sorted(INVALID))
def test_invalid_message_is_refused_with_its_status_code(stem: str) -> None:
    status_code, answerable = INVALID[stem]
    error = refusal(stem)
    assert error.status_code == status_code
    assert (error.partial is not None) == answerable


@pytest.mark.parametrize("stem", sorted(s for s, (_, answerable) in INVALID.items() if answerable))
def test_refused_request_can_be_answered_with_its_status(stem: str) -> None:
    error = refusal(stem)
    assert error.partial is not None
    # The answer echoes the request's headers verbatim (§8.2.6.2), broken ones
    # included, so it is checked as bytes rather than parsed back.
    response = make_response(error.partial, error.status_code, to_tag="x")
    wire = bytes(response)
    assert wire.startswith(f"SIP/2.0 {error.status_code} ".encode())
    assert response.headers.get("Call-ID") == error.partial.headers.get("Call-ID")
    assert response.headers.get("CSeq") == error.partial.headers.get("CSeq")
    assert response.headers.get_all("Via") == error.partial.headers.get_all("Via")


# ------------------------------------------------------------ 3.1.1 in detail


def test_wsinv_folding_case_and_lws_are_all_understood() -> None:
    request = parse_request("wsinv")
    assert request.method == "INVITE"
    assert request.uri.params == {"unknownparam": None}
    assert request.to.tag == "1918181833n"
    assert request.from_.display_name == 'J Rosenberg \\"'
    assert request.from_.tag == "98asjd8"
    assert request.headers.get("Max-Forwards") == "0068"
    assert (request.cseq.number, request.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in request.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert request.headers.get("Subject") == ""
    assert request.headers.get("NewFangledHeader") == (
        "newfangled value continued newfangled value"
    )
    assert request.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    [contact] = request.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(request.body) == 150


def test_intmeth_unusual_characters_are_kept_verbatim() -> None:
    request = parse_request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert request.method == method
    assert request.cseq.method == method
    assert request.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert request.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert request.uri.host == "example.com"
    assert request.via.branch == "z9hG4bK-.!%66*_+`'~"
    assert request.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert request.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert request.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert request.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert request.from_.tag == "_token~1'+`*%!-."
    assert request.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert request.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_escapes_are_kept_as_received() -> None:
    request = parse_request("esc01")
    # Not unescaped here: %40 in the user part must not become a second "@".
    assert request.uri.user == "sips%3Auser%40example.com"
    assert request.uri.host == "example.net"
    assert request.to.uri.user == "%75se%72"
    assert request.from_.uri.user == "I%20have%20spaces"
    [contact] = request.contacts
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}


def test_escnull_keeps_escaped_nulls_in_user_parts() -> None:
    request = parse_request("escnull")
    assert request.to.uri.user == "null-%00-null"
    assert [c.uri.user for c in request.contacts] == ["%00", "%00%00"]


def test_esc02_percent_is_no_escape_in_methods_and_header_names() -> None:
    request = parse_request("esc02")
    assert request.method == "RE%47IST%45R"  # an unknown method, not REGISTER
    assert [c.uri.host for c in request.contacts] == ["host1.example.com", "host3.example.com"]
    assert request.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert request.to.display_name == "%Z%45"


def test_lwsdisp_display_name_may_touch_the_angle_bracket() -> None:
    request = parse_request("lwsdisp")
    assert request.from_.display_name == "caller"
    assert str(request.from_.uri) == "sip:caller@example.com"


def test_longreq_long_values_and_34_vias_in_every_spelling() -> None:
    request = parse_request("longreq")
    vias = request.vias
    assert len(vias) == 34
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert vias[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert request.from_.tag == "12" + "982" * 50 + "424"
    assert request.to.uri.port == 6000
    assert request.to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"


def test_dblreq_trailing_octets_after_content_length_are_discarded() -> None:
    request = parse_request("dblreq")
    assert request.method == "REGISTER"
    assert request.body == b""


def test_semiuri_semicolon_in_user_part() -> None:
    request = parse_request("semiuri")
    assert request.uri.user == "user;par=u%40example.net"
    assert request.uri.host == "example.com"
    assert request.uri.params == {}
    assert len(request.headers.get_all("Accept")) == 6


def test_transports_unknown_transport_tokens_are_accepted() -> None:
    request = parse_request("transports")
    assert [v.transport for v in request.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert request.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_binary_body_is_taken_by_content_length() -> None:
    request = parse_request("mpart01")
    assert request.content_type == "multipart/mixed"
    assert len(request.body) == 553
    assert request.body.endswith(b"\xd0\x05\r\n--7a9cbec02ceef655--\r\n")


def test_unreason_utf8_reason_phrase() -> None:
    response = parse_response("unreason")
    assert response.status_code == 200
    assert response.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def test_noreason_empty_reason_phrase() -> None:
    response = parse_response("noreason")
    assert (response.status_code, response.reason) == (100, "")


# ----------------------------------------------------- tolerated, and 3.2 / 3.3


def test_lwsstart_and_trws_extra_spaces_are_not_sent_on() -> None:
    for stem in ("lwsstart", "trws"):
        request = parse_request(stem)
        first_line = bytes(request).split(b"\r\n", 1)[0]
        assert b"  " not in first_line
        assert first_line.endswith(b" SIP/2.0")


def test_badaspec_spaces_inside_angle_brackets_are_ignored() -> None:
    request = parse_request("badaspec")
    assert str(request.to.uri) == "sip:t.watson@example.org"
    assert request.to.display_name == "Watson, Thomas"
    assert request.from_.display_name == "Bell, Alexander"


def test_unquoted_non_token_display_names_are_tolerated() -> None:
    request = parse_request("hl-baddn-terminated")
    assert request.from_.display_name == "Bell, Alexander"
    assert request.to.display_name == "Watson, Thomas"


def test_badbranch_bare_magic_cookie_still_parses() -> None:
    assert parse_request("badbranch").via.branch == "z9hG4bK"


def test_bcast_response_keeps_every_via() -> None:
    response = parse_response("bcast")
    assert [v.host for v in response.vias] == ["192.0.2.198", "255.255.255.255"]


def test_zeromf_max_forwards_zero_parses() -> None:
    assert parse_request("zeromf").headers.get("Max-Forwards") == "0"


def test_cparam01_addr_spec_parameters_belong_to_the_header() -> None:
    [contact] = parse_request("cparam01").contacts
    assert contact.params == {"unknownparam": None}
    assert contact.uri.params == {}


def test_cparam02_bracketed_parameters_belong_to_the_uri() -> None:
    [contact] = parse_request("cparam02").contacts
    assert contact.params == {}
    assert contact.uri.params == {"unknownparam": None}


def test_regescrt_headers_inside_brackets_are_kept() -> None:
    [contact] = parse_request("regescrt").contacts
    assert contact.uri.headers == "Route=%3Csip:sip.example.com%3E"


def test_inv2543_body_without_content_length_is_the_rest_of_the_datagram() -> None:
    request = parse_request("inv2543")
    assert "Content-Length" not in request.headers
    assert request.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")
    assert request.via.branch is None
    assert request.to.params == {"user": "phone"}  # addr-spec: the header's parameter


def test_bad_version_is_505_and_answerable() -> None:
    error = refusal("badvers")
    assert error.partial is not None
    response = make_response(error.partial, error.status_code)
    assert bytes(response).startswith(b"SIP/2.0 505 Version Not Supported\r\n")


def test_unknown_scheme_is_416_only_for_the_request_uri() -> None:
    assert refusal("unkscm").status_code == 416
    assert refusal("novelsc").status_code == 416
    assert refusal("ltgtruri").status_code == 400  # "<sip:...>" is no scheme at all
    assert refusal("unksm2").status_code == 400  # To/From schemes are not 416


def test_insuf_cannot_be_addressed() -> None:
    error = refusal("insuf")
    assert error.partial is None
    assert "missing" in error.reason


def test_multi01_duplicate_single_valued_headers_are_refused() -> None:
    error = refusal("multi01")
    assert "more than one" in error.reason
    assert error.partial is not None
    response = make_response(error.partial, 400)
    assert len(response.headers.get_all("To")) == 1
    assert len(response.headers.get_all("CSeq")) == 1


# ------------------------------------------------------------------- streams


def test_two_back_to_back_tcp_messages_frame_and_parse() -> None:
    stream = (DATA / "streams" / "hl-two-messages.sip").read_bytes()
    framer = StreamFramer()
    framer.feed(stream)
    frames = []
    while (frame := framer.next_frame()) is not None:
        frames.append(frame)
    assert b"".join(frames) == stream
    methods = []
    for frame in frames:
        message = parse_message(frame)
        assert isinstance(message, Request)
        methods.append(message.method)
    assert methods == ["INVITE", "BYE"]
    assert framer.buffered_bytes == 0


def test_two_back_to_back_tcp_messages_frame_when_fed_byte_by_byte() -> None:
    stream = (DATA / "streams" / "hl-two-messages.sip").read_bytes()
    framer = StreamFramer()
    frames = []
    for index in range(len(stream)):
        framer.feed(stream[index : index + 1])
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    assert len(frames) == 2
    assert b"".join(frames) == stream
