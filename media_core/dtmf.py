"""DTMF as RFC 4733 telephone-events: the payload, a receiver and a sender (sans-IO).

RFC 4733 §2.3, the payload of a ``telephone-event`` packet::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

All packets of one event carry the RTP timestamp of the event's start and a
duration that grows from packet to packet; the last one has E set and is sent
three times. ``DtmfReceiver`` turns such a packet stream (with loss, repeats and
reordering) into one ``DtmfDigit`` per key press; ``DtmfEventSender`` produces
the packets for one key press, one tick at a time. Neither touches a socket or
a clock: the caller passes RTP fields, arrival times and ``now``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "DTMF_EVENTS",
    "DtmfDigit",
    "DtmfEventSender",
    "DtmfPacket",
    "DtmfReceiver",
    "TelephoneEvent",
    "digit_to_event",
    "event_to_digit",
]

#: RFC 4733 §3.2: DTMF events 0..15 are the digits 0-9, *, #, A-D in this order.
DTMF_EVENTS = "0123456789*#ABCD"
_PAYLOAD = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF
_END_BIT = 0x80
_RESERVED_BIT = 0x40
_VOLUME_MASK = 0x3F
_TIMESTAMP_MOD = 1 << 32


def digit_to_event(digit: str) -> int:
    """The RFC 4733 event code of a DTMF key (``0-9 * # A-D``, letters in either case).

    Raises:
        ValueError: not a DTMF key.
    """
    index = DTMF_EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"{digit!r} is not a DTMF key (0-9, *, #, A-D)")
    return index


def event_to_digit(event: int) -> str | None:
    """The DTMF key of an event code, or None for the other events (flash, tones...)."""
    return DTMF_EVENTS[event] if 0 <= event < len(DTMF_EVENTS) else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One event report (RFC 4733 §2.3).

    Attributes:
        event: the event code, 8 bits (0..15 are DTMF, §3.2).
        end: E, this report ends the event (§2.3.2 / §2.5.1.4).
        volume: the tone's power as ``-dBm0``, 0..63 (§2.3.4: 10 means -10 dBm0).
        duration: time since the event's start, in RTP timestamp units (§2.3.5).
        reserved: R; senders clear it and receivers ignore it (§2.3.3). Kept so
            that ``bytes(TelephoneEvent.parse(data)) == data``.
    """

    event: int
    end: bool = False
    volume: int = 0
    duration: int = 0
    reserved: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 0xFF:
            raise ValueError(f"event {self.event} is not an 8-bit value")
        if not 0 <= self.volume <= _VOLUME_MASK:
            raise ValueError(f"volume {self.volume} is not a 6-bit value (0..63)")
        if not 0 <= self.duration <= _MAX_DURATION:
            raise ValueError(f"duration {self.duration} is not a 16-bit value")

    @property
    def digit(self) -> str | None:
        """The DTMF key, or None when the event is not one."""
        return event_to_digit(self.event)

    @classmethod
    def parse(cls, payload: bytes | bytearray | memoryview) -> TelephoneEvent:
        """Parse the first event report of a payload.

        Further 4-octet blocks (several events in one packet, §2.5.1.5) are not
        read: DTMF keys are sent one at a time.

        Raises:
            ValueError: fewer than the 4 octets of one report.
        """
        if len(payload) < _PAYLOAD.size:
            raise ValueError(
                f"telephone-event payload of {len(payload)} octets is shorter than the "
                f"{_PAYLOAD.size}-octet event report"
            )
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(
            event=event,
            end=bool(flags & _END_BIT),
            volume=flags & _VOLUME_MASK,
            duration=duration,
            reserved=bool(flags & _RESERVED_BIT),
        )

    def __bytes__(self) -> bytes:
        """The 4-octet report."""
        flags = (
            (_END_BIT if self.end else 0) | (_RESERVED_BIT if self.reserved else 0) | self.volume
        )
        return _PAYLOAD.pack(self.event, flags, self.duration)


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """One key press, reported once when it is over.

    Attributes:
        digit: ``0-9``, ``*``, ``#`` or ``A-D``.
        start_rtp_ts: the RTP timestamp of its start (RFC 4733), or None when it
            was detected in the audio.
        duration_ms: how long the key was held.
        start_s: when it started on the caller's clock, in seconds.
        end_s: when it ended: ``start_s + duration_ms / 1000`` up to rounding.
    """

    digit: str
    start_rtp_ts: int | None
    duration_ms: int
    start_s: float
    end_s: float


class DtmfReceiver:
    """Key presses from one RTP stream's telephone-event packets (sans-IO).

    Feed it the packets of the negotiated ``telephone-event`` payload type;
    it reports each event once, at its end: on the first packet with E set, or
    when the end packets are all lost, on the next event or after
    ``end_timeout_s`` without packets (``on_tick``). Reports are keyed by their
    RTP timestamp (§2.5.1.2), so the three end packets, retransmissions and
    late packets of a finished event are dropped. One receiver serves one SSRC:
    start a new one when the SSRC changes.
    """

    __slots__ = (
        "_done_units",
        "_event",
        "_last_arrival_s",
        "_newest_finished",
        "_newest_ts",
        "_segment_ts",
        "_start_s",
        "_start_ts",
        "_units",
        "end_timeout_s",
        "rate_hz",
    )

    def __init__(self, rate_hz: int = 8000, *, end_timeout_s: float = 0.2) -> None:
        """Create a receiver with nothing in progress.

        Args:
            rate_hz: the telephone-event clock (the SDP ``rate``; 8000 by default, §2.4.1).
            end_timeout_s: how long an event may go without packets before it
                is taken as ended with the last duration seen. Senders update
                every 50 ms or every packet time (§2.5.1.2), so 200 ms is
                several lost packets in a row.

        Raises:
            ValueError: a parameter out of range.
        """
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, not {rate_hz}")
        if end_timeout_s <= 0:
            raise ValueError(f"end_timeout_s must be positive, not {end_timeout_s}")
        self.rate_hz = rate_hz
        self.end_timeout_s = end_timeout_s
        self._event: int | None = None  # the event in progress
        self._start_ts = 0  # its first segment's timestamp
        self._segment_ts = 0  # the timestamp of the segment in progress
        self._done_units = 0  # duration of its completed segments
        self._units = 0  # longest duration reported in the current segment
        self._start_s = 0.0
        self._last_arrival_s = 0.0
        self._newest_ts: int | None = None  # the latest segment seen, in progress or not
        self._newest_finished = False

    @property
    def active_digit(self) -> str | None:
        """The key being held now, if any (known before its end is reported)."""
        return None if self._event is None else event_to_digit(self._event)

    @property
    def next_deadline_s(self) -> float | None:
        """When ``on_tick`` would end the event in progress, if there is one."""
        if self._event is None:
            return None
        return self._last_arrival_s + self.end_timeout_s

    def feed(
        self, rtp_timestamp: int, marker: bool, payload: bytes, arrival_s: float
    ) -> list[DtmfDigit]:
        """Take one telephone-event packet.

        Args:
            rtp_timestamp: the packet's RTP timestamp.
            marker: its M bit. Events are told apart by timestamp, not by M,
                which is lost with the first packet.
            payload: the RTP payload.
            arrival_s: when it arrived, on the caller's clock.

        Returns:
            The key presses this packet ended: none, the one it ends, or the
            previous one (whose end packets were lost) and this one.

        Raises:
            ValueError: the payload is not a telephone-event report.
        """
        del marker  # kept in the signature: callers have it, and events need no M (see above)
        report = TelephoneEvent.parse(payload)
        if report.digit is None or report.duration == 0:
            # Not a DTMF key. RFC 4733 §2.3.5: duration 0 is reserved for state
            # events; receivers ignore it for the others.
            return []
        timestamp = rtp_timestamp % _TIMESTAMP_MOD
        newest = self._newest_ts
        if newest is not None:
            if timestamp == newest:
                if self._newest_finished:
                    return []  # §2.5.1.4: the repeated end packets, or a retransmission
                if report.event == self._event:
                    return self._update(report, arrival_s)
            elif self._is_stale(timestamp, newest):
                return []  # a late packet of an event already ended or superseded
            elif self._continues(timestamp, report):
                # RFC 4733 §2.5.2.3: a long event goes on in a new segment.
                self._done_units += (timestamp - self._segment_ts) % _TIMESTAMP_MOD
                self._segment_ts = timestamp
                self._newest_ts = timestamp
                self._units = 0
                return self._update(report, arrival_s)
        reports = [self._finish()] if self._event is not None else []
        self._event = report.event
        self._start_ts = self._segment_ts = self._newest_ts = timestamp
        self._newest_finished = False
        self._done_units = 0
        self._units = 0
        # The report says how long the event has lasted: the first packet seen
        # may not be the first one sent.
        self._start_s = arrival_s - report.duration / self.rate_hz
        reports += self._update(report, arrival_s)
        return reports

    def on_tick(self, now_s: float) -> list[DtmfDigit]:
        """End the event in progress if its packets stopped ``end_timeout_s`` ago.

        Returns:
            The key press so ended, with the last duration seen.
        """
        # The same sum as next_deadline_s, so a tick at the deadline ends the event.
        if self._event is not None and now_s >= self._last_arrival_s + self.end_timeout_s:
            return [self._finish()]
        return []

    def flush(self) -> list[DtmfDigit]:
        """End the event in progress now (the stream is going away)."""
        return [self._finish()] if self._event is not None else []

    def _update(self, report: TelephoneEvent, arrival_s: float) -> list[DtmfDigit]:
        # Reordered updates carry shorter durations: keep the longest.
        self._units = max(self._units, report.duration)
        self._last_arrival_s = arrival_s
        return [self._finish()] if report.end else []

    def _is_stale(self, timestamp: int, newest: int) -> bool:
        # Within ten seconds behind the newest event: late. Further back is a
        # sender that restarted its timestamps, which starts a new history.
        behind = (newest - timestamp) % _TIMESTAMP_MOD
        return 0 < behind <= 10 * self.rate_hz

    def _continues(self, timestamp: int, report: TelephoneEvent) -> bool:
        if self._event is None or report.event != self._event:
            return False
        ahead = (timestamp - self._segment_ts) % _TIMESTAMP_MOD
        # The next segment starts where the previous reached the largest
        # duration (0xFFFF); accept the last duration seen too when it is that
        # long, for senders that count the segment's end from it.
        return ahead == _MAX_DURATION or (ahead == self._units and self._units > 0x8000)

    def _finish(self) -> DtmfDigit:
        event = self._event
        assert event is not None  # callers check; keeps mypy's narrowing
        units = self._done_units + self._units
        digit = DtmfDigit(
            digit=DTMF_EVENTS[event],
            start_rtp_ts=self._start_ts,
            duration_ms=round(units * 1000 / self.rate_hz),
            start_s=self._start_s,
            end_s=self._start_s + units / self.rate_hz,
        )
        self._event = None
        self._newest_finished = True
        return digit


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    """One telephone-event packet to send: the RTP fields the sender decides.

    The caller adds the payload type, sequence number (+1 for every packet,
    repeats included) and SSRC of the audio stream.
    """

    marker: bool
    timestamp: int
    payload: bytes


class DtmfEventSender:
    """The telephone-event packets of one key press, one media tick at a time.

    Every tick the event lasts yields one report whose duration has grown by a
    packet time; the first has M set (§2.5.1.2). The final report, with E and
    the full duration, goes out on three consecutive ticks (§2.5.1.4). An event
    longer than 0xFFFF timestamp units continues in segments that start 0xFFFF
    units apart, each ended by a report of duration 0xFFFF that is also sent
    three times (§2.5.1.3, §2.5.1.4); only the last segment's end has E.

    For a 100 ms key at 20 ms: durations 160, 320, 480, 640 and then 800 with E
    three times, seven packets over seven ticks.
    """

    __slots__ = (
        "_elapsed",
        "_end_sent",
        "_pending_segment_ends",
        "digit",
        "duration_units",
        "end_repeats",
        "event",
        "start_timestamp",
        "step_units",
        "volume",
    )

    def __init__(
        self,
        digit: str,
        duration_ms: int,
        start_timestamp: int,
        *,
        rate_hz: int = 8000,
        ptime_ms: int = 20,
        volume: int = 10,
        end_repeats: int = 3,
    ) -> None:
        """Plan a key press.

        Args:
            digit: ``0-9``, ``*``, ``#`` or ``A-D``.
            duration_ms: how long the key is held; at least 40 ms, the
                shortest tone ITU-T Q.24 receivers must accept (use 50 or more).
            start_timestamp: the RTP timestamp of its start: the audio stream's
                timestamp at the tick the key goes down.
            rate_hz: the telephone-event clock.
            ptime_ms: the tick, one report per tick.
            volume: the tone's power as ``-dBm0`` (10: -10 dBm0).
            end_repeats: how many times the final report is sent.

        Raises:
            ValueError: a parameter out of range.
        """
        event = digit_to_event(digit)
        if duration_ms < 40:
            raise ValueError(f"a key press of {duration_ms} ms is shorter than 40 ms")
        if ptime_ms <= 0 or rate_hz <= 0 or (ptime_ms * rate_hz) % 1000:
            raise ValueError(f"{ptime_ms} ms at {rate_hz} Hz is not a whole number of units")
        if not 0 <= volume <= _VOLUME_MASK:
            raise ValueError(f"volume {volume} is not 0..63")
        if not 0 <= start_timestamp < _TIMESTAMP_MOD:
            raise ValueError(f"timestamp {start_timestamp} is not a 32-bit value")
        if end_repeats < 1:
            raise ValueError(f"end_repeats must be at least 1, not {end_repeats}")
        self.digit = digit.upper()
        self.event = event
        self.start_timestamp = start_timestamp
        self.volume = volume
        self.end_repeats = end_repeats
        self.step_units = ptime_ms * rate_hz // 1000
        self.duration_units = duration_ms * rate_hz // 1000
        self._elapsed = 0  # units covered by the reports sent so far
        self._end_sent = 0
        # Segment ends still to repeat: (segment timestamp, copies left).
        self._pending_segment_ends: list[tuple[int, int]] = []

    @property
    def done(self) -> bool:
        """Whether every packet has been produced."""
        return self._end_sent >= self.end_repeats and not self._pending_segment_ends

    def next_tick(self) -> list[DtmfPacket]:
        """The packets to send at this tick: usually one, none once done.

        A tick where a segment's end is repeated also carries the next
        segment's update, so it returns two packets.
        """
        packets = [
            self._packet(timestamp, _MAX_DURATION, end=False, marker=False)
            for timestamp, _ in self._pending_segment_ends
        ]
        self._pending_segment_ends = [
            (timestamp, left - 1) for timestamp, left in self._pending_segment_ends if left > 1
        ]
        if self._elapsed < self.duration_units:
            first = self._elapsed == 0
            previous_segment = (self._elapsed - 1) // _MAX_DURATION if self._elapsed else 0
            self._elapsed = min(self._elapsed + self.step_units, self.duration_units)
            segment = (self._elapsed - 1) // _MAX_DURATION
            if segment != previous_segment:
                # RFC 4733 §2.5.1.3: the old segment ends at 0xFFFF, sent three times.
                old = self._segment_timestamp(previous_segment)
                packets.append(self._packet(old, _MAX_DURATION, end=False, marker=False))
                if self.end_repeats > 1:
                    self._pending_segment_ends.append((old, self.end_repeats - 1))
            final = self._elapsed == self.duration_units
            packets.append(
                self._packet(
                    self._segment_timestamp(segment),
                    self._elapsed - segment * _MAX_DURATION,
                    end=final,
                    marker=first,
                )
            )
            self._end_sent += final
        elif self._end_sent < self.end_repeats:
            segment = (self._elapsed - 1) // _MAX_DURATION
            packets.append(
                self._packet(
                    self._segment_timestamp(segment),
                    self._elapsed - segment * _MAX_DURATION,
                    end=True,
                    marker=False,
                )
            )
            self._end_sent += 1
        return packets

    def packets(self) -> list[list[DtmfPacket]]:
        """Every remaining tick's packets, in order (mostly for tests and tools)."""
        ticks = []
        while not self.done:
            ticks.append(self.next_tick())
        return ticks

    def _segment_timestamp(self, segment: int) -> int:
        return (self.start_timestamp + segment * _MAX_DURATION) % _TIMESTAMP_MOD

    def _packet(self, timestamp: int, duration: int, *, end: bool, marker: bool) -> DtmfPacket:
        report = TelephoneEvent(self.event, end=end, volume=self.volume, duration=duration)
        return DtmfPacket(marker=marker, timestamp=timestamp, payload=bytes(report))
