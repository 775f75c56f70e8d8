"""SIP and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), including IPv6 references.

SIP-URI  = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
hostport = host [ ":" port ]
host     = hostname / IPv4address / IPv6reference
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from sip.errors import RemoteProtocolError
from sip.grammar import format_params, parse_digits, parse_params

_HOST_RE = re.compile(r"[A-Za-z0-9\-.]+")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
SUPPORTED_SCHEMES = ("sip", "sips", "tel")


@dataclass(slots=True)
class SipUri:
    """A parsed sip:, sips: or tel: URI. ``host`` keeps IPv6 brackets."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI, raising ``RemoteProtocolError`` (416 for other schemes)."""
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or not rest or not _SCHEME_RE.fullmatch(scheme):
            # Not a URI at all (e.g. "<sip:a@b>", RFC 4475 §3.1.2.7): 400, not 416.
            raise RemoteProtocolError(f"bad URI {text[:60]!r}")
        if scheme not in SUPPORTED_SCHEMES:
            # RFC 3261 §8.2.2.1: an unsupported Request-URI scheme gets 416.
            raise RemoteProtocolError(f"unsupported URI scheme {scheme[:20]!r}", 416)
        if scheme == "tel":
            number, semi, params = rest.partition(";")
            return cls(scheme="tel", user=number, params=parse_params(semi + params))
        # "@" occurs nowhere in a SIP-URI but after userinfo (§25.1), while the
        # user part may hold "?" and ";" (RFC 4475 §3.1.1.2), so split at "@" first.
        userinfo, at, hostpart = rest.partition("@")
        if not at:
            hostpart = rest
        hostpart, _, headers = hostpart.partition("?")
        user: str | None = None
        password: str | None = None
        if at:
            user, pcolon, pw = userinfo.partition(":")
            password = pw if pcolon else None
            if not user:
                raise RemoteProtocolError(f"empty user in URI {text[:60]!r}")
        hostport, semi, params = hostpart.partition(";")
        host, port = parse_hostport(hostport)
        return cls(scheme, user, password, host, port, parse_params(semi + params), headers)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(format_params(self.params))
        if self.headers:
            out += ["?", self.headers]
        return "".join(out)

    @property
    def transport(self) -> str:
        """The ``transport`` parameter, lower-case, ``udp`` when absent."""
        value = self.params.get("transport")
        return value.lower() if value else "udp"

    @property
    def host_unbracketed(self) -> str:
        """The host as a socket address wants it (IPv6 without brackets)."""
        return self.host[1:-1] if self.host.startswith("[") else self.host


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]``, keeping IPv6 brackets on the host.

    Raises:
        RemoteProtocolError: on an empty host, a bad character or a bad port.
    """
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise RemoteProtocolError(f"unterminated IPv6 reference {text[:60]!r}")
        host, after = text[: end + 1], text[end + 1 :]
        if not _IPV6_RE.fullmatch(host) or not _is_ipv6(host[1:-1]):
            raise RemoteProtocolError(f"bad IPv6 reference {host[:60]!r}")
        if after:
            if not after.startswith(":"):
                raise RemoteProtocolError(f"bad text after IPv6 reference {after[:20]!r}")
            port_text = after[1:]
    else:
        host, colon, port_text = text.partition(":")
        if not host or not _HOST_RE.fullmatch(host):
            raise RemoteProtocolError(f"bad host {host[:60]!r}")
        if colon and not port_text:
            raise RemoteProtocolError("empty port")
    port: int | None = None
    if port_text:
        port = parse_digits(port_text, 65536)
        if not port:
            raise RemoteProtocolError(f"bad port {port_text[:20]!r}")
    return host.lower(), port


def _is_ipv6(text: str) -> bool:
    # RFC 3261 §25.1: IPv6reference = "[" IPv6address "]"; the regex above only
    # checked the alphabet, so "[1::2::3]" or "[1:2]" must still be refused here.
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
