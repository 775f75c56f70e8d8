"""SDP session descriptions: parse and serialize (RFC 8866, which obsoletes RFC 4566).

``SessionDescription.parse(data)`` returns plain objects or raises
``RemoteProtocolError`` with status 488 and a reason naming the bad line.
``bytes(sdp)`` writes CRLF lines in the RFC order (v o s i u e p c b t r z k a,
then each m= section). Well-formed CRLF input round-trips byte for byte: unknown
attributes are kept as they came, and lines with type letters SDP does not
define are kept and written at the end of their section. Bare LF input is
accepted too (and written back with CRLF).

The media sections and the ``c=``/``b=``/``a=`` line types live in ``sdp_media``;
they are re-exported here so that callers import from one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sip.sdp_media import (
    DEFAULT_DIRECTION,
    DIRECTIONS,
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    RtpMap,
    bad_sdp,
    explicit_direction,
    parse_int,
)

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Connection",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "Timing",
]

# Lines that may appear once at session level, and where each is stored.
_SESSION_SINGLE: Final = {
    "i": "information",
    "u": "uri",
    "c": "connection",
    "z": "zone",
    "k": "key",
}
# RFC 8866 §5: these belong to the session part; inside an m= section they are misplaced.
_SESSION_ONLY: Final = frozenset("vosuepzrt")


@dataclass(slots=True)
class Origin:
    """The ``o=`` line: who made the session and which version this is (RFC 8866 §5.2).

    origin-field = %s"o" "=" username SP sess-id SP sess-version SP
                   nettype SP addrtype SP unicast-address CRLF

    RFC 3264 §8: each new offer or answer in a dialog keeps ``sess_id`` and adds
    one to ``sess_version``.
    """

    username: str
    sess_id: int
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Origin:
        """Parse the value of an ``o=`` line.

        Raises:
            RemoteProtocolError: (488) on a malformed line.
        """
        fields = value.split()
        if len(fields) != 6:
            raise bad_sdp(
                f"bad o= line {value[:80]!r}: expected <username> <sess-id> <sess-version> "
                "<nettype> <addrtype> <address>"
            )
        username, sess_id, sess_version, nettype, addrtype, address = fields
        return cls(
            username,
            parse_int(sess_id, "sess-id in o= line"),
            parse_int(sess_version, "sess-version in o= line"),
            nettype,
            addrtype,
            address,
        )

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Timing:
    """A ``t=`` line and its ``r=`` repeat lines (RFC 8866 §5.9, §5.10).

    timing-field = %s"t" "=" start-time SP stop-time CRLF

    Calls use ``t=0 0``: a session without bounds.
    """

    start_time: int = 0
    stop_time: int = 0
    repeats: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, value: str) -> Timing:
        """Parse the value of a ``t=`` line.

        Raises:
            RemoteProtocolError: (488) on a malformed line.
        """
        fields = value.split()
        if len(fields) != 2:
            raise bad_sdp(f"bad t= line {value[:40]!r}: expected <start-time> <stop-time>")
        return cls(
            parse_int(fields[0], "start time in t= line"),
            parse_int(fields[1], "stop time in t= line"),
        )

    def lines(self) -> list[str]:
        """The ``t=`` line and its ``r=`` lines."""
        return [f"t={self.start_time} {self.stop_time}", *(f"r={r}" for r in self.repeats)]


@dataclass(slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body (RFC 8866 §5).

    session-description = version-field origin-field session-name-field
                          [information-field] [uri-field] *email-field *phone-field
                          [connection-field] *bandwidth-field 1*time-description
                          [key-field] *attribute-field *media-description

    Attributes:
        connection: the session-level ``c=``; each m= section may override it.
        times: the time descriptions (at least one; ``timing`` is the first).
        extra_lines: session-level lines with type letters SDP does not define.
    """

    version: int = 0
    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    times: list[Timing] = field(default_factory=lambda: [Timing()])
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra_lines: list[str] = field(default_factory=list)

    @property
    def timing(self) -> Timing:
        """The first time description (the only one in any call's SDP)."""
        return self.times[0]

    @property
    def direction(self) -> str:
        """The session-level direction attribute, else sendrecv (RFC 8866 §6.7)."""
        return explicit_direction(self.attributes, "at session level") or DEFAULT_DIRECTION

    def attribute_value(self, name: str) -> str | None:
        """The value of the first session-level ``a=<name>:<value>``, or None."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.value
        return None

    # ---------------------------------------------------------------- parsing

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body (CRLF or bare LF line ends).

        Raises:
            RemoteProtocolError: (488) naming the first problem found.
        """
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")  # RFC 8866 §5: UTF-8 unless a=charset says more
            except UnicodeDecodeError as exc:
                raise bad_sdp(f"SDP is not UTF-8 (byte {exc.start})") from None
        else:
            text = data
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        lines = [line for line in lines if line]  # tolerate blank lines, e.g. a trailing one
        if not lines:
            raise bad_sdp("empty SDP body")
        # RFC 8866 §5: "v=" comes first; it is how a reader knows this is SDP at all.
        if not lines[0].startswith("v="):
            if any(line.startswith("v=") for line in lines):
                raise bad_sdp("v= line must come first")
            raise bad_sdp("missing v= line")
        version = parse_int(lines[0][2:], "version in v= line")
        if version != 0:
            raise bad_sdp(f"unsupported SDP version {version}")
        return _SessionParser(version).feed(lines[1:])

    # ---------------------------------------------------------- serialization

    def lines(self) -> list[str]:
        """All lines in RFC order, without line ends."""
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={email}" for email in self.emails)
        out.extend(f"p={phone}" for phone in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={bandwidth}" for bandwidth in self.bandwidths)
        for timing in self.times:
            out.extend(timing.lines())
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={attribute}" for attribute in self.attributes)
        out.extend(self.extra_lines)
        for media in self.media:
            out.extend(media.lines())
        return out

    def __str__(self) -> str:
        # RFC 8866 §5: "The sequence CRLF (0x0d0a) is used to end a line".
        return "".join(line + "\r\n" for line in self.lines())

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


class _SessionParser:
    """Fills a ``SessionDescription`` line by line; one instance per parse."""

    __slots__ = ("fields", "media", "times", "version")

    def __init__(self, version: int) -> None:
        self.version = version
        self.fields: dict[str, str] = {}
        self.times: list[Timing] = []
        self.media: list[MediaDescription] = []

    def feed(self, lines: list[str]) -> SessionDescription:
        attributes: list[Attribute] = []
        bandwidths: list[Bandwidth] = []
        emails: list[str] = []
        phones: list[str] = []
        extra: list[str] = []
        for line in lines:
            kind, value = _split_line(line)
            if kind == "m":
                self.media.append(MediaDescription.parse_media_field(value))
            elif self.media:
                self._media_line(self.media[-1], kind, value, line)
            elif kind == "v":
                raise bad_sdp("more than one v= line")
            elif kind in ("o", "s") or kind in _SESSION_SINGLE:
                self._once(kind, value)
            elif kind == "e":
                emails.append(value)
            elif kind == "p":
                phones.append(value)
            elif kind == "b":
                bandwidths.append(Bandwidth.parse(value))
            elif kind == "t":
                self.times.append(Timing.parse(value))
            elif kind == "r":
                if not self.times:
                    raise bad_sdp("r= line before any t= line")
                self.times[-1].repeats.append(value)
            elif kind == "a":
                attributes.append(Attribute.parse(value))
            else:
                extra.append(line)
        if "o" not in self.fields:
            raise bad_sdp("missing o= line")
        if "s" not in self.fields:
            raise bad_sdp("missing s= line")
        if not self.times:
            raise bad_sdp("missing t= line")
        session = SessionDescription(
            version=self.version,
            origin=Origin.parse(self.fields["o"]),
            session_name=self.fields["s"],
            emails=emails,
            phones=phones,
            bandwidths=bandwidths,
            times=self.times,
            attributes=attributes,
            media=self.media,
            extra_lines=extra,
        )
        for kind, name in _SESSION_SINGLE.items():
            if kind in self.fields:
                value = self.fields[kind]
                setattr(session, name, Connection.parse(value) if kind == "c" else value)
        explicit_direction(attributes, "at session level")
        for media in self.media:
            media.validate()
        return session

    def _once(self, kind: str, value: str) -> None:
        if kind in self.fields:
            raise bad_sdp(f"more than one {kind}= line at session level")
        self.fields[kind] = value

    @staticmethod
    def _media_line(media: MediaDescription, kind: str, value: str, line: str) -> None:
        """RFC 8866 §5: media-description = m= [i=] *c= *b= [k=] *a=."""
        if kind == "a":
            media.attributes.append(Attribute.parse(value))
        elif kind == "c":
            if media.connection is not None:
                # Legal only for layered multicast (§5.7), which a call never uses.
                raise bad_sdp(f"more than one c= line in m={media.media}")
            media.connection = Connection.parse(value)
        elif kind == "b":
            media.bandwidths.append(Bandwidth.parse(value))
        elif kind == "i":
            media.information = value
        elif kind == "k":
            media.key = value
        elif kind in _SESSION_ONLY:
            raise bad_sdp(f"{kind}= line is not allowed in a media section")
        else:
            media.extra_lines.append(line)


def _split_line(line: str) -> tuple[str, str]:
    """Split ``<type>=<value>``; type is one letter, no spaces around "=" (RFC 8866 §5)."""
    if len(line) < 2 or line[1] != "=" or not line[0].isascii() or not line[0].isalpha():
        raise bad_sdp(f"bad SDP line {line[:40]!r}: expected <type>=<value>")
    return line[0], line[2:]
