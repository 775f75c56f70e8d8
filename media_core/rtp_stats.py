"""RTP reception statistics (RFC 3550 Appendix A.1, A.3, A.8), sans-IO.

``SequenceTracker`` is RFC 3550 A.1 ``update_seq``: it extends the 16-bit
sequence number across wrap-around, holds a new source on probation until it has
sent ``MIN_SEQUENTIAL`` packets in sequence, and restarts after a large jump only
when the next packet confirms it. It also flags duplicates with a bit per recent
sequence number, which A.1 does not do. The jitter buffer uses it to number
packets; ``ReceiverStats`` adds the per-source figures an RTCP report block
carries: cumulative and interval loss (A.3), interarrival jitter (A.8), and the
LSR/DLSR echo of the source's last sender report (§6.4.1).

Both are fed numbers and a clock in seconds; neither does I/O.
"""

from __future__ import annotations

import enum
import math

from media_core.rtcp import ReportBlock, ntp_middle32

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "ReceiverStats",
    "SeqVerdict",
    "SequenceTracker",
    "seq_delta",
    "ts_delta",
]

# RFC 3550 A.1: the constants of update_seq.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
RTP_SEQ_MOD = 1 << 16

# Duplicates are recognised among the last 128 sequence numbers, which covers
# the MAX_MISORDER window that A.1 accepts as reordering.
_SEEN_WINDOW = 128
_SEEN_MASK = (1 << _SEEN_WINDOW) - 1

# RFC 3550 §6.4.1: cumulative lost is a signed 24-bit field; A.3 clamps to it.
_LOST_MAX = 0x7FFFFF
_LOST_MIN = -0x800000


class SeqVerdict(enum.Enum):
    """What the receiver made of one packet's sequence number.

    Attributes:
        ACCEPTED: in sequence, reordered within the window, or after a gap of
            fewer than ``MAX_DROPOUT``; counted and worth playing.
        PROBATION: the source is not yet valid (A.1): fewer than
            ``MIN_SEQUENTIAL`` packets in sequence so far.
        DUPLICATE: this sequence number was already received; counted as
            received (RFC 3550 §6.4.1 says duplicates are), not worth playing.
        JUMPED: a jump of ``MAX_DROPOUT`` or more (or more than
            ``MAX_MISORDER`` back); ignored unless the next packet follows it.
        RESTARTED: the packet after a jump followed it: the sender restarted its
            sequence, and the statistics restarted with it.
        NEW_SOURCE: the packet's SSRC is not the one being tracked; the
            statistics restarted for the new source, which is on probation.
            A caller that must not let a flood of forged SSRCs take over the
            stream can compare ``ReceiverStats.ssrc`` before feeding a packet.
    """

    ACCEPTED = "accepted"
    PROBATION = "probation"
    DUPLICATE = "duplicate"
    JUMPED = "jumped"
    RESTARTED = "restarted"
    NEW_SOURCE = "new_source"


def seq_delta(seq: int, reference: int) -> int:
    """The signed distance from ``reference`` to ``seq`` modulo 2**16, in -32768..32767."""
    return ((seq - reference + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(timestamp: int, reference: int) -> int:
    """The signed distance from ``reference`` to ``timestamp`` modulo 2**32.

    ``reference`` may be extended beyond 32 bits: only its low 32 bits count.
    """
    return ((timestamp - reference + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class SequenceTracker:
    """RFC 3550 A.1 ``update_seq`` for one source, with duplicate detection.

    Attributes:
        max_seq: the highest sequence number seen (16 bits).
        cycles: the count of sequence number wrap-arounds, times 2**16.
        base_seq: the first sequence number of the current run.
        received: packets accepted since the source became valid, duplicates
            included (as RFC 3550 §6.4.1 counts them).
        last_extended: the extended sequence number of the packet most recently
            given to ``update`` (meaningful for ACCEPTED and RESTARTED).
    """

    __slots__ = (
        "bad_seq",
        "base_seq",
        "cycles",
        "last_extended",
        "max_seq",
        "probation",
        "received",
        "seen_mask",
    )

    def __init__(self, seq: int, probation: int = MIN_SEQUENTIAL) -> None:
        """Start tracking a source from its first packet.

        Args:
            seq: the first packet's sequence number.
            probation: in-sequence packets required before the source is valid;
                ``MIN_SEQUENTIAL`` per A.1, or 0 to accept the first packet.
        """
        self.bad_seq = RTP_SEQ_MOD + 1  # A.1: so seq == bad_seq is false
        self.seen_mask = 0
        self.received = 0
        if probation:
            # A.1: "init_seq(s, seq); s->max_seq = seq - 1; s->probation = MIN_SEQUENTIAL",
            # then this first packet goes through update_seq like every other.
            self._init(seq)
            self.max_seq = (seq - 1) & 0xFFFF
            self.probation = probation
            self.update(seq)
        else:
            self._init(seq)
            self.probation = 0
            self.received = 1
        self.last_extended = self.cycles + self.max_seq

    def _init(self, seq: int) -> None:
        # A.1 init_seq; the received_prior/expected_prior of A.3 live in ReceiverStats.
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.seen_mask = 1

    @property
    def extended_max(self) -> int:
        """The extended highest sequence number received (A.3 ``extended_max``)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected since ``base_seq`` (A.3)."""
        return self.cycles + self.max_seq - self.base_seq + 1

    def update(self, seq: int) -> SeqVerdict:
        """Account for one packet's sequence number (A.1 ``update_seq``).

        Args:
            seq: the 16-bit sequence number.

        Returns:
            The verdict; ``last_extended`` then holds the packet's extended
            sequence number when it was ACCEPTED, DUPLICATE or RESTARTED.
        """
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            # A.1: the source is valid once MIN_SEQUENTIAL packets came in sequence.
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init(seq)
                    self.received = 1
                    self.last_extended = seq
                    return SeqVerdict.ACCEPTED
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return SeqVerdict.PROBATION
        verdict = SeqVerdict.ACCEPTED
        if udelta == 0:
            self.received += 1
            self.last_extended = self.cycles + seq
            return SeqVerdict.DUPLICATE
        if udelta < MAX_DROPOUT:
            # A.1: in order, with a permissible gap.
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # the sequence number wrapped
            self.max_seq = seq
            self.seen_mask = ((self.seen_mask << udelta) | 1) & _SEEN_MASK
            self.last_extended = self.cycles + seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            # A.1: a very large jump. Believe it only if the next packet follows it:
            # the other side probably restarted without telling us.
            if seq != self.bad_seq:
                self.bad_seq = (seq + 1) & 0xFFFF
                return SeqVerdict.JUMPED
            self._init(seq)
            self.last_extended = seq
            verdict = SeqVerdict.RESTARTED
        else:
            # A.1: a duplicate or a reordered packet, at most MAX_MISORDER back.
            back = RTP_SEQ_MOD - udelta
            self.last_extended = self.cycles + self.max_seq - back
            bit = 1 << back
            if self.seen_mask & bit:
                verdict = SeqVerdict.DUPLICATE
            else:
                self.seen_mask |= bit
        self.received += 1
        return verdict


class ReceiverStats:
    """What we know about one RTP source we receive from, for its report block.

    Attributes:
        clock_rate_hz: the payload's RTP clock (8000 for G.711).
        ssrc: the source being tracked; None before the first packet.
        packets_received: valid packets, duplicates included (RFC 3550 §6.4.1).
        octets_received: payload octets of those packets.
        duplicates: packets whose sequence number had already been received.
        jitter: the interarrival jitter estimate (A.8), in timestamp units.
        ssrc_changes: times a packet from another SSRC restarted the statistics.
    """

    __slots__ = (
        "_expected_prior",
        "_last_arrival_s",
        "_last_timestamp",
        "_lsr",
        "_lsr_arrival_s",
        "_received_prior",
        "_seq",
        "clock_rate_hz",
        "duplicates",
        "jitter",
        "octets_received",
        "packets_received",
        "ssrc",
        "ssrc_changes",
    )

    def __init__(self, clock_rate_hz: int = 8000) -> None:
        """Track nothing yet.

        Args:
            clock_rate_hz: the RTP timestamp clock of the payload format.

        Raises:
            ValueError: a clock rate that is not positive.
        """
        if clock_rate_hz <= 0:
            raise ValueError(f"clock_rate_hz must be positive, not {clock_rate_hz}")
        self.clock_rate_hz = clock_rate_hz
        self.ssrc: int | None = None
        self.ssrc_changes = 0
        self._restart()

    def _restart(self) -> None:
        self._seq: SequenceTracker | None = None
        self.packets_received = 0
        self.octets_received = 0
        self.duplicates = 0
        self.jitter = 0.0
        self._last_arrival_s: float | None = None
        self._last_timestamp = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._lsr = 0
        self._lsr_arrival_s = 0.0

    # ------------------------------------------------------------- input

    def on_packet(
        self, seq: int, rtp_timestamp: int, arrival_s: float, payload_len: int, *, ssrc: int
    ) -> SeqVerdict:
        """Account for one received RTP data packet.

        Args:
            seq: its 16-bit sequence number.
            rtp_timestamp: its 32-bit RTP timestamp.
            arrival_s: when it arrived, on the caller's clock, in seconds.
            payload_len: its payload octets.
            ssrc: its SSRC; another than ``self.ssrc`` restarts the statistics.

        Returns:
            The verdict on its sequence number (``SeqVerdict``).
        """
        verdict: SeqVerdict
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self.ssrc_changes += 1
            self.ssrc = ssrc
            self._restart()
        tracker = self._seq
        if tracker is None:
            self._seq = SequenceTracker(seq)
            verdict = SeqVerdict.NEW_SOURCE
        else:
            verdict = tracker.update(seq)
        if verdict is SeqVerdict.PROBATION or verdict is SeqVerdict.JUMPED:
            return verdict
        if verdict is SeqVerdict.NEW_SOURCE:
            return verdict
        if verdict is SeqVerdict.RESTARTED:
            # A.1 init_seq resets the A.3 interval baselines along with the counts.
            self._received_prior = 0
            self._expected_prior = 0
            self.packets_received = 0
            self.octets_received = 0
            self._last_arrival_s = None
        self.packets_received += 1
        self.octets_received += payload_len
        if verdict is SeqVerdict.DUPLICATE:
            self.duplicates += 1
            return verdict
        self._update_jitter(rtp_timestamp, arrival_s)
        return verdict

    def _update_jitter(self, rtp_timestamp: int, arrival_s: float) -> None:
        last_arrival_s = self._last_arrival_s
        if last_arrival_s is not None:
            # RFC 3550 §6.4.1: D(i,j) = (Rj - Ri) - (Sj - Si), both in timestamp
            # units; the timestamp difference is taken modulo 2**32 so that a
            # timestamp wrap-around is not a four-billion-unit transit jump.
            sent = ts_delta(rtp_timestamp, self._last_timestamp)
            d = abs((arrival_s - last_arrival_s) * self.clock_rate_hz - sent)
            # RFC 3550 A.8: J += (|D| - J) / 16
            self.jitter += (d - self.jitter) / 16.0
        self._last_arrival_s = arrival_s
        self._last_timestamp = rtp_timestamp

    def on_sender_report(self, ntp_timestamp: int, arrival_s: float) -> None:
        """Remember the source's latest SR, to echo it as LSR/DLSR (RFC 3550 §6.4.1).

        Args:
            ntp_timestamp: the SR's 64-bit NTP timestamp.
            arrival_s: when the SR arrived, on the clock ``next_report_block`` gets.
        """
        self._lsr = ntp_middle32(ntp_timestamp)
        self._lsr_arrival_s = arrival_s

    # ------------------------------------------------------------ output

    @property
    def valid(self) -> bool:
        """Whether the source has passed probation (A.1) and can be reported on."""
        return self._seq is not None and not self._seq.probation

    @property
    def extended_highest_seq(self) -> int:
        """The extended highest sequence number received; 0 before the source is valid."""
        return self._seq.extended_max if self.valid and self._seq is not None else 0

    @property
    def expected(self) -> int:
        """Packets expected since the source became valid (A.3)."""
        return self._seq.expected if self.valid and self._seq is not None else 0

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the 24-bit signed field (A.3).

        Negative when duplicates outnumber losses, as RFC 3550 §6.4.1 allows.
        """
        lost = self.expected - self.packets_received
        return max(_LOST_MIN, min(_LOST_MAX, lost))

    @property
    def jitter_s(self) -> float:
        """The interarrival jitter in seconds."""
        return self.jitter / self.clock_rate_hz

    def next_report_block(self, now_s: float) -> ReportBlock | None:
        """The report block for this source; starts a new A.3 reporting interval.

        Args:
            now_s: the clock ``on_sender_report`` was given, for DLSR.

        Returns:
            The block, or None when no valid source has been heard.
        """
        if self.ssrc is None or not self.valid:
            return None
        # RFC 3550 A.3: fraction lost over the interval since the previous report.
        expected = self.expected
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self.packets_received - self._received_prior
        self._received_prior = self.packets_received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
        if self._lsr:
            # RFC 3550 §6.4.1: DLSR in units of 1/65536 s; 0 when no SR was received.
            dlsr = int(max(0.0, now_s - self._lsr_arrival_s) * 65536) & 0xFFFFFFFF
        else:
            dlsr = 0
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=self.cumulative_lost,
            extended_highest_seq=self.extended_highest_seq & 0xFFFFFFFF,
            jitter=min(math.floor(self.jitter), 0xFFFFFFFF),
            last_sr=self._lsr,
            delay_since_last_sr=dlsr,
        )
