"""RFC 4733 telephone-events: the payload, the receiver's loss and repeat handling, the sender.

Packets are scripted as bytes, as a peer sends them: 20 ms apart, 8000 Hz clock,
a 160-unit duration step, the end report three times.
"""

from __future__ import annotations

import pytest

from media_core.dtmf import (
    DTMF_EVENTS,
    DtmfDigit,
    DtmfEventSender,
    DtmfPacket,
    DtmfReceiver,
    TelephoneEvent,
    digit_to_event,
    event_to_digit,
)
from media_core.rtp import RtpPacket

START_TS = 0x1234_0000


def report(event: int, duration: int, *, end: bool = False, volume: int = 10) -> bytes:
    """The 4 octets of an event report, written out by hand (RFC 4733 §2.3)."""
    return bytes([event, (0x80 if end else 0) | volume, duration >> 8, duration & 0xFF])


def press(
    event: int, timestamp: int, arrival_s: float, updates: int, *, ends: int = 3
) -> list[tuple[int, bool, bytes, float]]:
    """A key press as sent: ``updates`` growing reports, then ``ends`` end reports."""
    packets = [
        (timestamp, k == 0, report(event, 160 * (k + 1)), arrival_s + 0.02 * k)
        for k in range(updates)
    ]
    final = 160 * updates
    packets[-1] = (timestamp, updates == 1, report(event, final, end=True), packets[-1][3])
    packets += [
        (timestamp, False, report(event, final, end=True), arrival_s + 0.02 * (updates - 1 + k))
        for k in range(1, ends)
    ]
    return packets


def feed_all(
    receiver: DtmfReceiver, packets: list[tuple[int, bool, bytes, float]]
) -> list[DtmfDigit]:
    digits: list[DtmfDigit] = []
    for timestamp, marker, payload, arrival_s in packets:
        digits += receiver.feed(timestamp, marker, payload, arrival_s)
    return digits


# ------------------------------------------------------------------ payload


def test_the_payload_fields_are_event_e_r_volume_and_duration():
    parsed = TelephoneEvent.parse(b"\x0b\xca\x03\x20")
    assert parsed == TelephoneEvent(event=11, end=True, volume=10, duration=800, reserved=True)
    assert parsed.digit == "#"


def test_a_report_serialises_back_to_the_same_octets():
    for data in (b"\x00\x00\x00\xa0", b"\x0f\xbf\xff\xff", b"\x05\x4a\x01\x40"):
        assert bytes(TelephoneEvent.parse(data)) == data


def test_the_sender_side_clears_r():
    assert bytes(TelephoneEvent(event=1, end=True, volume=10, duration=480)) == b"\x01\x8a\x01\xe0"


@pytest.mark.parametrize("length", [0, 1, 3])
def test_a_payload_shorter_than_four_octets_is_rejected_with_its_length(length: int):
    with pytest.raises(ValueError, match=f"payload of {length} octets is shorter than the 4-octet"):
        TelephoneEvent.parse(b"\x01" * length)


def test_only_the_first_report_of_a_longer_payload_is_read():
    assert TelephoneEvent.parse(report(3, 320) + report(4, 160)).event == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("event", 256, "8-bit"), ("volume", 64, "6-bit"), ("duration", 0x10000, "16-bit")],
)
def test_out_of_range_fields_are_refused(field: str, value: int, message: str):
    with pytest.raises(ValueError, match=message):
        TelephoneEvent(**{"event": 1, field: value})


def test_events_0_to_15_are_the_sixteen_keys_in_rfc_order():
    assert [event_to_digit(code) for code in range(16)] == list("0123456789*#ABCD")
    assert [digit_to_event(key) for key in DTMF_EVENTS] == list(range(16))
    assert digit_to_event("a") == 12
    assert event_to_digit(16) is None  # flash is an event, not a key


@pytest.mark.parametrize("key", ["E", "", "12", " "])
def test_a_non_key_has_no_event_code(key: str):
    with pytest.raises(ValueError, match="is not a DTMF key"):
        digit_to_event(key)


# ------------------------------------------------------------------ receiver


def test_one_press_is_reported_once_despite_the_three_end_packets():
    receiver = DtmfReceiver()
    packets = press(5, START_TS, 10.0, updates=5)
    assert len(packets) == 7
    digits = feed_all(receiver, packets)
    assert len(digits) == 1
    digit = digits[0]
    assert (digit.digit, digit.start_rtp_ts, digit.duration_ms) == ("5", START_TS, 100)
    # The first report (160 units = 20 ms) arrived at 10.0 s: the key went down 20 ms before.
    assert digit.start_s == pytest.approx(10.0 - 0.02)
    assert digit.end_s == pytest.approx(10.08)
    assert receiver.active_digit is None


def test_the_report_comes_with_the_first_end_packet():
    receiver = DtmfReceiver()
    packets = press(1, START_TS, 0.0, updates=3)
    assert feed_all(receiver, packets[:2]) == []
    assert receiver.active_digit == "1"
    assert [d.digit for d in receiver.feed(*packets[2])] == ["1"]
    assert feed_all(receiver, packets[3:]) == []


def test_retransmitted_and_duplicated_packets_are_not_new_presses():
    receiver = DtmfReceiver()
    packets = press(9, START_TS, 0.0, updates=4)
    doubled = [p for packet in packets for p in (packet, packet)]
    digits = feed_all(receiver, doubled + packets[:2])
    assert [(d.digit, d.duration_ms) for d in digits] == [("9", 80)]


def test_a_lost_start_packet_still_gives_the_press_and_its_start_time():
    receiver = DtmfReceiver()
    packets = press(2, START_TS, 5.0, updates=6)[2:]  # the first two (M set) are lost
    assert packets[0][1] is False
    digits = feed_all(receiver, packets)
    assert len(digits) == 1
    assert digits[0].digit == "2"
    assert digits[0].duration_ms == 120
    # The first packet seen said 480 units (60 ms) had gone by at 5.04 s.
    assert digits[0].start_s == pytest.approx(5.04 - 0.06)


def test_a_press_whose_end_packets_are_all_lost_ends_on_the_timeout_with_the_last_duration():
    receiver = DtmfReceiver(end_timeout_s=0.2)
    packets = press(7, START_TS, 1.0, updates=5)[:4]  # 160..640 units; the E packets lost
    assert feed_all(receiver, packets) == []
    last_arrival = packets[-1][3]
    assert receiver.next_deadline_s == pytest.approx(last_arrival + 0.2)
    assert receiver.on_tick(last_arrival + 0.19) == []
    digits = receiver.on_tick(last_arrival + 0.2)
    assert [(d.digit, d.duration_ms) for d in digits] == [("7", 80)]
    assert receiver.on_tick(last_arrival + 1.0) == []
    assert receiver.next_deadline_s is None


def test_a_new_event_ends_one_whose_end_packets_were_lost():
    receiver = DtmfReceiver()
    first = press(4, START_TS, 0.0, updates=5)[:4]
    second = press(4, START_TS + 2000, 0.25, updates=3)  # the same key again
    assert feed_all(receiver, first) == []
    digits = receiver.feed(*second[0])
    assert [(d.digit, d.start_rtp_ts, d.duration_ms) for d in digits] == [("4", START_TS, 80)]
    digits = feed_all(receiver, second[1:])
    assert [(d.digit, d.start_rtp_ts, d.duration_ms) for d in digits] == [
        ("4", START_TS + 2000, 60)
    ]


def test_late_packets_of_an_ended_event_are_dropped():
    receiver = DtmfReceiver()
    first = press(3, START_TS, 0.0, updates=4)
    second = press(8, START_TS + 1600, 0.2, updates=4)
    digits = feed_all(receiver, first + second[:2] + [first[1], first[-1]] + second[2:])
    assert [d.digit for d in digits] == ["3", "8"]


def test_reordered_updates_keep_the_longest_duration():
    receiver = DtmfReceiver()
    packets = press(0, START_TS, 0.0, updates=4)
    packets[1], packets[2] = packets[2], packets[1]
    digits = feed_all(receiver, packets[:3])  # 160, 480, 320: no end yet
    assert digits == []
    assert receiver.on_tick(1.0)[0].duration_ms == 60


def test_zero_duration_reports_are_ignored_for_keys():
    receiver = DtmfReceiver()
    assert receiver.feed(START_TS, True, report(6, 0), 0.0) == []
    assert receiver.active_digit is None


def test_events_that_are_not_keys_are_ignored():
    receiver = DtmfReceiver()
    assert receiver.feed(START_TS, True, report(16, 160, end=True), 0.0) == []  # flash
    assert receiver.active_digit is None


def test_a_long_press_continues_across_duration_segments_as_one_key():
    receiver = DtmfReceiver()
    # RFC 4733 §2.5.1.3: the first segment ends at 0xFFFF, the next starts 0xFFFF later.
    packets = [
        (START_TS, True, report(11, 65440), 0.0),
        (START_TS, False, report(11, 0xFFFF), 0.02),
        (START_TS + 0xFFFF, False, report(11, 65), 0.02),
        (START_TS, False, report(11, 0xFFFF), 0.04),  # the segment end, repeated
        (START_TS + 0xFFFF, False, report(11, 225), 0.04),
        (START_TS + 0xFFFF, False, report(11, 385, end=True), 0.06),
    ]
    digits = feed_all(receiver, packets)
    assert len(digits) == 1
    assert digits[0].digit == "#"
    assert digits[0].start_rtp_ts == START_TS
    assert digits[0].duration_ms == round((0xFFFF + 385) / 8)


def test_the_timestamp_wraps_around():
    receiver = DtmfReceiver()
    first = press(1, 0xFFFF_FF00, 0.0, updates=3)
    second = press(2, 0x0000_0100, 0.2, updates=3)
    digits = feed_all(receiver, first + second)
    assert [(d.digit, d.start_rtp_ts) for d in digits] == [("1", 0xFFFF_FF00), ("2", 0x100)]


def test_flush_reports_a_press_in_progress():
    receiver = DtmfReceiver()
    feed_all(receiver, press(12, START_TS, 0.0, updates=4)[:2])
    assert [d.digit for d in receiver.flush()] == ["A"]
    assert receiver.flush() == []


def test_a_bad_payload_raises_and_leaves_the_receiver_usable():
    receiver = DtmfReceiver()
    with pytest.raises(ValueError, match="shorter than the 4-octet"):
        receiver.feed(START_TS, True, b"\x01\x0a", 0.0)
    assert [d.digit for d in feed_all(receiver, press(1, START_TS, 0.0, updates=3))] == ["1"]


# ------------------------------------------------------------------ sender


def decoded(ticks: list[list[DtmfPacket]]) -> list[list[tuple[bool, int, TelephoneEvent]]]:
    return [[(p.marker, p.timestamp, TelephoneEvent.parse(p.payload)) for p in t] for t in ticks]


def test_the_sender_grows_the_duration_every_tick_and_repeats_the_end_three_times():
    ticks = decoded(DtmfEventSender("5", 100, START_TS).packets())
    assert [len(t) for t in ticks] == [1] * 7
    flat = [packet for tick in ticks for packet in tick]
    assert [(m, e.duration, e.end) for m, _, e in flat] == [
        (True, 160, False),
        (False, 320, False),
        (False, 480, False),
        (False, 640, False),
        (False, 800, True),
        (False, 800, True),
        (False, 800, True),
    ]
    assert {ts for _, ts, _ in flat} == {START_TS}
    assert {(e.event, e.volume, e.reserved) for _, _, e in flat} == {(5, 10, False)}


def test_a_duration_between_ticks_ends_on_the_exact_duration():
    durations = [
        TelephoneEvent.parse(t[0].payload).duration
        for t in DtmfEventSender("#", 50, START_TS).packets()
    ]
    assert durations == [160, 320, 400, 400, 400]


def test_the_sender_is_driven_one_tick_at_a_time_and_then_falls_silent():
    sender = DtmfEventSender("A", 40, START_TS, volume=6)
    assert not sender.done
    first = sender.next_tick()
    assert first[0].marker and TelephoneEvent.parse(first[0].payload).volume == 6
    for _ in range(3):
        assert len(sender.next_tick()) == 1
    assert sender.done
    assert sender.next_tick() == []


def test_presses_shorter_than_40_ms_and_bad_keys_are_refused():
    with pytest.raises(ValueError, match="shorter than 40 ms"):
        DtmfEventSender("1", 30, START_TS)
    with pytest.raises(ValueError, match="not a DTMF key"):
        DtmfEventSender("X", 100, START_TS)
    with pytest.raises(ValueError, match="32-bit"):
        DtmfEventSender("1", 100, 1 << 32)


def test_a_long_press_is_sent_in_segments_0xffff_units_apart():
    sender = DtmfEventSender("0", 8300, START_TS)  # 66400 units > 0xFFFF
    ticks = decoded(sender.packets())
    crossing = next(i for i, t in enumerate(ticks) if len(t) == 2)
    assert [(ts, e.duration, e.end) for _, ts, e in ticks[crossing]] == [
        (START_TS, 0xFFFF, False),
        (START_TS + 0xFFFF, 65600 - 0xFFFF, False),
    ]
    # The segment end is sent three times, on three ticks.
    segment_ends = [
        i for i, t in enumerate(ticks) for _, ts, e in t if ts == START_TS and e.duration == 0xFFFF
    ]
    assert segment_ends == [crossing, crossing + 1, crossing + 2]
    assert [m for t in ticks for m, _, _ in t].count(True) == 1
    last = ticks[-1][-1][2]
    assert last.end and last.duration == 66400 - 0xFFFF


def wire(packet: DtmfPacket, sequence_number: int) -> bytes:
    return bytes(
        RtpPacket(
            payload_type=101,
            sequence_number=sequence_number,
            timestamp=packet.timestamp,
            ssrc=0xD7F,
            payload=packet.payload,
            marker=packet.marker,
        )
    )


def send_keys(keys: str, duration_ms: int, gap_ms: int) -> list[tuple[float, bytes]]:
    """Datagrams, with the tick time they leave at, for keys pressed one after another."""
    datagrams: list[tuple[float, bytes]] = []
    now_s, timestamp, sequence = 0.0, START_TS, 100
    for key in keys:
        sender = DtmfEventSender(key, duration_ms, timestamp)
        while not sender.done:
            for packet in sender.next_tick():
                datagrams.append((now_s, wire(packet, sequence)))
                sequence += 1
            now_s += 0.02
            timestamp += 160
        now_s += gap_ms / 1000
        timestamp += gap_ms * 8
    return datagrams


def test_sender_to_receiver_round_trip_gives_the_keys_and_durations():
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    for arrival_s, datagram in send_keys("123#", 120, 60):
        packet = RtpPacket.parse(datagram)
        digits += receiver.feed(packet.timestamp, packet.marker, packet.payload, arrival_s)
    assert [d.digit for d in digits] == list("123#")
    for digit in digits:
        assert abs(digit.duration_ms - 120) <= 20
        assert digit.end_s - digit.start_s == pytest.approx(digit.duration_ms / 1000)
    # Each key: 120 ms, two more ticks of end repeats, then the 60 ms gap.
    gaps = [b.start_s - a.start_s for a, b in zip(digits, digits[1:], strict=False)]
    assert gaps == pytest.approx([0.12 + 0.04 + 0.06] * 3, abs=0.02)


def test_round_trip_survives_losing_every_first_and_some_end_packets():
    datagrams = send_keys("123#", 120, 60)
    packets = [(t, RtpPacket.parse(d)) for t, d in datagrams]
    lost = set()
    for i, (_, packet) in enumerate(packets):
        if packet.marker:
            lost.add(i)
        if TelephoneEvent.parse(packet.payload).end and i % 2:
            lost.add(i)
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    for i, (arrival_s, packet) in enumerate(packets):
        if i not in lost:
            digits += receiver.feed(packet.timestamp, packet.marker, packet.payload, arrival_s)
    digits += receiver.on_tick(packets[-1][0] + 1.0)
    assert [d.digit for d in digits] == list("123#")
    assert all(abs(d.duration_ms - 120) <= 20 for d in digits)
