"""RTP data packets (RFC 3550 §5.1): parse from and serialise to bytes.

RFC 3550 §5.1, the fixed header::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |            contributing source (CSRC) identifiers             |
    |                             ....                              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Bad input raises ``ValueError`` with a message naming what is wrong; a parser
caller counts and drops such datagrams.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["RTP_VERSION", "RtpExtension", "RtpPacket"]

RTP_VERSION = 2
_FIXED = struct.Struct("!BBHII")
_FIXED_LEN = _FIXED.size  # 12
_EXTENSION_HEADER = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1).

    Attributes:
        profile: the 16 profile-defined bits ("defined by profile").
        data: the extension body, a whole number of 32-bit words.
    """

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile {self.profile} is not a 16-bit value")
        if len(self.data) % 4:
            raise ValueError(f"extension data is {len(self.data)} octets, not a multiple of 4")
        if len(self.data) // 4 > 0xFFFF:
            raise ValueError("extension data exceeds 65535 words")


@dataclass(slots=True)
class RtpPacket:
    """One RTP data packet.

    Attributes:
        payload_type: PT, 7 bits (RFC 3551 §6: 0 is PCMU, 8 is PCMA).
        sequence_number: 16 bits, +1 per packet, wrapping.
        timestamp: 32 bits, in the payload's clock (8000 Hz for G.711), wrapping.
        ssrc: the synchronisation source, 32 bits.
        payload: the media octets, without padding.
        marker: M; for audio, the first packet of a talkspurt (RFC 3551 §4.1).
        csrcs: contributing sources, at most 15.
        extension: the header extension when X is set.
        padding_length: octets of padding after the payload, the last of which
            holds this count (RFC 3550 §5.1 "padding (P)"); 0 means P is clear.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding_length: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"payload type {self.payload_type} is not a 7-bit value")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number {self.sequence_number} is not a 16-bit value")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp {self.timestamp} is not a 32-bit value")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"SSRC {self.ssrc} is not a 32-bit value")
        if len(self.csrcs) > 15:
            raise ValueError(f"{len(self.csrcs)} CSRCs; CC is 4 bits, so at most 15")
        for csrc in self.csrcs:
            if not 0 <= csrc <= 0xFFFFFFFF:
                raise ValueError(f"CSRC {csrc} is not a 32-bit value")
        if not 0 <= self.padding_length <= 0xFF:
            raise ValueError(f"padding length {self.padding_length} does not fit its octet")

    @property
    def version(self) -> int:
        """Always 2: the only version ``parse`` accepts."""
        return RTP_VERSION

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one datagram.

        Args:
            data: the UDP payload.

        Returns:
            The packet; the padding octets themselves are dropped.

        Raises:
            ValueError: the datagram is not a well-formed RTP version 2 packet.
        """
        total = len(data)
        if total < _FIXED_LEN:
            raise ValueError(
                f"RTP packet of {total} octets is shorter than the {_FIXED_LEN}-octet fixed header"
            )
        first, second, sequence_number, timestamp, ssrc = _FIXED.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version {version}, expected {RTP_VERSION}")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F
        offset = _FIXED_LEN
        csrcs: tuple[int, ...] = ()
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > total:
                raise ValueError(
                    f"RTP header lists {csrc_count} CSRCs ({4 * csrc_count} octets) but only "
                    f"{total - offset} octets follow the fixed header"
                )
            csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
            offset = end
        extension = None
        if has_extension:
            # RFC 3550 §5.3.1: 16 profile bits, then the length in 32-bit words
            # not counting this 4-octet extension header.
            if offset + 4 > total:
                raise ValueError(
                    f"RTP extension bit set but only {total - offset} octets remain for the "
                    "4-octet extension header"
                )
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            end = offset + 4 + 4 * words
            if end > total:
                raise ValueError(
                    f"RTP extension claims {words} words ({4 * words} octets) but only "
                    f"{total - offset - 4} octets follow its header"
                )
            extension = RtpExtension(profile, bytes(data[offset + 4 : end]))
            offset = end
        payload_end = total
        padding_length = 0
        if has_padding:
            # RFC 3550 §5.1: the last octet counts the padding, itself included.
            if total == offset:
                raise ValueError("RTP padding bit set but the packet ends with the header")
            padding_length = data[total - 1]
            if padding_length == 0:
                raise ValueError("RTP padding count is 0; it must count at least its own octet")
            if padding_length > total - offset:
                raise ValueError(
                    f"RTP padding count {padding_length} exceeds the {total - offset} octets "
                    "after the header"
                )
            payload_end = total - padding_length
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:payload_end]),
            marker=bool(second & 0x80),
            csrcs=csrcs,
            extension=extension,
            padding_length=padding_length,
        )

    def __bytes__(self) -> bytes:
        """Serialise; padding is zeros followed by the count octet."""
        first = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding_length else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrcs)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [_FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            words = len(self.extension.data) // 4
            parts.append(_EXTENSION_HEADER.pack(self.extension.profile, words))
            parts.append(self.extension.data)
        parts.append(self.payload)
        if self.padding_length:
            parts.append(bytes(self.padding_length - 1) + bytes((self.padding_length,)))
        return b"".join(parts)
