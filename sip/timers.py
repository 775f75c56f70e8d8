"""RFC 3261 §17 timers: their values (Table 4), their names, and one heap for all.

The transaction layer runs every timer of every transaction on one ``TimerHeap``;
the shell calls ``on_timer(now)`` at ``next_deadline()``. No transaction owns an
asyncio timer. A timer is re-armed by arming it again and cancelled by forgetting
it; stale heap entries are skipped when they surface (lazy deletion), and the heap
is compacted when they outnumber the live ones.

RFC 3261 Table 4 (the values ``TimerConfig`` derives):

    T1       500 ms          RTT estimate
    T2       4 s             longest retransmit interval, non-INVITE and INVITE responses
    T4       5 s             longest time a message stays in the network
    Timer A  initially T1    INVITE request retransmit, unreliable only       §17.1.1.2
    Timer B  64*T1           INVITE transaction timeout                       §17.1.1.2
    Timer D  > 32 s / 0      wait for response retransmits (unreliable / reliable)
    Timer E  initially T1    non-INVITE request retransmit, unreliable only   §17.1.2.2
    Timer F  64*T1           non-INVITE transaction timeout                   §17.1.2.2
    Timer G  initially T1    INVITE response retransmit, unreliable only      §17.2.1
    Timer H  64*T1           wait for ACK receipt                             §17.2.1
    Timer I  T4 / 0          wait for ACK retransmits                         §17.2.1
    Timer J  64*T1 / 0       wait for non-INVITE request retransmits          §17.2.2
    Timer K  T4 / 0          wait for response retransmits                    §17.1.2.2

RFC 6026 §8.4 and §8.7 add Timer L and Timer M (both 64*T1), which bound the
"Accepted" states. ``RETRANSMIT_2XX`` is the unnamed §13.3.1.4 timer of the UAS
core that retransmits a 2xx to INVITE (T1 doubling up to T2) until the ACK comes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)
# The layer keys timers by (side, transaction id), side being "client" or "server".
TimerKey = tuple[str, str]


class TimerName(Enum):
    """The §17 timers (plus RFC 6026's L and M and the §13.3.1.4 2xx retransmit)."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    RETRANSMIT_2XX = "2xx"

    def __str__(self) -> str:
        return f"Timer {self.value}" if len(self.value) == 1 else "2xx retransmit timer"


# §17.1.1.2, §17.1.2.2, §17.2.1: these retransmit timers only run on unreliable
# transports. The 2xx one is absent on purpose: §13.3.1.4 retransmits the 2xx
# "independent of whatever transport protocols are used", since a UDP hop may
# lie between the UAS and the UAC.
_UNRELIABLE_ONLY = frozenset({TimerName.A, TimerName.E, TimerName.G})


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2, T4 and the §17 timer values derived from them (RFC 3261 Table 4).

    Attributes:
        t1_s: RTT estimate (§17.1.1.1), 500 ms by default.
        t2_s: the longest retransmit interval for non-INVITE requests and INVITE
            responses (§17.1.2.2), 4 s by default.
        t4_s: the longest time a message stays in the network (§17.1.2.2), 5 s.
    """

    t1_s: float = 0.5
    t2_s: float = 4.0
    t4_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.t1_s > 0 or not self.t2_s >= self.t1_s or not self.t4_s >= 0:
            raise ValueError(
                f"need T1 > 0, T2 >= T1, T4 >= 0; got T1={self.t1_s} T2={self.t2_s} T4={self.t4_s}"
            )

    @property
    def timer_b_s(self) -> float:
        """INVITE transaction timeout, 64*T1 (§17.1.1.2)."""
        return 64 * self.t1_s

    def timer_d_s(self, reliable: bool) -> float:
        """Wait for response retransmits in the INVITE client's Completed state.

        §17.1.1.2: "at least 32 seconds for unreliable transports, and a value of
        zero seconds for reliable transports". We use max(32 s, 64*T1) so that it
        also outlasts a server's Timer H when T1 is configured above 500 ms.
        """
        return 0.0 if reliable else max(32.0, 64 * self.t1_s)

    @property
    def timer_f_s(self) -> float:
        """Non-INVITE transaction timeout, 64*T1 (§17.1.2.2)."""
        return 64 * self.t1_s

    @property
    def timer_h_s(self) -> float:
        """Wait for the ACK of a non-2xx final, 64*T1 (§17.2.1)."""
        return 64 * self.t1_s

    def timer_i_s(self, reliable: bool) -> float:
        """Wait for ACK retransmits in Confirmed: T4, zero on reliable transports (§17.2.1)."""
        return 0.0 if reliable else self.t4_s

    def timer_j_s(self, reliable: bool) -> float:
        """Wait for non-INVITE request retransmits: 64*T1, zero on reliable (§17.2.2)."""
        return 0.0 if reliable else 64 * self.t1_s

    def timer_k_s(self, reliable: bool) -> float:
        """Wait for non-INVITE response retransmits: T4, zero on reliable (§17.1.2.2)."""
        return 0.0 if reliable else self.t4_s

    @property
    def timer_l_s(self) -> float:
        """How long the INVITE server stays in Accepted, 64*T1 (RFC 6026 §8.7)."""
        return 64 * self.t1_s

    @property
    def timer_m_s(self) -> float:
        """How long the INVITE client stays in Accepted, 64*T1 (RFC 6026 §8.4)."""
        return 64 * self.t1_s

    def initial_s(self, timer: TimerName, reliable: bool) -> float | None:
        """The value ``timer`` starts with, or None when it does not run on this transport."""
        if reliable and timer in _UNRELIABLE_ONLY:
            return None
        if timer in (TimerName.A, TimerName.E, TimerName.G, TimerName.RETRANSMIT_2XX):
            return self.t1_s
        if timer is TimerName.D:
            return self.timer_d_s(reliable)
        if timer is TimerName.I:
            return self.timer_i_s(reliable)
        if timer is TimerName.J:
            return self.timer_j_s(reliable)
        if timer is TimerName.K:
            return self.timer_k_s(reliable)
        return 64 * self.t1_s  # B, F, H, L, M

    def backoff_s(self, timer: TimerName, previous_s: float) -> float:
        """The next interval of a retransmit timer after one that lasted ``previous_s``.

        §17.1.1.2: Timer A doubles without bound (Timer B ends it at 64*T1).
        §17.1.2.2, §17.2.1, §13.3.1.4: Timers E, G and the 2xx retransmit double
        until they reach T2.
        """
        if timer is TimerName.A:
            return 2 * previous_s
        return min(2 * previous_s, self.t2_s)


# ---------------------------------------------------------------- timer steps
# The state tables name what a transition does to the timers with these records.


@dataclass(frozen=True, slots=True)
class Arm:
    """Start ``timer`` with its initial value (nothing if it does not run here)."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class Disarm:
    """Stop ``timer``."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class Backoff:
    """Re-arm the retransmit ``timer`` that just fired with the next, doubled interval."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class ArmAtT2:
    """Re-arm ``timer`` with T2 (§17.1.2.2: Timer E in the Proceeding state)."""

    timer: TimerName


TimerStep = Arm | Disarm | Backoff | ArmAtT2


class TimerHeap(Generic[KeyT]):
    """Deadlines of every armed timer of every transaction, earliest first.

    A timer is identified by ``(key, name)``; ``key`` names its transaction.
    Arming an armed timer replaces its deadline.
    """

    __slots__ = ("_entries", "_armed", "_sequence")

    def __init__(self) -> None:
        self._entries: list[tuple[float, int, KeyT, TimerName]] = []
        self._armed: dict[tuple[KeyT, TimerName], int] = {}
        self._sequence = itertools.count()

    def arm(self, key: KeyT, timer: TimerName, deadline: float) -> None:
        """Arm (or re-arm) ``timer`` of ``key`` to fire at ``deadline``."""
        sequence = next(self._sequence)
        self._armed[(key, timer)] = sequence
        # The sequence number breaks ties in arming order and keeps the keys,
        # which need not be orderable, out of the comparison.
        heapq.heappush(self._entries, (deadline, sequence, key, timer))
        if len(self._entries) > 64 and len(self._entries) > 2 * len(self._armed):
            self._compact()

    def disarm(self, key: KeyT, timer: TimerName) -> None:
        """Stop ``timer`` of ``key`` (no-op if it is not armed)."""
        self._armed.pop((key, timer), None)

    def disarm_all(self, key: KeyT) -> None:
        """Stop every timer of ``key``."""
        for timer in TimerName:
            self._armed.pop((key, timer), None)

    def is_armed(self, key: KeyT, timer: TimerName) -> bool:
        """True while ``timer`` of ``key`` is pending."""
        return (key, timer) in self._armed

    def next_deadline(self) -> float | None:
        """The earliest pending deadline, or None when nothing is armed."""
        entries = self._entries
        while entries and not self._is_live(entries[0]):
            heapq.heappop(entries)
        return entries[0][0] if entries else None

    def pop_due(self, now: float) -> tuple[KeyT, TimerName] | None:
        """Remove and return the earliest timer due at ``now``, or None."""
        entries = self._entries
        while entries and entries[0][0] <= now:
            entry = heapq.heappop(entries)
            if self._is_live(entry):
                del self._armed[(entry[2], entry[3])]
                return entry[2], entry[3]
        return None

    def __len__(self) -> int:
        return len(self._armed)

    def _is_live(self, entry: tuple[float, int, KeyT, TimerName]) -> bool:
        return self._armed.get((entry[2], entry[3])) == entry[1]

    def _compact(self) -> None:
        self._entries = [entry for entry in self._entries if self._is_live(entry)]
        heapq.heapify(self._entries)


class TransactionTimers(Generic[KeyT]):
    """The timers of one transaction: applies ``TimerStep``s on the shared heap."""

    __slots__ = ("key", "heap", "config", "reliable", "due_now", "_intervals_s")

    def __init__(
        self, key: KeyT, heap: TimerHeap[KeyT], config: TimerConfig, reliable: bool
    ) -> None:
        self.key = key
        self.heap = heap
        self.config = config
        self.reliable = reliable
        # Zero-length timers (D, I, J, K on reliable transports) skip the heap: the
        # transaction fires them itself before its transition returns.
        self.due_now: list[TimerName] = []
        self._intervals_s: dict[TimerName, float] = {}

    def apply(self, step: TimerStep, now: float) -> None:
        """Carry out one timer step of a transition at time ``now``."""
        timer = step.timer
        if isinstance(step, Disarm):
            self.heap.disarm(self.key, timer)
            if timer in self.due_now:
                self.due_now.remove(timer)
            return
        if isinstance(step, Arm):
            interval_s = self.config.initial_s(timer, self.reliable)
            if interval_s is None:
                return  # e.g. Timer A on TCP (§17.1.1.2)
        elif isinstance(step, Backoff):
            interval_s = self.config.backoff_s(timer, self._intervals_s.get(timer, 0.0))
        else:
            interval_s = self.config.t2_s
        self._intervals_s[timer] = interval_s
        if interval_s == 0:
            self.heap.disarm(self.key, timer)
            self.due_now.append(timer)
        else:
            self.heap.arm(self.key, timer, now + interval_s)

    def is_armed(self, timer: TimerName) -> bool:
        """True while ``timer`` is pending."""
        return self.heap.is_armed(self.key, timer)

    def pop_due_now(self) -> TimerName | None:
        """The next zero-length timer that fired during the transition, or None."""
        return self.due_now.pop(0) if self.due_now else None

    def disarm_all(self) -> None:
        """Stop every timer (the transaction is terminated)."""
        self.heap.disarm_all(self.key)
        self.due_now.clear()
