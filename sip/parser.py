"""Parse SIP messages from datagrams and frame them on stream transports.

RFC 3261 §7 and §25:
    generic-message = start-line *message-header CRLF [ message-body ]
    Request-Line    = Method SP Request-URI SP SIP-Version CRLF
    Status-Line     = SIP-Version SP Status-Code SP Reason-Phrase CRLF
    message-header  = field-name HCOLON field-value CRLF  (folded lines allowed)

``parse_message`` either returns a message or raises ``ParseError`` (a
``RemoteProtocolError``), whatever the bytes: tests/unit/sip/test_fuzz.py holds
it to that. When the start line and the headers a response needs could be read,
the error carries the half-parsed request as ``partial`` so the caller can answer.
"""

from __future__ import annotations

import re
from collections import Counter

from sip.address import NameAddress
from sip.errors import RemoteProtocolError
from sip.grammar import is_token, parse_digits
from sip.headers import Headers
from sip.message import SIP_VERSION, Message, Request, Response
from sip.uri import SipUri

MAX_MESSAGE_BYTES = 65_535
MAX_HEADERS = 256

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; the line is matched
# right-stripped, so an empty reason (RFC 4475 §3.1.1.13) leaves no SP.
_STATUS_LINE_RE = re.compile(r"SIP/(\d+\.\d+) (\d{3})(?: (.*))?", re.IGNORECASE | re.ASCII)
# Request-Line = Method SP Request-URI SP SIP-Version. Runs of SP between and
# after the elements are tolerated (RFC 4475 §3.1.2.9, §3.1.2.10 allow it); LWS
# inside the Request-URI makes a fourth element and is refused (§3.1.2.8).
_REQUEST_LINE_RE = re.compile(r"(\S+) +(\S+) +SIP/(\d+\.\d+) *", re.IGNORECASE | re.ASCII)
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_FOLD_RE = re.compile(r"\r?\n[ \t]+")
_REQUIRED_REQUEST_HEADERS = ("To", "From", "CSeq", "Call-ID", "Via")
# §20: these take exactly one value; RFC 4475 §3.3.8 says answer 400 to repeats.
_SINGLE_VALUED_HEADERS = ("To", "From", "CSeq", "Call-ID", "Max-Forwards")
# Content-Length can never legitimately exceed the largest message we accept.
_CONTENT_LENGTH_LIMIT = 2**31


class ParseError(RemoteProtocolError):
    """A ``RemoteProtocolError`` that may carry the half-parsed request."""

    def __init__(self, reason: str, status_code: int = 400, partial: Request | None = None):
        super().__init__(reason, status_code)
        self.partial = partial


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split a message at the empty line that ends its headers."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")  # §7.5: be liberal, accept bare LF line ends
    if end >= 0:
        return data[:end], data[end + 2 :]
    raise ParseError("no empty line after the headers")


def parse_message(data: bytes) -> Message:
    """Parse one complete message (a datagram, or a frame cut by ``StreamFramer``).

    Raises:
        ParseError: the input is not an acceptable SIP message.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise ParseError("message too large", 513)
    head_bytes, body = split_head(data.lstrip(b"\r\n"))
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"headers are not UTF-8 (byte {exc.start})") from None
    # §7.3.1: a line starting with whitespace continues the previous one.
    lines = _FOLD_RE.sub(" ", head).replace("\r\n", "\n").split("\n")
    start_line, header_lines = lines[0], lines[1:]
    if len(header_lines) > MAX_HEADERS:
        raise ParseError("too many header lines")
    headers = _parse_headers(header_lines)
    message = _parse_start_line(start_line, headers)
    message.body = _frame_body(headers, body, message)
    if isinstance(message, Request):
        _validate_request(message)
    else:
        _validate_response(message)
    return message


def _parse_headers(lines: list[str]) -> Headers:
    headers = Headers()
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _HEADER_NAME_RE.fullmatch(name):
            raise ParseError(f"bad header line {line[:60]!r}")
        try:
            headers.add(name, value.strip())  # list headers are split here
        except RemoteProtocolError as exc:
            raise ParseError(f"bad {name[:30]} header: {exc.reason}") from None
        if len(headers) > MAX_HEADERS:
            # Bounds the validation work: "Contact: <a>,<a>,..." in 64 kB is
            # thousands of addresses, each to be parsed.
            raise ParseError("too many header fields")
    return headers


def _parse_start_line(line: str, headers: Headers) -> Message:
    if line[:4].upper() == "SIP/":
        match = _STATUS_LINE_RE.fullmatch(line.rstrip())
        if match is None:
            raise ParseError(f"bad status line {line[:60]!r}")
        if match.group(1) != "2.0":
            raise ParseError(f"unsupported version SIP/{match.group(1)}", 505)
        status_code = int(match.group(2))
        if not 100 <= status_code <= 699:
            raise ParseError(f"status code {status_code} out of range")
        return Response(status_code, match.group(3) or "", headers)
    match = _REQUEST_LINE_RE.fullmatch(line)
    if match is None:
        # Answer 400 if the line at least starts like a request (§3.1.2.8 lwsruri).
        method = (line.split() or [""])[0]
        partial = None
        if is_token(method):
            partial = _answerable(Request(method, SipUri(host="invalid"), headers))
        raise ParseError(f"bad request line {line[:60]!r}", 400, partial)
    method, uri_text, version = match.groups()
    if not is_token(method):
        raise ParseError(f"bad method {method[:20]!r}")
    placeholder = Request(method, SipUri(host="invalid"), headers)
    if version != "2.0":
        # §8.2.2 / RFC 4475 §3.1.2.16: answer 505 Version Not Supported.
        raise ParseError(f"unsupported version SIP/{version}", 505, _answerable(placeholder))
    try:
        uri = SipUri.parse(uri_text)
    except RemoteProtocolError as exc:
        raise ParseError(
            f"bad Request-URI: {exc.reason}", exc.status_code, _answerable(placeholder)
        ) from None
    if uri.headers:
        # §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise ParseError("headers in the Request-URI", 400, _answerable(placeholder))
    return Request(method, uri, headers)


def _frame_body(headers: Headers, body: bytes, message: Message) -> bytes:
    values = headers.get_all("Content-Length")
    if not values:
        return body  # §18.3: optional on UDP, the datagram ends the body
    length = parse_digits(values[0], _CONTENT_LENGTH_LIMIT)
    if len(set(values)) != 1 or length is None:
        # RFC 4475 §3.3.9: differing Content-Lengths leave the body unknowable.
        raise ParseError(f"bad Content-Length {values[0][:20]!r}", 400, _answerable(message))
    if length > len(body):
        # §18.3: a datagram shorter than its Content-Length is rejected with 400.
        raise ParseError(
            f"body shorter than Content-Length ({len(body)} < {length})", 400, _answerable(message)
        )
    return body[:length]


def _validate_request(request: Request) -> None:
    try:
        for name in _REQUIRED_REQUEST_HEADERS:
            if name not in request.headers:
                raise RemoteProtocolError(f"missing {name} header")
        counts = Counter(name for name, _ in request.headers)
        for name in _SINGLE_VALUED_HEADERS:
            if counts[name] > 1:
                raise RemoteProtocolError(f"more than one {name} header")
        cseq = request.cseq
        # RFC 4475 §3.1.2.17: the CSeq method must match the request method.
        if cseq.method != request.method:
            raise RemoteProtocolError(f"CSeq method {cseq.method} does not match {request.method}")
        request.vias  # noqa: B018 - every Via, so no later reader trips on one
        request.from_  # noqa: B018
        request.to  # noqa: B018
        for contact in request.headers.get_all("Contact"):
            if contact != "*":  # §10.2.2: "Contact: *" removes every binding
                _parse_contact(contact)
        max_forwards = request.headers.get("Max-Forwards")
        if max_forwards is not None and parse_digits(max_forwards, 256) is None:
            raise RemoteProtocolError(f"bad Max-Forwards {max_forwards[:20]!r}")
        expires = request.headers.get("Expires")
        # delta-seconds may overflow any integer (RFC 4475 §3.1.2.4 allows treating
        # it as the default); it only has to be digits here.
        if expires is not None and not (expires.isascii() and expires.isdigit()):
            raise RemoteProtocolError(f"bad Expires {expires[:20]!r}")
        if request.content_type is None and request.body.strip():
            raise RemoteProtocolError("body without Content-Type")
    except ParseError:
        raise
    except RemoteProtocolError as exc:
        raise ParseError(exc.reason, exc.status_code, _answerable(request)) from None


def _parse_contact(value: str) -> None:
    try:
        NameAddress.parse(value)
    except RemoteProtocolError as exc:
        # 416 is for the Request-URI only (RFC 3261 §21.4.17).
        raise RemoteProtocolError(f"bad Contact header: {exc.reason}") from None


def _validate_response(response: Response) -> None:
    # A response we cannot match to a transaction is useless: it is dropped, never
    # answered (RFC 4475 §3.1.2.5), hence no ``partial``.
    try:
        response.cseq  # noqa: B018
        response.via  # noqa: B018 - present ...
        response.vias  # noqa: B018 - ... and every one well-formed
        response.call_id  # noqa: B018
        response.from_  # noqa: B018 - dialogs and transactions read the tags
        response.to  # noqa: B018
    except RemoteProtocolError as exc:
        raise ParseError(exc.reason, exc.status_code) from None


def _answerable(message: Message) -> Request | None:
    """Return the request if a response to it could be addressed (§8.2.6.2)."""
    if not isinstance(message, Request):
        return None
    headers = message.headers
    if all(headers.get(name) for name in ("Via", "From", "To", "Call-ID", "CSeq")):
        return message
    return None


class StreamFramer:
    """Cut a TCP byte stream into messages using Content-Length (§18.3).

    ``feed`` bytes, then call ``next_frame`` until it returns ``None``. Keep-alive
    CRLFs between messages (RFC 5626 §3.5.1) are skipped.
    """

    __slots__ = ("_buffer", "max_message_bytes")

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self.max_message_bytes = max_message_bytes

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """Return the next complete message's bytes, or None if more are needed.

        Raises:
            ParseError: the stream cannot be framed (no or bad Content-Length,
                oversized message). The connection should then be closed.
        """
        while self._buffer[:2] == b"\r\n":
            del self._buffer[:2]
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > self.max_message_bytes:
                raise ParseError("headers too large", 513)
            return None
        head = bytes(self._buffer[:end])
        length = _content_length(head)
        total = end + 4 + length
        if total > self.max_message_bytes:
            raise ParseError("message too large", 513)
        if len(self._buffer) < total:
            return None
        frame = bytes(self._buffer[:total])
        del self._buffer[:total]
        return frame

    @property
    def buffered_bytes(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)


_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)", re.I | re.M)


def _content_length(head: bytes) -> int:
    match = _CONTENT_LENGTH_RE.search(head)
    if match is None:
        # §18.3: on stream transports Content-Length is mandatory.
        raise ParseError("missing Content-Length on a stream transport")
    value = match.group(1)
    if not value.isdigit():
        raise ParseError(f"bad Content-Length {value[:20]!r}")
    if len(value.lstrip(b"0")) > 10:  # int() would refuse > 4300 digits anyway
        raise ParseError("message too large", 513)
    return int(value)


__all__ = ["SIP_VERSION", "ParseError", "StreamFramer", "parse_message", "split_head"]
