"""SDP media descriptions and the lines they share with the session (RFC 8866 §5).

``MediaDescription`` is one ``m=`` section. ``Connection`` (``c=``),
``Bandwidth`` (``b=``) and ``Attribute`` (``a=``) appear at both levels, so they
live here and ``sdp`` imports them. Raw attributes are the truth: the parsed views
(``rtpmaps``, ``fmtp``, ``ptime_ms``, ``direction``) are computed from them on
demand, so an edited attribute list never disagrees with its views.

Every error is the peer's bad SDP: ``RemoteProtocolError`` with status 488
(RFC 3261 §21.4.26, Not Acceptable Here).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from sip.errors import RemoteProtocolError

if TYPE_CHECKING:
    from sip.sdp import SessionDescription

# RFC 8866 §6.7: the four direction attributes; with none at either level, sendrecv.
DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
DEFAULT_DIRECTION: Final = "sendrecv"

_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+")
_FQDN_RE = re.compile(r"[A-Za-z0-9\-.]+")


def bad_sdp(reason: str) -> RemoteProtocolError:
    """Return the error for the peer's unacceptable SDP (488, RFC 3264 §6)."""
    return RemoteProtocolError(reason, status_code=488)


def parse_int(text: str, what: str, low: int = 0, high: int | None = None) -> int:
    """Parse a decimal field of SDP (``1*DIGIT``), bounded to ``[low, high]``.

    Raises:
        RemoteProtocolError: (488) naming ``what`` when the text is not a number in range.
    """
    if not text.isascii() or not text.isdigit():
        raise bad_sdp(f"non-numeric {what} {text[:20]!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise bad_sdp(f"{what} {value} out of range")
    return value


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One ``a=rtpmap``: how a payload type maps to an encoding (RFC 8866 §6.6).

    ``clock_rate_hz`` is the RTP timestamp clock, which for G.722 is 8000 even though
    the audio is sampled at 16 kHz (RFC 3551 §4.5.2).
    """

    encoding: str
    clock_rate_hz: int
    channels: int = 1

    def same_codec(self, other: RtpMap) -> bool:
        """True when both name the same codec, whatever the case of the name (RFC 8866 §6.6)."""
        return (
            self.encoding.casefold() == other.encoding.casefold()
            and self.clock_rate_hz == other.clock_rate_hz
            and self.channels == other.channels
        )

    def __str__(self) -> str:
        base = f"{self.encoding}/{self.clock_rate_hz}"
        return base if self.channels == 1 else f"{base}/{self.channels}"

    @classmethod
    def parse(cls, value: str) -> tuple[int, RtpMap]:
        """Parse the value of an ``a=rtpmap`` attribute into ``(payload type, RtpMap)``.

        a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]

        Raises:
            RemoteProtocolError: (488) on a malformed value.
        """
        pt_text, _, mapping = value.strip().partition(" ")
        payload_type = parse_int(pt_text, "payload type in a=rtpmap", 0, 127)
        parts = mapping.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise bad_sdp(f"bad a=rtpmap {value[:40]!r}: expected <pt> <encoding>/<clock>")
        clock_rate_hz = parse_int(parts[1], "clock rate in a=rtpmap", 1)
        channels = parse_int(parts[2], "channels in a=rtpmap", 1) if len(parts) == 3 else 1
        return payload_type, cls(parts[0], clock_rate_hz, channels)


# RFC 3551 §6 Table 4 and 5: payload types with a fixed meaning, usable without rtpmap.
STATIC_PAYLOAD_TYPES: Final[dict[int, RtpMap]] = {
    0: RtpMap("PCMU", 8000),
    3: RtpMap("GSM", 8000),
    4: RtpMap("G723", 8000),
    5: RtpMap("DVI4", 8000),
    6: RtpMap("DVI4", 16000),
    7: RtpMap("LPC", 8000),
    8: RtpMap("PCMA", 8000),
    9: RtpMap("G722", 8000),  # §4.5.2: an old mistake kept for compatibility; audio is 16 kHz
    10: RtpMap("L16", 44100, 2),
    11: RtpMap("L16", 44100),
    12: RtpMap("QCELP", 8000),
    13: RtpMap("CN", 8000),
    14: RtpMap("MPA", 90000),
    15: RtpMap("G728", 8000),
    16: RtpMap("DVI4", 11025),
    17: RtpMap("DVI4", 22050),
    18: RtpMap("G729", 8000),
    25: RtpMap("CelB", 90000),
    26: RtpMap("JPEG", 90000),
    28: RtpMap("nv", 90000),
    31: RtpMap("H261", 90000),
    32: RtpMap("MPV", 90000),
    33: RtpMap("MP2T", 90000),
    34: RtpMap("H263", 90000),
}


@dataclass(slots=True)
class Connection:
    """A ``c=`` line (RFC 8866 §5.7).

    connection-field   = %s"c" "=" nettype SP addrtype SP connection-address CRLF
    connection-address = multicast-address / ip4-address / ip6-address / FQDN
    ip4-multicast      = m1 3( "." decimal-uchar ) "/" ttl [ "/" numaddr ]
    ip6-multicast      = ip6-address [ "/" numaddr ]
    """

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    address_count: int | None = None

    @classmethod
    def for_address(cls, host: str) -> Connection:
        """Return ``IN IP6 host`` for an IPv6 literal, else ``IN IP4 host``."""
        return cls("IN", "IP6" if ":" in host else "IP4", host)

    @classmethod
    def parse(cls, value: str) -> Connection:
        """Parse the value of a ``c=`` line.

        Raises:
            RemoteProtocolError: (488) on a malformed line or address.
        """
        fields = value.split()
        if len(fields) != 3:
            raise bad_sdp(f"bad c= line {value[:60]!r}: expected <nettype> <addrtype> <address>")
        nettype, addrtype, address_text = fields
        address, *suffix = address_text.split("/")
        connection = cls(nettype, addrtype, address)
        if nettype != "IN":
            return connection  # extension network type: keep it, nobody here can use it
        if addrtype not in ("IP4", "IP6"):
            raise bad_sdp(f"bad c= line: unknown address type {addrtype[:20]!r}")
        _check_address(addrtype, address, "c= line")
        numbers = [parse_int(part, "number in c= address") for part in suffix]
        if addrtype == "IP4" and numbers:
            connection.ttl = numbers.pop(0)  # IP4 multicast: "/ttl" comes first
        if len(numbers) > 1:
            raise bad_sdp(f"bad c= line: too many '/' parts in {address_text[:60]!r}")
        if numbers:
            connection.address_count = numbers[0]
        return connection

    @property
    def is_null(self) -> bool:
        """True for 0.0.0.0 (or ::): "do not send to me", RFC 3264 §8.4 hold."""
        try:
            return ipaddress.ip_address(self.address).is_unspecified
        except ValueError:
            return False  # an FQDN

    def __str__(self) -> str:
        suffix = "" if self.ttl is None else f"/{self.ttl}"
        if self.address_count is not None:
            suffix += f"/{self.address_count}"
        return f"{self.nettype} {self.addrtype} {self.address}{suffix}"


def _check_address(addrtype: str, address: str, where: str) -> None:
    """Check that ``address`` is a literal of the ``addrtype`` family, or a host name."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        # RFC 8866 §5.7 allows an FQDN where a literal would go. A name has a
        # letter in it, which keeps "256.1.1.1" from passing as one.
        if _FQDN_RE.fullmatch(address) and any(c.isalpha() for c in address):
            return
        raise bad_sdp(f"bad {where}: {address[:50]!r} is not an {addrtype} address") from None
    if parsed.version != (4 if addrtype == "IP4" else 6):
        raise bad_sdp(f"bad {where}: {address[:50]!r} is not an {addrtype} address")


@dataclass(slots=True)
class Bandwidth:
    """A ``b=`` line: ``bwtype ":" bandwidth`` (RFC 8866 §5.8), e.g. ``AS:64`` in kb/s."""

    bwtype: str
    value: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        """Parse the value of a ``b=`` line.

        Raises:
            RemoteProtocolError: (488) on a malformed line.
        """
        bwtype, colon, amount = value.partition(":")
        if not colon or not _TOKEN_RE.fullmatch(bwtype):
            raise bad_sdp(f"bad b= line {value[:40]!r}: expected <bwtype>:<bandwidth>")
        return cls(bwtype, parse_int(amount, "bandwidth in b= line"))

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.value}"


@dataclass(slots=True)
class Attribute:
    """An ``a=`` line: ``attribute-name [":" attribute-value]`` (RFC 8866 §5.13).

    The value is kept byte for byte (``a=msid-semantic: WMS`` keeps its space) so
    that unknown attributes round-trip unchanged.
    """

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        """Parse the text after ``a=``.

        Raises:
            RemoteProtocolError: (488) when the attribute has no name.
        """
        name, colon, value = text.partition(":")
        name = name.strip()
        if not name:
            raise bad_sdp(f"bad a= line {text[:40]!r}: empty attribute name")
        return cls(name, value if colon else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


def explicit_direction(attributes: list[Attribute], where: str) -> str | None:
    """Return the direction attribute in ``attributes``, or None when there is none.

    Raises:
        RemoteProtocolError: (488) when two different directions are given.
    """
    found = {a.name for a in attributes if a.name in DIRECTIONS}
    if len(found) > 1:
        raise bad_sdp(f"conflicting direction attributes {sorted(found)} {where}")
    return found.pop() if found else None


@dataclass(slots=True)
class MediaDescription:
    """One media section, from its ``m=`` line to the next (RFC 8866 §5.14).

    media-field = %s"m" "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF

    Attributes:
        formats: the ``fmt`` list in the offerer's preference order, as strings
            (payload type numbers for RTP, tokens such as ``t38`` otherwise).
        port: 0 means the stream is rejected or disabled (RFC 3264 §6, §8.2).
        extra_lines: lines with type letters SDP does not define (``y=``, ``f=``
            of some vendors), kept whole and written after the attributes.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    extra_lines: list[str] = field(default_factory=list)

    @classmethod
    def parse_media_field(cls, value: str) -> MediaDescription:
        """Parse the value of an ``m=`` line into an empty media section.

        Raises:
            RemoteProtocolError: (488) on a malformed line.
        """
        fields = value.split()
        if len(fields) < 3:
            raise bad_sdp(f"bad m= line {value[:60]!r}: expected <media> <port> <proto> <fmt>")
        if len(fields) == 3:
            raise bad_sdp(f"m= line without formats {value[:60]!r}")
        media, port_text, proto, *formats = fields
        port_text, slash, count_text = port_text.partition("/")
        port = parse_int(port_text, "port in m= line", 0, 65535)
        port_count = parse_int(count_text, "port count in m= line", 1) if slash else None
        section = cls(media, port, proto, formats, port_count)
        if section.is_rtp:
            for fmt in formats:
                # RFC 3550 §5.1: the payload type is a 7-bit field.
                parse_int(fmt, f"payload type in m={media} line", 0, 127)
        return section

    def validate(self) -> None:
        """Parse every view once so that bad SDP fails at parse time, not later.

        Raises:
            RemoteProtocolError: (488) naming the first bad line.
        """
        _ = (self.rtpmaps, self.fmtp, self.ptime_ms, self.direction)

    # ----------------------------------------------------------- parsed views

    @property
    def is_rtp(self) -> bool:
        """True for RTP profiles (``RTP/AVP``, ``RTP/SAVPF``, ``UDP/TLS/RTP/SAVPF``...)."""
        return "RTP/" in self.proto.upper()

    @property
    def payload_types(self) -> list[int]:
        """The formats as RTP payload type numbers (empty for non-RTP media)."""
        return [int(fmt) for fmt in self.formats] if self.is_rtp else []

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> encoding, from ``a=rtpmap`` lines and the RFC 3551 static table.

        A static type listed in ``formats`` without an rtpmap gets its table entry:
        ``m=audio 4000 RTP/AVP 0`` alone means PCMU/8000.
        """
        if not self.is_rtp:
            return {}
        maps: dict[int, RtpMap] = {}
        for attribute in self.attributes:
            if attribute.name == "rtpmap":
                payload_type, rtpmap = RtpMap.parse(attribute.value or "")
                maps.setdefault(payload_type, rtpmap)
        for payload_type in self.payload_types:
            static = STATIC_PAYLOAD_TYPES.get(payload_type)
            if static is not None and payload_type not in maps:
                maps[payload_type] = static
        return maps

    @property
    def fmtp(self) -> dict[int, str]:
        """Payload type -> format parameters of its ``a=fmtp`` (RFC 8866 §6.15)."""
        if not self.is_rtp:
            return {}
        params: dict[int, str] = {}
        for attribute in self.attributes:
            if attribute.name == "fmtp":
                pt_text, _, value = (attribute.value or "").strip().partition(" ")
                payload_type = parse_int(pt_text, "payload type in a=fmtp", 0, 127)
                params.setdefault(payload_type, value.strip())
        return params

    @property
    def ptime_ms(self) -> int | None:
        """The ``a=ptime`` packet duration the sender of this SDP wants to receive."""
        value = self.attribute_value("ptime")
        if value is None:
            return None
        try:
            ptime = float(value.strip())  # some stacks write "20.0"
        except ValueError:
            raise bad_sdp(f"bad a=ptime value {value[:20]!r}") from None
        if not 0 < ptime <= 1000:
            raise bad_sdp(f"a=ptime {value[:20]!r} out of range")
        return round(ptime)

    @property
    def direction(self) -> str:
        """This section's own direction attribute, else sendrecv (see ``effective_direction``)."""
        return explicit_direction(self.attributes, f"in m={self.media}") or DEFAULT_DIRECTION

    def effective_direction(self, session: SessionDescription) -> str:
        """The direction in force: this section's, else the session's, else sendrecv.

        RFC 8866 §6.7: a media-level direction attribute overrides the session-level one.
        """
        return (
            explicit_direction(self.attributes, f"in m={self.media}")
            or explicit_direction(session.attributes, "at session level")
            or DEFAULT_DIRECTION
        )

    def effective_connection(self, session: SessionDescription) -> Connection | None:
        """The ``c=`` of this section, else the session's (RFC 8866 §5.7)."""
        return self.connection if self.connection is not None else session.connection

    def is_hold(self, session: SessionDescription | None = None) -> bool:
        """True when the sender of this SDP asks us not to send media.

        That is ``a=sendonly`` or ``a=inactive`` (RFC 3264 §8.4), or the older
        ``c=0.0.0.0`` form of RFC 2543 that §8.4 says to keep understanding. Without
        ``session`` only this section's own lines count. (Trickle ICE offers, RFC 8838,
        use 0.0.0.0 port 9 as a placeholder too; we do not speak ICE.)
        """
        if session is None:
            connection, direction = self.connection, self.direction
        else:
            connection = self.effective_connection(session)
            direction = self.effective_direction(session)
        if connection is not None and connection.is_null:
            return True
        return direction in ("sendonly", "inactive")

    def attribute_value(self, name: str) -> str | None:
        """The value of the first ``a=<name>:<value>``, or None."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.value
        return None

    def has_attribute(self, name: str) -> bool:
        """True when an ``a=<name>`` line (with or without value) is present."""
        return any(attribute.name == name for attribute in self.attributes)

    # ---------------------------------------------------------- serialization

    def lines(self) -> list[str]:
        """The section's lines in RFC 8866 order: m i c b k a, then unknown lines."""
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={bandwidth}" for bandwidth in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={attribute}" for attribute in self.attributes)
        out.extend(self.extra_lines)
        return out
