"""Property tests: whatever bytes arrive, the parser answers or refuses, never crashes.

The endpoint catches ``ParseError`` and nothing else, so these properties ask for
exactly that type: an IndexError, a ValueError from ``int()``, a UnicodeError or
a bare ``RemoteProtocolError`` escaping the parser would be a crash of the
datagram handler. Set HOTLINE_FUZZ_EXAMPLES to search harder than CI does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.message import Request, Response
from sip.parser import ParseError, StreamFramer, parse_message

DATA = Path(__file__).parents[2] / "data" / "sip"
CORPUS = {path.name: path.read_bytes() for path in sorted(DATA.glob("*/*.sip"))}
EXAMPLES = int(os.environ.get("HOTLINE_FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def parse_or_refuse(data: bytes) -> Request | Response | None:
    """Parse ``data``; None when it was refused with a ``ParseError``."""
    try:
        return parse_message(data)
    except ParseError as exc:
        assert 400 <= exc.status_code <= 599
        assert exc.reason
        if exc.partial is not None:
            assert isinstance(exc.partial, Request)
        return None


def assert_reparses_the_same(message: Request | Response) -> None:
    """What we accepted, we can also send on: it serializes to an equal message."""
    again = parse_message(bytes(message))
    assert type(again) is type(message)
    if isinstance(message, Request):
        assert isinstance(again, Request)
        assert (again.method, str(again.uri)) == (message.method, str(message.uri))
    else:
        assert isinstance(again, Response)
        assert again.status_code == message.status_code
    assert again.call_id == message.call_id
    assert again.cseq == message.cseq
    assert [via.branch for via in again.vias] == [via.branch for via in message.vias]
    assert again.body == message.body


# Pieces of SIP, so random concatenations reach deeper than random bytes do.
FRAGMENTS = [
    b"INVITE sip:a@b SIP/2.0\r\n",
    b"SIP/2.0 200 OK\r\n",
    b"OPTIONS ",
    b"sip:",
    b"sips:",
    b"tel:+1",
    b" SIP/2.0",
    b"SIP/2.0/UDP ",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"=",
    b"<",
    b">",
    b'"',
    b"\\",
    b"@",
    b"?",
    b"[",
    b"]",
    b"%",
    b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n",
    b"v: ",
    b"From: ",
    b"f: ",
    b"To: ",
    b"t: ",
    b"Call-ID: ",
    b"i: ",
    b"CSeq: 1 INVITE\r\n",
    b"CSeq: ",
    b"Contact: ",
    b"m: ",
    b"Content-Length: ",
    b"l: ",
    b"Max-Forwards: ",
    b"Expires: ",
    b";tag=",
    b"[::1]",
    b"[2001:db8::1]:5060",
    b"0",
    b"9" * 30,
    b"\xc2\xb2",
    b"\xff",
    b"\x00",
    b"\xe2\x80\x94",
    b";lr",
    b"*",
    b"Content-Type: application/sdp\r\n",
    b"v=0\r\n",
]
sip_like = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=60).map(
    b"".join
)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@FUZZ
@given(sip_like)
def test_sip_like_fragments_parse_or_raise_parse_error(data: bytes) -> None:
    message = parse_or_refuse(data)
    if message is not None:
        assert_reparses_the_same(message)


@st.composite
def mutated_corpus_message(draw: st.DrawFn) -> bytes:
    """A corpus file with a few byte flips, truncations, deletions or duplications."""
    data = bytearray(draw(st.sampled_from(sorted(CORPUS.values()))))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "truncate", "delete", "duplicate", "insert"]))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            chunk = data[at : at + draw(st.integers(1, 200))]
            data[at:at] = chunk
        else:
            data[at:at] = draw(st.sampled_from(FRAGMENTS))
    return bytes(data)


@FUZZ
@given(mutated_corpus_message())
def test_mutated_corpus_messages_parse_or_raise_parse_error(data: bytes) -> None:
    message = parse_or_refuse(data)
    if message is not None:
        assert_reparses_the_same(message)


# Messages a TCP peer may send back to back: their Content-Length is their body.
FRAMEABLE = sorted(
    bytes(message)
    for message in (parse_or_refuse(data) for data in CORPUS.values())
    if message is not None
)


def test_the_stream_corpus_is_not_empty() -> None:
    assert len(FRAMEABLE) >= 30


@st.composite
def split_stream(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Messages joined with optional keep-alive CRLFs, cut at random points."""
    messages = draw(st.lists(st.sampled_from(FRAMEABLE), min_size=1, max_size=4))
    stream = b""
    for message in messages:
        stream += draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])) + message
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return messages, chunks


@FUZZ
@given(split_stream())
def test_stream_framer_yields_exactly_the_messages_however_the_stream_is_cut(
    case: tuple[list[bytes], list[bytes]],
) -> None:
    messages, chunks = case
    framer = StreamFramer()
    frames: list[bytes] = []
    for chunk in chunks:
        framer.feed(chunk)
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    assert frames == messages
    assert framer.buffered_bytes == 0


@FUZZ
@given(st.lists(st.one_of(sip_like, st.binary(max_size=64)), max_size=8))
def test_stream_framer_on_garbage_frames_or_raises_parse_error(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_message_bytes=4096)
    try:
        for chunk in chunks:
            framer.feed(chunk)
            while (frame := framer.next_frame()) is not None:
                parse_or_refuse(frame)
    except ParseError as exc:
        assert exc.status_code in (400, 513)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_truncation_of_a_corpus_file_parses_or_raises_parse_error(name: str) -> None:
    data = CORPUS[name]
    step = max(1, len(data) // 300)  # longreq is 3.5 kB: keep this test fast
    for end in range(0, len(data), step):
        parse_or_refuse(data[:end])
