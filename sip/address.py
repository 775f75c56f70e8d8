"""Header values built on addresses: name-addr (From, To, Contact, Route) and Via.

RFC 3261 §25.1:
    name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS) / quoted-string
    from-spec    = ( name-addr / addr-spec ) *( SEMI from-param )
    via-parm     = sent-protocol LWS sent-by *( SEMI via-params )
    sent-protocol = protocol-name SLASH protocol-version SLASH transport
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sip.errors import RemoteProtocolError
from sip.grammar import format_params, parse_params, quote, split_outside, unquote
from sip.uri import SipUri, parse_hostport

_VIA_HEAD_RE = re.compile(
    r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\S+(?:\s*:\s*\d+)?)", re.IGNORECASE
)


@dataclass(slots=True)
class NameAddress:
    """A From/To/Contact/Route value: display name, URI and header parameters."""

    uri: SipUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        """Parse a name-addr or addr-spec followed by header parameters."""
        text = text.strip()
        if not text:
            raise RemoteProtocolError("empty address")
        langle = _find_unquoted(text, "<")
        if langle >= 0:
            rangle = text.find(">", langle)
            if rangle < 0:
                raise RemoteProtocolError(f"unterminated '<' in {text[:60]!r}")
            display = text[:langle].strip()
            display_name: str | None = None
            if display.startswith('"'):
                display_name = unquote(display)
            elif display:
                display_name = display
            uri = SipUri.parse(text[langle + 1 : rangle])
            params = text[rangle + 1 :]
            if params.strip() and not params.lstrip().startswith(";"):
                raise RemoteProtocolError(f"bad text after '>' in {text[:60]!r}")
            return cls(uri, display_name, parse_params(params))
        # RFC 3261 §20.10: in an addr-spec without <>, every ;param is the header's.
        uri_text, semi, params = text.partition(";")
        if " " in uri_text.strip():
            raise RemoteProtocolError(f"bad address {text[:60]!r}")
        if "?" in uri_text:
            # §20: a URI with a comma, question mark or semicolon MUST be in <>
            # (RFC 4475 §3.1.2.13: the brackets are not to be guessed).
            raise RemoteProtocolError(f"URI with headers outside <> in {text[:60]!r}")
        return cls(SipUri.parse(uri_text), None, parse_params(semi + params))

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (dialog identification, §19.3)."""
        return self.params.get("tag")

    def __str__(self) -> str:
        display = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _find_unquoted(text: str, char: str) -> int:
    in_quotes = False
    index = 0
    while index < len(text):
        current = text[index]
        if in_quotes:
            if current == "\\":
                index += 1
            elif current == '"':
                in_quotes = False
        elif current == '"':
            in_quotes = True
        elif current == char:
            return index
        index += 1
    return -1


@dataclass(slots=True)
class Via:
    """One Via element: transport, sent-by and parameters (branch, received, rport)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse ``SIP/2.0/UDP host:port;branch=...`` (LWS allowed around slashes)."""
        head, semi, params = text.strip().partition(";")
        match = _VIA_HEAD_RE.fullmatch(head.strip())
        if match is None:
            raise RemoteProtocolError(f"bad Via {text[:60]!r}")
        host, port = parse_hostport("".join(match.group(2).split()))
        return cls(match.group(1).upper(), host, port, parse_params(semi + params))

    @property
    def branch(self) -> str | None:
        """The branch parameter (transaction id when it starts with z9hG4bK, §8.1.1.7)."""
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quotes and brackets."""
    return [part.strip() for part in split_outside(value, ",") if part.strip()]
