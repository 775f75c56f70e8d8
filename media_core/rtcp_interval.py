"""The RTCP transmission interval: RFC 3550 §6.2, §6.3 and Appendix A.7.

Every participant sends compound RTCP packets at an interval that keeps the
session's RTCP traffic near 5% of the session bandwidth, never more often than
every 5 s (2.5 s before the first report), and randomised so that participants
who started together do not stay in step (§6.2, §6.3.1).

Sizes here are in octets and include the UDP and IP headers (§6.2: "bandwidth
calculations for control and data traffic include lower-layer transport and
network protocols"); bandwidths are in bit/s as SDP's ``b=AS`` gives them, and
converted to the octets per second A.7 works in.

Timer reconsideration (§6.3.6) and reverse reconsideration (§6.3.4) are not
implemented: they damp floods of reports when many members join or leave at
once, and a call leg is a two-member session whose membership changes by one
at most. Neither is the reduced minimum of §6.2 ("360 divided by the session
bandwidth in kilobits/second"), which is a MAY for higher-bandwidth sessions.
"""

from __future__ import annotations

import math
import random

__all__ = [
    "COMPENSATION",
    "DEFAULT_SESSION_BANDWIDTH_BPS",
    "RTCP_BANDWIDTH_FRACTION",
    "RTCP_MIN_INTERVAL_S",
    "SENDER_BANDWIDTH_FRACTION",
    "UDP_IP_OVERHEAD_OCTETS",
    "deterministic_interval_s",
    "randomized_interval_s",
    "rtcp_bandwidth_octets_per_s",
    "updated_avg_rtcp_size",
]

#: RFC 3550 §6.2: RTCP gets 5% of the session bandwidth.
RTCP_BANDWIDTH_FRACTION = 0.05
#: RFC 3550 §6.2: senders share a quarter of the RTCP bandwidth when they are at
#: most a quarter of the members.
SENDER_BANDWIDTH_FRACTION = 0.25
#: RFC 3550 §6.2: the recommended minimum interval, Tmin.
RTCP_MIN_INTERVAL_S = 5.0
#: RFC 3550 §6.3.1: dividing by e - 3/2 compensates for timer reconsideration
#: converging to a bandwidth below the target.
COMPENSATION = math.e - 1.5
#: IPv4 (20) plus UDP (8) headers, counted in every packet size (§6.2).
UDP_IP_OVERHEAD_OCTETS = 28
#: G.711 at 20 ms: (160 payload + 12 RTP + 8 UDP + 20 IPv4) octets, 50 times a
#: second, is 80 kbit/s; the 64 kbit/s of payload plus its headers.
DEFAULT_SESSION_BANDWIDTH_BPS = 80_000


def rtcp_bandwidth_octets_per_s(session_bandwidth_bps: float) -> float:
    """The RTCP bandwidth of the whole session, in octets per second (§6.2).

    Args:
        session_bandwidth_bps: the session bandwidth, headers included, in bit/s.

    Returns:
        5% of it, in octets per second (A.7's ``rtcp_bw``).

    Raises:
        ValueError: a bandwidth that is not positive.
    """
    if not session_bandwidth_bps > 0:
        raise ValueError(f"session bandwidth must be positive, not {session_bandwidth_bps}")
    return session_bandwidth_bps * RTCP_BANDWIDTH_FRACTION / 8


def deterministic_interval_s(
    *,
    members: int,
    senders: int,
    we_sent: bool,
    avg_rtcp_size_octets: float,
    initial: bool,
    session_bandwidth_bps: float = DEFAULT_SESSION_BANDWIDTH_BPS,
) -> float:
    """The calculated interval Td before randomisation (§6.3.1, A.7 ``rtcp_interval``).

    Args:
        members: participants in the session, ourselves included (at least 1).
        senders: those that sent RTP since the second-last report, ourselves
            included when ``we_sent``.
        we_sent: whether we sent RTP since our second-last report.
        avg_rtcp_size_octets: the average compound packet size, headers included.
        initial: True before we have sent our first report.
        session_bandwidth_bps: the session bandwidth, headers included, in bit/s.

    Returns:
        Seconds: the share of the RTCP bandwidth ours to use, but at least
        ``RTCP_MIN_INTERVAL_S`` (half of it when ``initial``).

    Raises:
        ValueError: no members, a negative sender count, or a bandwidth that
            is not positive.
    """
    if members < 1:
        raise ValueError(f"a session has at least one member (us), not {members}")
    if senders < 0:
        raise ValueError(f"senders cannot be negative: {senders}")
    rtcp_bw = rtcp_bandwidth_octets_per_s(session_bandwidth_bps)
    # RFC 3550 §6.2: "the initial RTCP packet may be sent after half the minimum".
    min_interval_s = RTCP_MIN_INTERVAL_S / 2 if initial else RTCP_MIN_INTERVAL_S
    n = members
    if senders <= members * SENDER_BANDWIDTH_FRACTION:
        # RFC 3550 §6.3.1: when senders are few, they get a quarter of the RTCP
        # bandwidth between them and the receivers the rest, so that a new
        # receiver quickly learns every sender's CNAME.
        if we_sent:
            rtcp_bw *= SENDER_BANDWIDTH_FRACTION
            n = senders
        else:
            rtcp_bw *= 1 - SENDER_BANDWIDTH_FRACTION
            n = members - senders
    interval_s = avg_rtcp_size_octets * n / rtcp_bw
    return max(interval_s, min_interval_s)


def randomized_interval_s(deterministic_s: float, rng: random.Random) -> float:
    """The interval actually waited: Td times U[0.5, 1.5), over e - 3/2 (§6.3.1).

    Args:
        deterministic_s: Td from ``deterministic_interval_s``.
        rng: the randomness; inject a seeded one to make schedules repeatable.

    Returns:
        Seconds, in ``[0.5, 1.5) * deterministic_s / COMPENSATION``.
    """
    # RFC 3550 §6.3.1: "a random value uniformly distributed between 0.5 and 1.5
    # times the calculated interval", so reports from members that started
    # together spread out; then divided by e - 3/2 (A.7).
    return deterministic_s * (rng.random() + 0.5) / COMPENSATION


def updated_avg_rtcp_size(avg_octets: float, datagram_octets: int) -> float:
    """The average RTCP packet size after one more packet (§6.3.3).

    Args:
        avg_octets: the average so far, UDP/IP headers included.
        datagram_octets: the compound packet sent or received, as the UDP
            payload: ``UDP_IP_OVERHEAD_OCTETS`` is added here.

    Returns:
        ``1/16 * packet_size + 15/16 * avg_octets``.
    """
    # RFC 3550 §6.3.3: avg_rtcp_size = (1/16) * packet_size + (15/16) * avg_rtcp_size
    return (datagram_octets + UDP_IP_OVERHEAD_OCTETS) / 16 + avg_octets * 15 / 16
