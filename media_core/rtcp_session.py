"""Periodic RTCP for one call leg (RFC 3550 §6): when to report, what to send, what we hear.

``RtcpSession`` is sans-IO. The media tick asks ``due(now_s)`` (one float
compare, so thousands of legs cost nothing between reports), and when it says
yes calls ``build`` with the stream's sender counts and its ``ReceiverStats``
and sends the datagram to the peer's RTCP port; ``build`` schedules the next
report itself, so no leg needs a timer of its own. Datagrams arriving on the
RTCP port go to ``on_rtcp``, which keeps what the peer says about our stream
(loss, jitter, round trip) as attributes. ``bye`` ends the leg (§6.6).

``now_s`` is a monotonic clock in seconds; wallclock (NTP) time, which SRs
carry, is ``now_s + unix_offset_s`` mapped to NTP. Round trips only need that
mapping to be the same for the SR we send and the report that echoes it, so a
fixed offset taken once at start-up is enough.

A call leg is a two-member session: us and the peer. Membership is tracked
that far and no further: there is no member table and no §6.3.5 timeout, and
timer reconsideration is skipped (see ``media_core.rtcp_interval``).
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass

from media_core.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    SenderInfo,
    SenderReport,
    SourceDescription,
    build_report,
    ntp_from_unix,
    parse_compound,
    round_trip_delay_s,
)
from media_core.rtcp_interval import (
    DEFAULT_SESSION_BANDWIDTH_BPS,
    UDP_IP_OVERHEAD_OCTETS,
    deterministic_interval_s,
    randomized_interval_s,
    updated_avg_rtcp_size,
)
from media_core.rtp_stats import ReceiverStats

__all__ = ["RtcpInfo", "RtcpSession"]

_U32 = 0xFFFFFFFF
_MAX_TEXT_OCTETS = 255  # SDES item and BYE reason lengths are one octet


@dataclass(frozen=True, slots=True)
class RtcpInfo:
    """What one received compound RTCP packet told us.

    Attributes:
        remote_ssrc: the SSRC of its first SR or RR; None if every report in
            it came from our own SSRC (a loop, §8.2).
        cname: the peer's CNAME from its SDES, if it carried one.
        sender_report: whether the peer sent an SR (it is sending RTP).
        report_block: the peer's reception report about our stream, if any.
        round_trip_s: the round trip that block revealed; None without one.
        bye: whether the peer said BYE (it is leaving, §6.6).
        bye_reason: the BYE's reason text, if it gave one.
    """

    remote_ssrc: int | None
    cname: str | None
    sender_report: bool
    report_block: ReportBlock | None
    round_trip_s: float | None
    bye: bool
    bye_reason: str | None


def _probable_first_report_octets(cname_octets: int) -> int:
    # RFC 3550 §6.3.2: avg_rtcp_size starts as "the probable size of the first
    # RTCP packet that the application will later construct". Ours: an SR (4
    # header + 24 sender info) with one 24-octet block, then an SDES (4 header +
    # 4 SSRC + CNAME item of 2 + n octets, END and padding to a word), then
    # the UDP/IP headers.
    items = 2 + cname_octets
    sdes = 8 + items + (4 - items % 4)
    return 52 + sdes + UDP_IP_OVERHEAD_OCTETS


def _limit_utf8(text: str, octets: int) -> str:
    encoded = text.encode()
    if len(encoded) <= octets:
        return text
    # Cut on a character boundary: a partial character at the end is dropped.
    return encoded[:octets].decode("utf-8", errors="ignore")


class RtcpSession:
    """The RTCP side of one call leg: schedule, reports out, reports in.

    Attributes:
        ssrc: our SSRC (the RTP stream's).
        cname: our canonical name, sent in every compound packet (§6.5.1).
        clock_rate_hz: our stream's RTP clock, for the peer's jitter figure.
        unix_offset_s: added to ``now_s`` to give Unix time, for NTP timestamps.
        session_bandwidth_bps: the session bandwidth, headers included.
        avg_rtcp_size_octets: the §6.3.3 average of compound packets sent and
            received, UDP/IP headers included.
        initial: True until the first report is built.
        next_due_s: when the next report is due, on the ``now_s`` clock;
            ``math.inf`` once the session is closed.
        last_sent_s: when the last report was built (§6.3 ``tp``); None before.
        closed: True after ``bye``: nothing is due any more.
        remote_ssrc: the peer's SSRC, from the last RTCP it sent us.
        remote_cname: the peer's CNAME.
        remote_report: the latest report block the peer sent about our stream.
        remote_fraction_lost: its fraction lost, as a fraction (0 to 255/256).
        remote_cumulative_lost: its cumulative number of packets lost.
        remote_jitter_ms: its interarrival jitter, in milliseconds.
        round_trip_s: the latest round trip measured (§6.4.1); None before one.
        remote_bye: whether the peer sent a BYE.
        remote_bye_reason: the reason it gave, if any.
        reports_sent: compound packets built (BYE included).
        reports_received: valid compound packets received.
        invalid: received datagrams that were not valid compound RTCP.
    """

    __slots__ = (
        "_packets_sent_at_report",
        "_remote_active",
        "_remote_packets_at_report",
        "_remote_sent_sr",
        "_rng",
        "_senders",
        "_sent_last_interval",
        "avg_rtcp_size_octets",
        "clock_rate_hz",
        "closed",
        "cname",
        "initial",
        "invalid",
        "last_sent_s",
        "next_due_s",
        "remote_bye",
        "remote_bye_reason",
        "remote_cname",
        "remote_cumulative_lost",
        "remote_fraction_lost",
        "remote_jitter_ms",
        "remote_report",
        "remote_ssrc",
        "reports_received",
        "reports_sent",
        "round_trip_s",
        "session_bandwidth_bps",
        "ssrc",
        "unix_offset_s",
    )

    def __init__(
        self,
        ssrc: int,
        cname: str,
        *,
        now_s: float,
        rng: random.Random,
        unix_offset_s: float,
        clock_rate_hz: int = 8000,
        session_bandwidth_bps: float = DEFAULT_SESSION_BANDWIDTH_BPS,
    ) -> None:
        """Start the session and schedule its first report (§6.3.2).

        Args:
            ssrc: our SSRC, the one our RTP carries.
            cname: our canonical name, at most 255 octets of UTF-8.
            now_s: the clock now (the leg starts).
            rng: randomness for the intervals; seed it for repeatable schedules.
            unix_offset_s: Unix time minus ``now_s`` (e.g. ``time.time() -
                time.monotonic()`` taken once).
            clock_rate_hz: the RTP clock of our stream (8000 for G.711).
            session_bandwidth_bps: the session bandwidth, UDP/IP headers
                included, in bit/s; the default is one G.711 20 ms stream.

        Raises:
            ValueError: an SSRC that is not 32 bits, a CNAME too long, or a
                clock rate or bandwidth that is not positive.
        """
        if not 0 <= ssrc <= _U32:
            raise ValueError(f"SSRC {ssrc} is not a 32-bit value")
        cname_octets = len(cname.encode())
        if cname_octets > _MAX_TEXT_OCTETS:
            raise ValueError(f"CNAME of {cname_octets} octets; SDES items hold at most 255")
        if clock_rate_hz <= 0:
            raise ValueError(f"clock_rate_hz must be positive, not {clock_rate_hz}")
        if not session_bandwidth_bps > 0:
            raise ValueError(f"session bandwidth must be positive, not {session_bandwidth_bps}")
        self.ssrc = ssrc
        self.cname = cname
        self.clock_rate_hz = clock_rate_hz
        self.unix_offset_s = unix_offset_s
        self.session_bandwidth_bps = session_bandwidth_bps
        self._rng = rng
        self.avg_rtcp_size_octets = float(_probable_first_report_octets(cname_octets))
        self.initial = True
        self.last_sent_s: float | None = None
        self.closed = False
        self._sent_last_interval = False
        self._packets_sent_at_report = 0
        self._remote_packets_at_report = 0
        self._remote_sent_sr = False
        self._remote_active = False
        self._senders = 0
        self.remote_ssrc: int | None = None
        self.remote_cname: str | None = None
        self.remote_report: ReportBlock | None = None
        self.remote_fraction_lost: float | None = None
        self.remote_cumulative_lost: int | None = None
        self.remote_jitter_ms: float | None = None
        self.round_trip_s: float | None = None
        self.remote_bye = False
        self.remote_bye_reason: str | None = None
        self.reports_sent = 0
        self.reports_received = 0
        self.invalid = 0
        # RFC 3550 §6.3.2: members 1, senders 0, we_sent false, initial true.
        first_s = deterministic_interval_s(
            members=1,
            senders=0,
            we_sent=False,
            avg_rtcp_size_octets=self.avg_rtcp_size_octets,
            initial=True,
            session_bandwidth_bps=session_bandwidth_bps,
        )
        self.next_due_s = now_s + randomized_interval_s(first_s, rng)

    # ------------------------------------------------------------ schedule

    @property
    def members(self) -> int:
        """Us, plus the peer while it is heard from and has not said BYE."""
        return 2 if self._remote_active else 1

    def due(self, now_s: float) -> bool:
        """Whether a report should be built now: one float compare."""
        return now_s >= self.next_due_s

    def _schedule(self, now_s: float, we_sent: bool) -> None:
        # RFC 3550 §6.3.6 (without reconsideration): tp = tc, T computed with
        # initial false, tn = tc + T.
        interval_s = deterministic_interval_s(
            members=self.members,
            senders=min(self._senders, self.members),
            we_sent=we_sent,
            avg_rtcp_size_octets=self.avg_rtcp_size_octets,
            initial=False,
            session_bandwidth_bps=self.session_bandwidth_bps,
        )
        self.next_due_s = now_s + randomized_interval_s(interval_s, self._rng)

    # ------------------------------------------------------------ sending

    def build(
        self,
        now_s: float,
        *,
        packets_sent: int,
        octets_sent: int,
        rtp_timestamp_now: int,
        receiver_stats: ReceiverStats | None = None,
        we_sent_since_last: bool | None = None,
    ) -> bytes:
        """This interval's compound report; schedules the next one.

        An SR if we sent RTP since the last report or in the interval before
        (§6.4), else an RR; with a report block on the stream we receive, if
        ``receiver_stats`` has a valid source; then SDES with our CNAME.

        Args:
            now_s: the clock now; the time ``receiver_stats`` was fed on.
            packets_sent: RTP packets sent since the leg started.
            octets_sent: RTP payload octets sent since the leg started.
            rtp_timestamp_now: the RTP timestamp of this same instant (§6.4.1:
                the SR pairs it with the NTP timestamp), e.g. the timestamp
                of the frame being sent at this tick.
            receiver_stats: what we receive from the peer, or None; its A.3
                reporting interval restarts.
            we_sent_since_last: whether we sent RTP since the last report;
                None to infer it from ``packets_sent`` having grown.

        Returns:
            The datagram for the peer's RTCP port.
        """
        data, we_sent = self._compound(
            now_s,
            (packets_sent, octets_sent, rtp_timestamp_now),
            receiver_stats,
            we_sent_since_last,
            None,
        )
        if not self.closed:
            self._schedule(now_s, we_sent)
        return data

    def bye(
        self,
        now_s: float,
        *,
        reason: str | None = None,
        packets_sent: int | None = None,
        octets_sent: int = 0,
        rtp_timestamp_now: int = 0,
        receiver_stats: ReceiverStats | None = None,
    ) -> bytes | None:
        """The last compound packet of the leg: SR or RR, SDES, BYE (§6.6).

        RFC 3550 §6.3.7 lets a session of fewer than 50 members send its BYE
        at once, so this does not wait for ``next_due_s``. The session is
        closed afterwards: ``due`` is never true again.

        Args:
            now_s: the clock now.
            reason: why we leave; cut to 255 octets of UTF-8.
            packets_sent: RTP packets sent, for a final SR; None leads with an
                RR (which §6.1 allows) but leaves the peer without our totals.
            octets_sent: RTP payload octets sent, with ``packets_sent``.
            rtp_timestamp_now: the RTP timestamp of this instant, with ``packets_sent``.
            receiver_stats: what we received, for a final report block.

        Returns:
            The datagram; None when we never sent RTP or RTCP, since §6.3.7
            says such a participant MUST NOT send a BYE.
        """
        self.closed = True
        self.next_due_s = math.inf
        if self.reports_sent == 0 and not packets_sent:
            return None
        counts = None if packets_sent is None else (packets_sent, octets_sent, rtp_timestamp_now)
        goodbye = Bye(
            (self.ssrc,), None if reason is None else _limit_utf8(reason, _MAX_TEXT_OCTETS)
        )
        data, _ = self._compound(now_s, counts, receiver_stats, None, goodbye)
        return data

    def _compound(
        self,
        now_s: float,
        counts: tuple[int, int, int] | None,
        receiver_stats: ReceiverStats | None,
        we_sent_since_last: bool | None,
        goodbye: Bye | None,
    ) -> tuple[bytes, bool]:
        sender: SenderInfo | None = None
        we_sent = False
        if counts is not None:
            packets_sent, octets_sent, rtp_timestamp_now = counts
            if we_sent_since_last is None:
                we_sent_since_last = packets_sent > self._packets_sent_at_report
            self._packets_sent_at_report = packets_sent
            we_sent = we_sent_since_last
            # RFC 3550 §6.4: an SR "if the site has sent any data packets during
            # the interval since issuing the last report or the previous one".
            if we_sent or self._sent_last_interval:
                # RFC 3550 §6.4.1: the counts wrap modulo 2**32, and the RTP
                # timestamp names the same instant as the NTP timestamp.
                sender = SenderInfo(
                    ntp_timestamp=ntp_from_unix(now_s + self.unix_offset_s),
                    rtp_timestamp=rtp_timestamp_now & _U32,
                    packet_count=packets_sent & _U32,
                    octet_count=octets_sent & _U32,
                )
            self._sent_last_interval = we_sent
        remote_sent = self._remote_sent_sr
        self._remote_sent_sr = False
        sources: tuple[ReceiverStats, ...] = ()
        if receiver_stats is not None:
            sources = (receiver_stats,)
            # ReceiverStats restarts its counts for a new source, so any change
            # (not only growth) means the peer sent RTP this interval.
            received = receiver_stats.packets_received
            if received != self._remote_packets_at_report:
                remote_sent = True
                self._remote_active = True
            self._remote_packets_at_report = received
        self._senders = int(we_sent) + int(remote_sent)
        data = build_report(self.ssrc, self.cname, now_s, sender, sources, goodbye)
        # RFC 3550 §6.3.3: the average covers the packets we send, too.
        self.avg_rtcp_size_octets = updated_avg_rtcp_size(self.avg_rtcp_size_octets, len(data))
        self.reports_sent += 1
        self.last_sent_s = now_s
        self.initial = False
        return data, we_sent

    # ---------------------------------------------------------- receiving

    def on_rtcp(
        self,
        data: bytes | bytearray | memoryview,
        now_s: float,
        receiver_stats: ReceiverStats | None = None,
    ) -> RtcpInfo | None:
        """Take one datagram from the peer's RTCP port; never raises on bad input.

        An SR from the source ``receiver_stats`` tracks is remembered there, to
        be echoed as LSR/DLSR in our next report block. A report block about
        our SSRC updates the ``remote_*`` attributes and, when it echoes one of
        our SRs, ``round_trip_s``. Reports carrying our own SSRC (our packets
        looped back, §8.2) are ignored.

        Args:
            data: the UDP payload.
            now_s: when it arrived, on the clock ``build`` is given.
            receiver_stats: what we receive from the peer, or None.

        Returns:
            What the packet said, or None if it is not valid compound RTCP
            (counted in ``invalid``).
        """
        try:
            packets = parse_compound(data)
        except (ValueError, struct.error):
            self.invalid += 1
            return None
        self.reports_received += 1
        # RFC 3550 §6.3.3: "When an RTCP packet is received", update the average.
        self.avg_rtcp_size_octets = updated_avg_rtcp_size(self.avg_rtcp_size_octets, len(data))
        remote_ssrc: int | None = None
        cname: str | None = None
        sender_report = False
        about_us: ReportBlock | None = None
        round_trip_s: float | None = None
        said_bye = False
        bye_reason: str | None = None
        for packet in packets:
            if isinstance(packet, (SenderReport, ReceiverReport)):
                if packet.ssrc == self.ssrc:
                    continue
                if remote_ssrc is None:
                    remote_ssrc = packet.ssrc
                self._remote_active = True
                if isinstance(packet, SenderReport):
                    sender_report = True
                    self._remote_sent_sr = True
                    # Only the tracked source's SR: our block about it must echo
                    # its LSR, and ReceiverStats forgets it on a change of source.
                    if receiver_stats is not None and receiver_stats.ssrc == packet.ssrc:
                        receiver_stats.on_sender_report(packet.ntp_timestamp, now_s)
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        about_us = block
                        measured = self._take_report_block(block, now_s)
                        if measured is not None:
                            round_trip_s = measured
            elif isinstance(packet, SourceDescription):
                for chunk in packet.chunks:
                    if chunk.ssrc != self.ssrc and chunk.cname is not None:
                        cname = chunk.cname
            elif isinstance(packet, Bye):
                if any(ssrc != self.ssrc for ssrc in packet.ssrcs):
                    said_bye = True
                    bye_reason = packet.reason
        if remote_ssrc is not None:
            self.remote_ssrc = remote_ssrc
        if cname is not None:
            self.remote_cname = cname
        if said_bye:
            # RFC 3550 §6.3.4: a member that sent BYE leaves the member count.
            self._remote_active = False
            self.remote_bye = True
            self.remote_bye_reason = bye_reason
        return RtcpInfo(
            remote_ssrc=remote_ssrc,
            cname=cname,
            sender_report=sender_report,
            report_block=about_us,
            round_trip_s=round_trip_s,
            bye=said_bye,
            bye_reason=bye_reason,
        )

    def _take_report_block(self, block: ReportBlock, now_s: float) -> float | None:
        self.remote_report = block
        self.remote_fraction_lost = block.fraction_lost / 256
        self.remote_cumulative_lost = block.cumulative_lost
        # RFC 3550 §6.4.1: jitter is in timestamp units of the stream reported on: ours.
        self.remote_jitter_ms = block.jitter * 1000 / self.clock_rate_hz
        if not block.last_sr:
            return None  # RFC 3550 §6.4.1: LSR 0, no SR received yet: no round trip
        # RFC 3550 §6.4.1: round trip = A - LSR - DLSR, A on the clock that stamped our SR.
        measured = round_trip_delay_s(
            ntp_from_unix(now_s + self.unix_offset_s), block.last_sr, block.delay_since_last_sr
        )
        if measured is not None:
            self.round_trip_s = measured
        return measured
