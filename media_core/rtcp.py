"""RTCP (RFC 3550 §6): SR, RR, SDES, BYE and compound packets, as bytes and back.

Every RTCP packet starts with the same 32-bit header (RFC 3550 §6.4.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|   RC    |      PT       |             length            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

where ``length`` is the packet's size in 32-bit words minus one, header and
padding included. Datagrams carry compound packets (§6.1): an SR or RR first,
then at least an SDES with a CNAME. ``parse_compound`` applies the validity
checks of Appendix A.2 and raises ``ValueError`` naming the first problem found;
packet types it does not know (APP, XR, feedback) come back as ``RawRtcpPacket``
so that nothing is lost.

``build_report`` makes the compound packet a session sends each reporting
interval, from its sender counts and its ``ReceiverStats``. NTP timestamps are
64-bit integers (seconds since 1900 in the high half, binary fraction in the
low half); ``round_trip_delay_s`` turns an echoed LSR/DLSR into a round trip.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

__all__ = [
    "NTP_UNIX_OFFSET_S",
    "PT_APP",
    "PT_BYE",
    "PT_RR",
    "PT_SDES",
    "PT_SR",
    "SDES_CNAME",
    "Bye",
    "RawRtcpPacket",
    "ReceiverReport",
    "ReceptionSource",
    "ReportBlock",
    "RtcpPacket",
    "SdesChunk",
    "SdesItem",
    "SenderInfo",
    "SenderReport",
    "SourceDescription",
    "build_report",
    "ntp_from_unix",
    "ntp_middle32",
    "parse_compound",
    "round_trip_delay_s",
    "unix_from_ntp",
]

RTCP_VERSION = 2

# RFC 3550 §12.1: RTCP packet types.
PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_APP = 204

# RFC 3550 §12.2: SDES item types (the ones hotline sends or reads).
SDES_END = 0
SDES_CNAME = 1

#: Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET_S = 2_208_988_800

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IIIIII")  # SSRC, NTP msw, NTP lsw, RTP ts, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")  # SSRC, lost word, ext seq, jitter, LSR, DLSR
_WORD = struct.Struct("!I")
_MAX_COUNT = 31  # RC/SC is five bits


# --------------------------------------------------------------- NTP time


def ntp_from_unix(unix_s: float) -> int:
    """The 64-bit NTP timestamp of a Unix time (RFC 3550 §4).

    Args:
        unix_s: seconds since 1970-01-01 UTC.

    Returns:
        Seconds since 1900 in the high 32 bits, the fraction in the low 32,
        modulo 2**64 (so 2036 and later wrap into NTP era 1).
    """
    whole = math.floor(unix_s)
    fraction = round((unix_s - whole) * 2**32)
    return (((whole + NTP_UNIX_OFFSET_S) << 32) + fraction) & 0xFFFF_FFFF_FFFF_FFFF


def unix_from_ntp(ntp_timestamp: int) -> float:
    """The Unix time of a 64-bit NTP timestamp.

    RFC 4330 §3: a timestamp whose most significant bit is clear is taken to be
    in era 1 (from 2036-02-07 on), since era 0's such times precede 1968.
    """
    seconds = ntp_timestamp >> 32
    if not seconds & 0x80000000:
        seconds += 1 << 32
    return seconds - NTP_UNIX_OFFSET_S + (ntp_timestamp & 0xFFFFFFFF) / 2**32


def ntp_middle32(ntp_timestamp: int) -> int:
    """The middle 32 bits of an NTP timestamp: LSR's unit, 1/65536 s (RFC 3550 §6.4.1)."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


def round_trip_delay_s(arrival_ntp: int, last_sr: int, delay_since_last_sr: int) -> float | None:
    """The round trip a report block reveals (RFC 3550 §6.4.1, Figure 2).

    The sender of an SR computes ``A - LSR - DLSR`` in units of 1/65536 s,
    where ``A`` is when the block arrived, on the same clock that stamped the SR.

    Args:
        arrival_ntp: the 64-bit NTP time at which the report block arrived.
        last_sr: the block's LSR: the middle 32 bits of our SR's timestamp.
        delay_since_last_sr: the block's DLSR, in 1/65536 s.

    Returns:
        Seconds, or None when the block echoes no SR (LSR 0) or the figures
        give a negative delay (the peer's DLSR exceeds what elapsed here).
    """
    if last_sr == 0:
        return None
    units = (ntp_middle32(arrival_ntp) - last_sr - delay_since_last_sr) & 0xFFFFFFFF
    if units & 0x80000000:
        return None
    return units / 65536


# -------------------------------------------------------------- packets


def _header(padding_and_count: int, packet_type: int, body_len: int) -> bytes:
    # RFC 3550 §6.4.1: length is in 32-bit words minus one, header included.
    return _HEADER.pack((RTCP_VERSION << 6) | padding_and_count, packet_type, body_len // 4)


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} {value} is not a 32-bit value")


def _check_count(what: str, count: int) -> None:
    if count > _MAX_COUNT:
        raise ValueError(f"{count} {what}; the count field is 5 bits, so at most {_MAX_COUNT}")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1).

    Its layout::

        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
        |                 SSRC_1 (SSRC of first source)                 |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        | fraction lost |       cumulative number of packets lost       |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |           extended highest sequence number received           |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                      interarrival jitter                      |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                         last SR (LSR)                         |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |                   delay since last SR (DLSR)                  |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    Attributes:
        ssrc: the source reported on.
        fraction_lost: lost/expected since the previous report, times 256.
        cumulative_lost: signed 24 bits; negative when duplicates were received.
        extended_highest_seq: wrap-around count in the high 16 bits.
        jitter: interarrival jitter in timestamp units.
        last_sr: middle 32 bits of the source's last SR timestamp; 0 if none.
        delay_since_last_sr: since that SR, in 1/65536 s; 0 if none.
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    extended_highest_seq: int = 0
    jitter: int = 0
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"fraction lost {self.fraction_lost} is not an 8-bit value")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise ValueError(f"cumulative lost {self.cumulative_lost} is not a signed 24-bit value")
        _check_u32("extended highest sequence number", self.extended_highest_seq)
        _check_u32("jitter", self.jitter)
        _check_u32("LSR", self.last_sr)
        _check_u32("DLSR", self.delay_since_last_sr)

    @classmethod
    def parse(cls, data: bytes | memoryview, offset: int) -> ReportBlock:
        """Read the 24-octet block at ``offset`` (the caller checked the length)."""
        ssrc, lost_word, ext_seq, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24  # two's complement, 24 bits
        return cls(ssrc, lost_word >> 24, cumulative, ext_seq, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost_word = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc,
            lost_word,
            self.extended_highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )


# SR and RR share their tail: report blocks, then a profile-specific extension.


def _check_reports(name: str, reports: tuple[ReportBlock, ...], extension: bytes) -> None:
    _check_count("report blocks", len(reports))
    if len(extension) % 4:
        raise ValueError(f"{name} extension of {len(extension)} octets is not whole words")


def _parse_reports(
    name: str, body: memoryview, offset: int, count: int
) -> tuple[tuple[ReportBlock, ...], bytes]:
    needed = offset + 24 * count
    if len(body) < needed:
        raise ValueError(
            f"{name} with {count} report blocks needs {needed} octets after its header, "
            f"has {len(body)}"
        )
    blocks = tuple(ReportBlock.parse(body, offset + 24 * i) for i in range(count))
    return blocks, bytes(body[needed:])


def _report_packet(
    packet_type: int, head: bytes, reports: tuple[ReportBlock, ...], extension: bytes
) -> bytes:
    body = b"".join([head, *(bytes(block) for block in reports), extension])
    return _header(len(reports), packet_type, len(body)) + body


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR, packet type 200 (RFC 3550 §6.4.1).

    Attributes:
        ssrc: the sender.
        ntp_timestamp: 64-bit wallclock time when the report was sent.
        rtp_timestamp: the same instant in the media's RTP clock.
        packet_count: RTP data packets sent since the session started.
        octet_count: payload octets sent (headers and padding excluded).
        reports: reception report blocks, at most 31.
        extension: profile-specific extension octets, a multiple of 4.
    """

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    packet_type = PT_SR

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        if not 0 <= self.ntp_timestamp <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError(f"NTP timestamp {self.ntp_timestamp} is not a 64-bit value")
        _check_u32("RTP timestamp", self.rtp_timestamp)
        _check_u32("sender's packet count", self.packet_count)
        _check_u32("sender's octet count", self.octet_count)
        _check_reports("SR", self.reports, self.extension)

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> SenderReport:
        """Parse what follows the common header; ``count`` is its RC field."""
        reports, extension = _parse_reports("SR", body, 24, count)
        ssrc, msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        return cls(ssrc, (msw << 32) | lsw, rtp_ts, packets, octets, reports, extension)

    def __bytes__(self) -> bytes:
        head = _SENDER_INFO.pack(
            self.ssrc,
            self.ntp_timestamp >> 32,
            self.ntp_timestamp & 0xFFFFFFFF,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        return _report_packet(PT_SR, head, self.reports, self.extension)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR, packet type 201 (RFC 3550 §6.4.2).

    Attributes:
        ssrc: the reporter.
        reports: reception report blocks, at most 31 (none is valid).
        extension: profile-specific extension octets, a multiple of 4.
    """

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    packet_type = PT_RR

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        _check_reports("RR", self.reports, self.extension)

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> ReceiverReport:
        """Parse what follows the common header; ``count`` is its RC field."""
        reports, extension = _parse_reports("RR", body, 4, count)
        (ssrc,) = _WORD.unpack_from(body)
        return cls(ssrc, reports, extension)

    def __bytes__(self) -> bytes:
        return _report_packet(PT_RR, _WORD.pack(self.ssrc), self.reports, self.extension)


@dataclass(frozen=True, slots=True)
class SdesItem:
    """One SDES item (RFC 3550 §6.5): a type octet, a length octet, up to 255 octets.

    Attributes:
        item_type: 1 CNAME, 2 NAME, 3 EMAIL, 4 PHONE, 5 LOC, 6 TOOL, 7 NOTE, 8 PRIV.
        value: the item's octets (UTF-8 text for all but PRIV).
    """

    item_type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.item_type <= 0xFF:
            raise ValueError(f"SDES item type {self.item_type} is not 1..255 (0 is END)")
        if len(self.value) > 0xFF:
            raise ValueError(f"SDES item of {len(self.value)} octets; the length is one octet")


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The SDES items of one source (RFC 3550 §6.5).

    Attributes:
        ssrc: the source described.
        items: its items, in wire order.
    """

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)

    @property
    def cname(self) -> str | None:
        """The CNAME item's text, or None; invalid UTF-8 is replaced, not fatal."""
        for item in self.items:
            if item.item_type == SDES_CNAME:
                return item.value.decode("utf-8", errors="replace")
        return None

    def __bytes__(self) -> bytes:
        parts = [_WORD.pack(self.ssrc)]
        for item in self.items:
            parts.append(bytes((item.item_type, len(item.value))))
            parts.append(item.value)
        items_len = sum(2 + len(item.value) for item in self.items)
        # RFC 3550 §6.5: the item list ends with at least one null octet, and
        # nulls pad the chunk to the next 32-bit boundary.
        parts.append(bytes(4 - items_len % 4))
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES, packet type 202 (RFC 3550 §6.5).

    Attributes:
        chunks: one per source described, at most 31.
    """

    chunks: tuple[SdesChunk, ...] = ()

    packet_type = PT_SDES

    def __post_init__(self) -> None:
        _check_count("SDES chunks", len(self.chunks))

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> SourceDescription:
        """Parse what follows the common header; ``count`` is its SC field."""
        chunks = []
        offset = 0
        size = len(body)
        for index in range(count):
            if offset + 4 > size:
                raise ValueError(
                    f"SDES declares {count} chunks but chunk {index + 1} starts at octet "
                    f"{offset} of a {size}-octet body"
                )
            (ssrc,) = _WORD.unpack_from(body, offset)
            offset += 4
            items = []
            while True:
                if offset >= size:
                    raise ValueError(f"SDES chunk for SSRC {ssrc:#010x} has no END item")
                item_type = body[offset]
                if item_type == SDES_END:
                    # RFC 3550 §6.5: the END octet and the nulls up to the next
                    # 32-bit boundary close the chunk.
                    offset = (offset + 4) & ~3
                    break
                if offset + 2 > size:
                    raise ValueError(
                        f"SDES item of type {item_type} at octet {offset} has no length octet"
                    )
                length = body[offset + 1]
                end = offset + 2 + length
                if end > size:
                    raise ValueError(
                        f"SDES item of type {item_type} at octet {offset} claims {length} "
                        f"octets but only {size - offset - 2} remain"
                    )
                items.append(SdesItem(item_type, bytes(body[offset + 2 : end])))
                offset = end
            chunks.append(SdesChunk(ssrc, tuple(items)))
        if offset > size:
            raise ValueError("SDES chunk padding runs past the end of the packet")
        if offset != size:
            raise ValueError(
                f"SDES declares {count} chunks, which end at octet {offset} of a {size}-octet body"
            )
        return cls(tuple(chunks))

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(chunk) for chunk in self.chunks)
        return _header(len(self.chunks), PT_SDES, len(body)) + body


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE, packet type 203 (RFC 3550 §6.6).

    Attributes:
        ssrcs: the sources leaving, at most 31.
        reason: why, in UTF-8 up to 255 octets; None when absent.
    """

    ssrcs: tuple[int, ...]
    reason: str | None = None

    packet_type = PT_BYE

    def __post_init__(self) -> None:
        _check_count("SSRCs in BYE", len(self.ssrcs))
        for ssrc in self.ssrcs:
            _check_u32("SSRC", ssrc)
        if self.reason is not None and len(self.reason.encode()) > 0xFF:
            raise ValueError("BYE reason exceeds 255 octets of UTF-8")

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> Bye:
        """Parse what follows the common header; ``count`` is its SC field."""
        needed = 4 * count
        if len(body) < needed:
            raise ValueError(
                f"BYE with {count} SSRCs needs {needed} octets after its header, has {len(body)}"
            )
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason = None
        if len(body) > needed:
            length = body[needed]
            end = needed + 1 + length
            if end > len(body):
                raise ValueError(
                    f"BYE reason claims {length} octets but only {len(body) - needed - 1} remain"
                )
            reason = bytes(body[needed + 1 : end]).decode("utf-8", errors="replace")
        return cls(tuple(ssrcs), reason)

    def __bytes__(self) -> bytes:
        parts = [struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)]
        if self.reason is not None:
            text = self.reason.encode()
            parts.append(bytes((len(text),)) + text)
            # RFC 3550 §6.6: the reason is padded with nulls to a 32-bit boundary.
            parts.append(bytes(-(1 + len(text)) % 4))
        body = b"".join(parts)
        return _header(len(self.ssrcs), PT_BYE, len(body)) + body


@dataclass(frozen=True, slots=True)
class RawRtcpPacket:
    """A packet type this module does not interpret (APP, XR, RTCP feedback...).

    Attributes:
        packet_type: its PT.
        count: the five bits after P (RC, SC or a subtype, by type).
        body: the octets after the common header, padding removed.
    """

    packet_type: int
    count: int
    body: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.packet_type <= 0xFF:
            raise ValueError(f"packet type {self.packet_type} is not an 8-bit value")
        if not 0 <= self.count <= _MAX_COUNT:
            raise ValueError(f"count {self.count} is not a 5-bit value")
        if len(self.body) % 4:
            raise ValueError(f"RTCP body of {len(self.body)} octets is not whole words")

    def __bytes__(self) -> bytes:
        return _header(self.count, self.packet_type, len(self.body)) + self.body


RtcpPacket: TypeAlias = SenderReport | ReceiverReport | SourceDescription | Bye | RawRtcpPacket

_PARSERS: dict[int, Callable[[int, memoryview], RtcpPacket]] = {
    PT_SR: SenderReport.parse_body,
    PT_RR: ReceiverReport.parse_body,
    PT_SDES: SourceDescription.parse_body,
    PT_BYE: Bye.parse_body,
}
_NAMES = {PT_SR: "SR", PT_RR: "RR", PT_SDES: "SDES", PT_BYE: "BYE", PT_APP: "APP"}


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP packet: one UDP datagram.

    The checks are those of RFC 3550 Appendix A.2: every packet has version 2,
    the first is an SR or RR, only the last may be padded, and the length
    fields add up to the datagram's size.

    Args:
        data: the datagram.

    Returns:
        The packets in order.

    Raises:
        ValueError: the datagram is not a valid compound RTCP packet; the
            message names the packet (by index and octet offset) and the fault.
    """
    view = memoryview(data)
    total = len(view)
    if total < 4:
        raise ValueError(f"RTCP datagram of {total} octets is shorter than a 4-octet header")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < total:
        where = f"RTCP packet {len(packets) + 1} at octet {offset}"
        if total - offset < 4:
            raise ValueError(
                f"{total - offset} octets after the last RTCP packet are too few for a header"
                " (RFC 3550 §6.1: the length fields must add up to the datagram)"
            )
        first, packet_type, length_words = _HEADER.unpack_from(view, offset)
        version = first >> 6
        if version != RTCP_VERSION:
            raise ValueError(f"{where}: version {version}, expected {RTCP_VERSION}")
        if not packets and packet_type not in (PT_SR, PT_RR):
            name = _NAMES.get(packet_type, "unknown")
            raise ValueError(
                f"{where}: a compound packet must start with SR (200) or RR (201), "
                f"not type {packet_type} ({name}) (RFC 3550 §6.1)"
            )
        end = offset + 4 * (length_words + 1)
        if end > total:
            raise ValueError(
                f"{where}: length field says {4 * (length_words + 1)} octets but only "
                f"{total - offset} remain (RFC 3550 §6.1: the length fields must add up "
                "to the datagram)"
            )
        body_end = end
        if first & 0x20:
            # RFC 3550 §6.4.1 and A.2: padding belongs only on the last packet,
            # and its last octet counts the padding octets, itself included.
            if end != total:
                raise ValueError(f"{where}: padding bit set on a packet that is not the last")
            padding = view[end - 1]
            if padding == 0 or padding > end - offset - 4:
                raise ValueError(
                    f"{where}: padding count {padding} does not fit the "
                    f"{end - offset - 4} octets after the header"
                )
            body_end = end - padding
        count = first & 0x1F
        body = view[offset + 4 : body_end]
        parse_body = _PARSERS.get(packet_type)
        try:
            if parse_body is None:
                packets.append(RawRtcpPacket(packet_type, count, _whole_words(body)))
            else:
                packets.append(parse_body(count, body))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        offset = end
    return packets


def _whole_words(body: memoryview) -> bytes:
    # A padded packet of unknown type keeps its body up to the padding; round it
    # up so that it still serialises to whole words.
    return bytes(body) + bytes(-len(body) % 4)


# --------------------------------------------------------------- reports


class ReceptionSource(Protocol):
    """Something that can report on a source we receive (``ReceiverStats``)."""

    def next_report_block(self, now_s: float) -> ReportBlock | None:
        """The next report block, or None when there is nothing to report."""


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """What an SR says about the sender (RFC 3550 §6.4.1 "sender info").

    Attributes:
        ntp_timestamp: 64-bit wallclock time of this report.
        rtp_timestamp: the same instant in the RTP clock of the media sent.
        packet_count: RTP data packets sent since the session started.
        octet_count: payload octets sent.
    """

    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int


def build_report(
    ssrc: int,
    cname: str,
    now_s: float,
    sender: SenderInfo | None,
    sources: Iterable[ReceptionSource] = (),
    bye: Bye | None = None,
) -> bytes:
    """One reporting interval's compound RTCP packet (RFC 3550 §6.1).

    An SR when ``sender`` is given (we sent media), else an RR; then an SDES
    with our CNAME, which every compound packet must carry; then ``bye`` if we
    are leaving. More than 31 report blocks continue in further RRs (§6.4.2).

    Args:
        ssrc: our SSRC.
        cname: our canonical name (§6.5.1), at most 255 octets of UTF-8.
        now_s: the clock the sources' ``on_sender_report`` calls used (for DLSR).
        sender: our sender counts; None when we have sent nothing.
        sources: what we receive; each gives one block, or none if it has
            nothing to report. Their A.3 reporting intervals restart.
        bye: a BYE to end the compound packet with.

    Returns:
        The datagram.

    Raises:
        ValueError: a value out of its field's range.
    """
    blocks = [block for source in sources if (block := source.next_report_block(now_s)) is not None]
    first_blocks = tuple(blocks[:_MAX_COUNT])
    packets: list[RtcpPacket] = []
    if sender is not None:
        packets.append(
            SenderReport(
                ssrc,
                sender.ntp_timestamp,
                sender.rtp_timestamp,
                sender.packet_count,
                sender.octet_count,
                first_blocks,
            )
        )
    else:
        packets.append(ReceiverReport(ssrc, first_blocks))
    for start in range(_MAX_COUNT, len(blocks), _MAX_COUNT):
        packets.append(ReceiverReport(ssrc, tuple(blocks[start : start + _MAX_COUNT])))
    packets.append(SourceDescription((SdesChunk(ssrc, (SdesItem(SDES_CNAME, cname.encode()),)),)))
    if bye is not None:
        packets.append(bye)
    return b"".join(bytes(packet) for packet in packets)
