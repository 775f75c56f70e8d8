"""RTP packets, RFC 3550 §5.1: the fixed header, CSRCs, extension, padding, and bad input."""

from __future__ import annotations

import struct

import pytest

from media_core.rtp import RtpExtension, RtpPacket

# V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0xDEADBEEF | SSRC 0x01020304, 4 octets of payload.
PLAIN = bytes.fromhex("80 80 1234 deadbeef 01020304") + b"\xff\xfe\xfd\xfc"


def test_parse_reads_every_fixed_header_field():
    packet = RtpPacket.parse(PLAIN)
    assert packet.version == 2
    assert packet.marker is True
    assert packet.payload_type == 0
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 0xDEADBEEF
    assert packet.ssrc == 0x01020304
    assert packet.payload == b"\xff\xfe\xfd\xfc"
    assert packet.csrcs == ()
    assert packet.extension is None
    assert packet.padding_length == 0


def test_a_plain_packet_round_trips_to_the_same_bytes():
    assert bytes(RtpPacket.parse(PLAIN)) == PLAIN


def test_serialising_sets_version_2_and_packs_marker_with_payload_type():
    packet = RtpPacket(
        payload_type=8, sequence_number=65535, timestamp=2**32 - 1, ssrc=7, payload=b"x"
    )
    data = bytes(packet)
    assert data[0] == 0x80
    assert data[1] == 8
    assert struct.unpack("!HII", data[2:12]) == (65535, 2**32 - 1, 7)
    assert data[12:] == b"x"
    assert bytes(RtpPacket(8, 0, 0, 0, marker=True))[1] == 0x88


def test_csrcs_are_listed_after_the_fixed_header_and_counted_in_cc():
    packet = RtpPacket(0, 1, 2, 3, payload=b"pp", csrcs=(0xAAAAAAAA, 0x0BBBBBBB))
    data = bytes(packet)
    assert data[0] & 0x0F == 2
    assert data[12:20] == bytes.fromhex("aaaaaaaa 0bbbbbbb")
    assert data[20:] == b"pp"
    assert RtpPacket.parse(data) == packet


def test_header_extension_is_parsed_with_its_profile_bits_and_word_count():
    # RFC 3550 §5.3.1: profile-defined 16 bits, then length in 32-bit words.
    data = (
        bytes.fromhex("90 00 0001 00000002 00000003")
        + bytes.fromhex("bede 0002")
        + b"12345678"
        + b"payload"
    )
    packet = RtpPacket.parse(data)
    assert packet.extension == RtpExtension(0xBEDE, b"12345678")
    assert packet.payload == b"payload"
    assert bytes(packet) == data


def test_an_empty_extension_is_four_octets_of_header():
    packet = RtpPacket(0, 1, 2, 3, payload=b"a", extension=RtpExtension(0x1000))
    data = bytes(packet)
    assert data[0] & 0x10
    assert data[12:16] == bytes.fromhex("1000 0000")
    assert RtpPacket.parse(data) == packet


def test_padding_is_stripped_from_the_payload_and_its_length_kept():
    data = bytes.fromhex("a0 00 0001 00000002 00000003") + b"abc" + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.payload == b"abc"
    assert packet.padding_length == 3
    assert bytes(packet) == data


def test_padding_may_fill_everything_after_the_header():
    data = bytes.fromhex("a0 00 0001 00000002 00000003") + b"\x00\x00\x00\x04"
    packet = RtpPacket.parse(data)
    assert packet.payload == b""
    assert packet.padding_length == 4


def test_all_optional_parts_together_round_trip():
    packet = RtpPacket(
        payload_type=96,
        sequence_number=40000,
        timestamp=123456789,
        ssrc=0xCAFEBABE,
        payload=bytes(range(20)),
        marker=True,
        csrcs=(1, 2, 3),
        extension=RtpExtension(0x0100, b"\x01\x02\x03\x04"),
        padding_length=2,
    )
    data = bytes(packet)
    assert len(data) == 12 + 12 + 8 + 20 + 2
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert RtpPacket.parse(data) == packet


def test_parse_accepts_bytearray_and_memoryview():
    assert RtpPacket.parse(bytearray(PLAIN)) == RtpPacket.parse(memoryview(PLAIN))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("length", [0, 1, 11])
def test_shorter_than_the_fixed_header_is_rejected(length: int):
    with pytest.raises(
        ValueError, match=f"RTP packet of {length} octets is shorter than the 12-octet fixed header"
    ):
        RtpPacket.parse(PLAIN[:length])


@pytest.mark.parametrize("version", [0, 1, 3])
def test_versions_other_than_2_are_rejected(version: int):
    data = bytes([(version << 6) | (PLAIN[0] & 0x3F)]) + PLAIN[1:]
    with pytest.raises(ValueError, match=f"RTP version {version}, expected 2"):
        RtpPacket.parse(data)


def test_csrc_count_beyond_the_data_is_rejected():
    data = bytes.fromhex("83 00 0001 00000002 00000003") + b"\x00" * 8  # CC=3 needs 12
    with pytest.raises(ValueError, match="lists 3 CSRCs \\(12 octets\\) but only 8 octets follow"):
        RtpPacket.parse(data)


def test_extension_bit_without_room_for_the_extension_header_is_rejected():
    data = bytes.fromhex("90 00 0001 00000002 00000003") + b"\xbe\xde"
    with pytest.raises(ValueError, match="only 2 octets remain for the 4-octet extension header"):
        RtpPacket.parse(data)


def test_extension_length_beyond_the_data_is_rejected():
    data = bytes.fromhex("90 00 0001 00000002 00000003 bede 0003") + b"\x00" * 8
    with pytest.raises(
        ValueError, match="extension claims 3 words \\(12 octets\\) but only 8 octets"
    ):
        RtpPacket.parse(data)


def test_padding_bit_on_a_packet_that_ends_with_its_header_is_rejected():
    with pytest.raises(ValueError, match="padding bit set but the packet ends with the header"):
        RtpPacket.parse(bytes.fromhex("a0 00 0001 00000002 00000003"))


def test_padding_count_of_zero_is_rejected():
    data = bytes.fromhex("a0 00 0001 00000002 00000003") + b"ab\x00"
    with pytest.raises(ValueError, match="padding count is 0"):
        RtpPacket.parse(data)


def test_padding_count_beyond_the_data_after_the_header_is_rejected():
    data = bytes.fromhex("a1 00 0001 00000002 00000003 00000009") + b"ab\x04"
    with pytest.raises(ValueError, match="padding count 4 exceeds the 3 octets after the header"):
        RtpPacket.parse(data)


def test_every_truncation_of_a_padded_packet_raises_value_error():
    packet = RtpPacket(
        0,
        1,
        2,
        3,
        payload=b"abcd",
        csrcs=(9,),
        extension=RtpExtension(1, b"wxyz"),
        padding_length=4,
    )
    data = bytes(packet)
    assert RtpPacket.parse(data) == packet
    # With P set, every cut either falls in the header or leaves a bad count last.
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            RtpPacket.parse(data[:cut])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"payload_type": 128}, "payload type 128"),
        ({"sequence_number": 65536}, "sequence number 65536"),
        ({"timestamp": -1}, "timestamp -1"),
        ({"ssrc": 2**32}, "SSRC 4294967296"),
        ({"csrcs": tuple(range(16))}, "16 CSRCs"),
        ({"padding_length": 256}, "padding length 256"),
    ],
)
def test_out_of_range_fields_are_refused_at_construction(fields: dict[str, object], message: str):
    values: dict[str, object] = {"payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0}
    values.update(fields)
    with pytest.raises(ValueError, match=message):
        RtpPacket(**values)  # type: ignore[arg-type]


def test_extension_data_must_be_whole_words():
    with pytest.raises(ValueError, match="not a multiple of 4"):
        RtpExtension(1, b"abc")
