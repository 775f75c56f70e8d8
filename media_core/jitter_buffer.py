"""An adaptive jitter buffer for one received RTP audio stream, sans-IO.

The transport ``put``s each packet as it arrives; the media tick ``get``s one
``Frame`` per packet time and plays it. Playout follows the sender's RTP
timestamps: each packet is played ``delay`` after the moment the least delayed
recent packets would have let it be played, and ``delay`` tracks a target
derived from the measured jitter.

Measuring. Each packet's *transit* is its arrival time minus its timestamp
(in seconds). The *base* is the smallest recent transit: a minimum that may
creep up by 8 ms per second of packets, so that it follows a sender whose
clock is up to 0.8% slow without lagging behind it. A packet's *spread* is its
transit above the base. The target is the 95th percentile of the spreads of a
block of 50 packets plus half a frame, clamped to ``min_delay_ms..max_delay_ms``.
It rises at once when a packet's spread exceeds it (a spike), holds for a
block, then falls by an eighth of the difference per block (slowly).

Adapting. The delay changes only where it is not heard:

* at the start of a talkspurt (after a silence gap, RFC 3551 §4.1 marker), the
  first packet is scheduled at ``target`` afresh, lengthening or shortening
  the silence;
* within a talkspurt, when the delay leaves ``[target, target + 1.25 frames]``,
  by dropping a frame or playing one twice, preferably a quiet one (a
  ``quiet_frame`` test decides; without one any frame will do). After a second
  without a quiet frame, a loud one is used. This is also what absorbs sender
  clock drift: a sender 0.5% fast gains 24,000 samples (150 frames of 20 ms) on
  us in ten minutes, and the buffer drops 150 frames;
* after an underrun (a delay spike), packets that missed their slot while it
  was concealed are still played, once they arrive, if that keeps the delay
  within ``max_delay_ms``.

Telling loss from silence. A slot whose packet is missing while a later packet
is buffered is ``lost`` if sequence numbers are missing before that packet, and
``dtx`` if they are not (the timestamps jumped: the sender stopped sending during
silence). When nothing at all is buffered the buffer cannot yet know which it is:
it reports ``lost`` for up to 60 ms (the concealer has faded out by then) and
``dtx`` after that.

Jumps. Sequence numbers are extended with RFC 3550 A.1 (``SequenceTracker``): a
jump of 3000 or more is believed only when the next packet follows it, and the
buffer then starts over. A timestamp jump (a transit change of more than a
second) is treated the same way, so one packet seconds late is dropped without
disturbing anything, while a sender that really jumped is followed from its
second packet on. An SSRC change is the caller's to notice: it calls ``reset``.

Payloads are opaque; each packet is assumed to carry one ``ptime_ms`` frame.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import NamedTuple

from media_core.rtp_stats import SequenceTracker, SeqVerdict, ts_delta

__all__ = [
    "DTX_FRAME",
    "EMPTY_FRAME",
    "LOST_FRAME",
    "QUIET_DETECTORS",
    "AdaptiveJitterBuffer",
    "Frame",
    "FrameKind",
    "alaw_is_quiet",
    "ulaw_is_quiet",
]


class FrameKind(enum.StrEnum):
    """What ``AdaptiveJitterBuffer.get`` hands the tick for one playout slot.

    Attributes:
        AUDIO: a received payload, to decode and play.
        LOST: the slot's packet is missing: run packet loss concealment.
        DTX: no packet is expected (a silence gap): play comfort noise or silence.
        EMPTY: nothing has been played yet: the stream has not started.
    """

    AUDIO = "audio"
    LOST = "lost"
    DTX = "dtx"
    EMPTY = "empty"


class Frame(NamedTuple):
    """One playout slot's worth of stream.

    A NamedTuple: immutable, as the shared payload-less frames must be, and
    built in a quarter of the time of a frozen dataclass (0.24 vs 0.59 µs),
    which matters at one frame per call per tick.

    Attributes:
        kind: what the slot holds.
        payload: the packet payload for AUDIO, else empty.
        sequence_number: the packet's 16-bit sequence number for AUDIO.
        timestamp: the packet's 32-bit RTP timestamp for AUDIO.
    """

    kind: FrameKind
    payload: bytes = b""
    sequence_number: int | None = None
    timestamp: int | None = None


# The payload-less frames are shared: a lost or silent slot allocates nothing.
LOST_FRAME = Frame(FrameKind.LOST)
DTX_FRAME = Frame(FrameKind.DTX)
EMPTY_FRAME = Frame(FrameKind.EMPTY)


# ------------------------------------------------------------ quiet frames


def _loud_table(xor: int) -> bytes:
    # G.711 codes carry the segment (exponent) in bits 4..6, after µ-law's
    # inversion (xor 0xFF) or A-law's even-bit toggling (xor 0x55). Segments 0-2
    # are below about -31 dBov; the table marks every louder code with 1.
    return bytes(1 if ((code ^ xor) >> 4) & 7 > 2 else 0 for code in range(256))


_ULAW_LOUD = _loud_table(0xFF)
_ALAW_LOUD = _loud_table(0x55)


def ulaw_is_quiet(payload: bytes) -> bool:
    """Whether every µ-law sample of ``payload`` is below about -31 dBov (|x| < 900)."""
    return 1 not in payload.translate(_ULAW_LOUD)


def alaw_is_quiet(payload: bytes) -> bool:
    """Whether every A-law sample of ``payload`` is below about -30 dBov (|x| < 1024)."""
    return 1 not in payload.translate(_ALAW_LOUD)


#: The quiet-frame test for each codec the media tick encodes.
QUIET_DETECTORS: dict[str, Callable[[bytes], bool]] = {
    "PCMU": ulaw_is_quiet,
    "PCMA": alaw_is_quiet,
}


# ------------------------------------------------------------------ buffer

_IDLE = 0  # nothing played yet
_TALKING = 1  # playing a talkspurt: one packet per slot
_SILENT = 2  # between talkspurts: waiting for the next one's scheduled time

_BLOCK = 50  # packets per jitter measurement block (1 s at 20 ms)
_P95_INDEX = math.ceil(0.95 * _BLOCK) - 1
_TARGET_DECAY = 1.0 / 8.0  # share of the excess target shed per block
_MARGIN_FRAMES = 0.5  # added to the measured spread
_DROP_ABOVE_FRAMES = 1.25  # drop a frame when the delay exceeds target + this
_BASE_LEAK_S_PER_S = 0.008  # how fast the base may rise: follows drift up to 0.8%
_EPSILON_S = 1e-6  # float noise in sums of 20 ms steps
_NO_SEQ = -(1 << 62)  # the next sequence number before anything was played
_INF = math.inf


class AdaptiveJitterBuffer:
    """Reorders, times and adapts the playout of one RTP audio stream.

    Counters (packets unless said otherwise):

    Attributes:
        played: frames played from a received payload, once each.
        lost: sequence numbers whose slot passed without the packet.
        late: packets that arrived after their slot had passed.
        duplicates: packets received again.
        dropped_overflow: packets dropped because the buffer was full or the
            delay exceeded ``max_delay_ms``.
        discarded: packets thrown away because the stream's numbering or timing
            jumped (RFC 3550 A.1 jumps and restarts, timestamp discontinuities,
            and the unconfirmed first packet of each).
        concealed: LOST frames returned (the tick ran concealment for each).
        inserted: frames by which the playout was lengthened: played twice,
            silence added at a talkspurt start, or waited for after an underrun.
        dropped_for_drift: frames by which the playout was shortened to lower
            the delay (sender clock drift or a lower target), including silence
            cut at a talkspurt start.
    """

    __slots__ = (
        "_base_s",
        "_block",
        "_block_n",
        "_buffer",
        "_capacity",
        "_conceal_limit",
        "_correction_wait",
        "_discontinuity",
        "_discontinuity_s",
        "_drop_above_s",
        "_far",
        "_force_after",
        "_frame_s",
        "_half",
        "_hold_blocks",
        "_inv_rate",
        "_leak_s",
        "_margin_s",
        "_max_s",
        "_min_s",
        "_next_seq",
        "_play_offset_s",
        "_play_ts",
        "_quiet",
        "_seq",
        "_spf",
        "_state",
        "_stray_transit_s",
        "_target_s",
        "_ts_ref",
        "_underruns",
        "clock_rate_hz",
        "concealed",
        "discarded",
        "dropped_for_drift",
        "dropped_overflow",
        "duplicates",
        "inserted",
        "late",
        "lost",
        "played",
        "ptime_ms",
    )

    def __init__(
        self,
        clock_rate_hz: int = 8000,
        ptime_ms: int = 20,
        min_delay_ms: int = 20,
        max_delay_ms: int = 300,
        initial_delay_ms: int = 40,
        *,
        quiet_frame: Callable[[bytes], bool] | None = None,
        conceal_limit_ms: int = 60,
        force_correction_after_ms: int = 1000,
    ) -> None:
        """Create an empty buffer.

        Args:
            clock_rate_hz: the RTP clock of the payload (8000 for G.711).
            ptime_ms: the audio in each packet, and the interval between ``get``s.
            min_delay_ms: the target never goes below this.
            max_delay_ms: the target never goes above this, nor the delay for long.
            initial_delay_ms: the target before anything has been measured.
            quiet_frame: tells whether a payload is quiet enough to drop or
                repeat unheard (``QUIET_DETECTORS``); None treats every frame so.
            conceal_limit_ms: how long an underrun is reported as LOST before
                the buffer assumes a silence gap.
            force_correction_after_ms: how long a needed delay correction waits
                for a quiet frame before using a loud one.

        Raises:
            ValueError: inconsistent sizes or delays.
        """
        if clock_rate_hz <= 0 or ptime_ms <= 0 or (clock_rate_hz * ptime_ms) % 1000:
            raise ValueError(
                f"{ptime_ms} ms at {clock_rate_hz} Hz is not a whole number of samples"
            )
        if not 0 <= min_delay_ms <= initial_delay_ms <= max_delay_ms:
            raise ValueError(
                f"delays must satisfy 0 <= min ({min_delay_ms}) <= initial ({initial_delay_ms}) "
                f"<= max ({max_delay_ms}) ms"
            )
        self.clock_rate_hz = clock_rate_hz
        self.ptime_ms = ptime_ms
        self._spf = clock_rate_hz * ptime_ms // 1000
        self._half = self._spf // 2
        self._inv_rate = 1.0 / clock_rate_hz
        self._frame_s = ptime_ms / 1000.0
        self._min_s = min_delay_ms / 1000.0
        self._max_s = max_delay_ms / 1000.0
        self._target_s = initial_delay_ms / 1000.0
        self._margin_s = _MARGIN_FRAMES * self._frame_s
        self._drop_above_s = _DROP_ABOVE_FRAMES * self._frame_s
        self._leak_s = _BASE_LEAK_S_PER_S * self._frame_s  # per packet
        # A packet due further ahead than the longest delay cannot belong to
        # the talkspurt being played.
        self._far = self._spf + max_delay_ms * clock_rate_hz // 1000
        # A transit jump this large is a new timeline, not network jitter.
        self._discontinuity_s = max(1.0, 4.0 * self._max_s)
        self._capacity = 2 * math.ceil(max_delay_ms / ptime_ms) + 16
        self._conceal_limit = max(1, conceal_limit_ms // ptime_ms)
        self._force_after = max(1, force_correction_after_ms // ptime_ms)
        self._quiet = quiet_frame
        self._block = [0.0] * _BLOCK
        self.played = 0
        self.lost = 0
        self.late = 0
        self.duplicates = 0
        self.dropped_overflow = 0
        self.discarded = 0
        self.concealed = 0
        self.inserted = 0
        self.dropped_for_drift = 0
        self._buffer: dict[int, tuple[int, bytes, bool]] = {}
        self._seq: SequenceTracker | None = None
        self._ts_ref = 0
        self._state = _IDLE
        self._next_seq = _NO_SEQ
        self._play_ts = 0
        self._play_offset_s = 0.0
        self._underruns = 0
        self._correction_wait = 0
        self._discontinuity = False
        self._restart_estimator(_INF)

    # ------------------------------------------------------------ state

    @property
    def delay_ms(self) -> float:
        """The current playout delay: how long the least delayed packets wait.

        It is the delay of the frame played last; 0 before anything played.
        """
        if self._state == _IDLE:
            return 0.0
        return (self._play_offset_s - self._base_s) * 1000.0

    @property
    def target_delay_ms(self) -> float:
        """The delay the buffer steers towards, from the measured jitter."""
        return self._target_s * 1000.0

    @property
    def buffered(self) -> int:
        """Packets waiting to be played."""
        return len(self._buffer)

    @property
    def talking(self) -> bool:
        """Whether a talkspurt is being played (rather than silence or nothing)."""
        return self._state == _TALKING

    def reset(self) -> None:
        """Start over for a new source (an SSRC change): forget packets and timing.

        The target delay and the counters are kept: the network path is the same.
        """
        self.discarded += len(self._buffer)
        self._buffer.clear()
        self._seq = None
        self._state = _IDLE
        self._next_seq = _NO_SEQ
        self._underruns = 0
        self._correction_wait = 0
        self._discontinuity = False
        self._restart_estimator(_INF)

    def _restart_estimator(self, transit_s: float) -> None:
        self._base_s = transit_s
        self._stray_transit_s = _INF
        self._block_n = 0
        self._hold_blocks = 0

    # ------------------------------------------------------------- input

    def put(
        self, seq: int, rtp_timestamp: int, payload: bytes, marker: bool, arrival_s: float
    ) -> bool:
        """Take a packet that arrived.

        Args:
            seq: its 16-bit sequence number.
            rtp_timestamp: its 32-bit RTP timestamp.
            payload: its payload, one frame of ``ptime_ms``.
            marker: its M bit: the first packet of a talkspurt (RFC 3551 §4.1).
            arrival_s: when it arrived, on the clock ``get`` is given.

        Returns:
            Whether it was buffered (False: duplicate, late or discarded).
        """
        tracker = self._seq
        if tracker is None:
            tracker = self._seq = SequenceTracker(seq, probation=0)
            ext_ts = rtp_timestamp
        else:
            verdict = tracker.update(seq)
            if verdict is not SeqVerdict.ACCEPTED:
                if verdict is SeqVerdict.DUPLICATE:
                    self.duplicates += 1
                    return False
                if verdict is SeqVerdict.JUMPED:
                    # RFC 3550 A.1: a big jump counts only once the next packet follows it.
                    self.discarded += 1
                    return False
                # RESTARTED: the sender renumbered its packets; what is buffered
                # belongs to the old numbering.
                self._flush_for_new_timeline()
            # The timestamp is extended relative to the last one, across its wrap-around.
            ext_ts = self._ts_ref + ts_delta(rtp_timestamp, self._ts_ref)
        self._ts_ref = ext_ts
        # Late packets are measured too: they are what the target must grow to cover.
        on_timeline = self._measure(arrival_s - ext_ts * self._inv_rate)
        ext_seq = tracker.last_extended
        if ext_seq < self._next_seq:
            self.late += 1
            return False
        if not on_timeline:
            self.discarded += 1
            return False
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            oldest = min(buffer)
            if oldest > ext_seq:
                self.dropped_overflow += 1
                return False
            del buffer[oldest]
            self.dropped_overflow += 1
        buffer[ext_seq] = (ext_ts, payload, marker)
        return True

    def _flush_for_new_timeline(self) -> None:
        self.discarded += len(self._buffer)
        self._buffer.clear()
        self._next_seq = _NO_SEQ
        if self._state == _TALKING:
            self._state = _SILENT
        self._discontinuity = self._state != _IDLE

    def _measure(self, transit_s: float) -> bool:
        """Update the base transit and the target delay with one packet's transit.

        Returns:
            False for a packet off the timeline that no second packet confirms
            yet: a stray, to be dropped without disturbing anything.
        """
        base_s = self._base_s
        if abs(transit_s - base_s) > self._discontinuity_s:
            if base_s != _INF:
                # As RFC 3550 A.1 treats a sequence jump: believe that the
                # sender's timestamps jumped only when the next packet agrees;
                # a lone packet seconds late must not flush the buffer.
                unconfirmed = abs(transit_s - self._stray_transit_s) > self._max_s
                self._stray_transit_s = transit_s
                if unconfirmed:
                    return False
                # A new timeline: it says nothing about jitter, and packets of
                # the old one cannot be scheduled against it.
                self._flush_for_new_timeline()
            self._restart_estimator(transit_s)
            return True
        self._stray_transit_s = _INF
        # A leaky minimum: it falls to any lower transit at once and rises by
        # at most the leak per packet, which lets it follow a slow sender's
        # rising transit; a plain windowed minimum would lag by the window.
        base_s += self._leak_s
        if transit_s < base_s:
            base_s = transit_s
        self._base_s = base_s
        spread_s = transit_s - base_s
        if spread_s > self._target_s:
            # A spike: this packet would have been late. Grow at once, and hold
            # through the next whole block before shrinking.
            self._target_s = min(self._max_s, spread_s + self._margin_s)
            self._hold_blocks = 2
        block = self._block
        n = self._block_n
        block[n] = spread_s
        n += 1
        if n < _BLOCK:
            self._block_n = n
            return True
        p95_s = sorted(block)[_P95_INDEX]
        block_target_s = min(self._max_s, max(self._min_s, p95_s + self._margin_s))
        target_s = self._target_s
        if block_target_s >= target_s:
            self._target_s = block_target_s
        elif self._hold_blocks:
            self._hold_blocks -= 1
        else:
            # Shrink slowly: a spike is likely to come back.
            self._target_s = target_s - (target_s - block_target_s) * _TARGET_DECAY
        self._block_n = 0
        return True

    # ------------------------------------------------------------ output

    def get(self, now_s: float) -> Frame:
        """The frame for this playout slot; call once per ``ptime_ms``.

        Args:
            now_s: the tick's time, on the clock ``put`` is given.

        Returns:
            AUDIO with a payload, LOST (conceal), DTX (silence gap) or EMPTY
            (not started). The payload-less kinds are shared instances.
        """
        state = self._state
        if state == _TALKING:
            # The common case inline: the next packet is here, due in this slot,
            # and the delay within its band. It is what _get_talking, _steer and
            # _play would do, at ~0.9 instead of ~1.5 µs per call (measured).
            seq = self._next_seq
            entry = self._buffer.get(seq)
            if entry is not None and not self._discontinuity:
                ts = entry[0]
                if ts == self._play_ts:
                    offset_s = now_s - ts * self._inv_rate
                    excess_s = offset_s - self._base_s - self._target_s
                    if -_EPSILON_S <= excess_s <= self._drop_above_s + _EPSILON_S:
                        del self._buffer[seq]
                        self._next_seq = seq + 1
                        self._play_ts = ts + self._spf
                        self._play_offset_s = offset_s
                        self._underruns = 0
                        self._correction_wait = 0
                        self.played += 1
                        return Frame(FrameKind.AUDIO, entry[1], seq & 0xFFFF, ts & 0xFFFFFFFF)
            frame = self._get_talking(now_s)
            if frame is not None:
                return frame
        elif not self._buffer:
            if state == _SILENT:
                self._play_ts += self._spf
                return DTX_FRAME
            return EMPTY_FRAME
        return self._get_between_talkspurts(now_s)

    def _get_between_talkspurts(self, now_s: float) -> Frame:
        """IDLE or SILENT: start the next talkspurt once its first packet is due."""
        buffer = self._buffer
        while buffer:
            next_seq = self._next_seq
            seq = next_seq if next_seq in buffer else min(buffer)
            ts, payload, _ = buffer[seq]
            # The delay this packet would get if played now; it is due at the target.
            delay_s = now_s - ts * self._inv_rate - self._base_s
            if delay_s < self._target_s - _EPSILON_S:
                break
            if delay_s > self._max_s + _EPSILON_S:
                # It would be played later than the longest delay allows.
                del buffer[seq]
                self.late += 1
                self._next_seq = seq + 1
                continue
            if self._state == _SILENT:
                if not self._discontinuity:
                    # The silence was lengthened or shortened by this many
                    # frames relative to the previous talkspurt's timing.
                    shift = (self._play_ts - ts) / self._spf
                    if shift > 0:
                        self.inserted += round(shift)
                    else:
                        self.dropped_for_drift += round(-shift)
                if next_seq != _NO_SEQ and seq > next_seq:
                    self.lost += seq - next_seq
            self._discontinuity = False
            self._state = _TALKING
            self._correction_wait = 0
            return self._play(seq, ts, payload, now_s)
        if self._state == _SILENT:
            self._play_ts += self._spf
            return DTX_FRAME
        return EMPTY_FRAME

    def _get_talking(self, now_s: float) -> Frame | None:
        """TALKING: the slot's frame, or None when a silence gap starts here."""
        if self._discontinuity:
            self._state = _SILENT
            return None
        buffer = self._buffer
        spf = self._spf
        play_ts = self._play_ts
        while True:
            next_seq = self._next_seq
            if next_seq in buffer:
                seq = next_seq
            elif buffer:
                seq = min(buffer)
            else:
                # Underrun: a delay spike, or the talkspurt ended. Conceal, and
                # after conceal_limit frames call it a silence gap.
                self._play_ts = play_ts + spf
                self._underruns += 1
                if self._underruns > self._conceal_limit:
                    self._state = _SILENT
                    return DTX_FRAME
                self.concealed += 1
                return LOST_FRAME
            ts, payload, marker = buffer[seq]
            ahead = ts - play_ts
            if ahead >= self._half:
                # The first buffered packet belongs to a later slot.
                missing = seq - next_seq
                if missing == 0 or ahead > self._far:
                    # The timestamps moved on without a sequence gap: the
                    # sender was silent (DTX). Schedule the next talkspurt anew.
                    self._state = _SILENT
                    return None
                # Packets before it were lost, and this slot was one of them
                # (or several were, while an underrun was being concealed).
                slot_seq = max(next_seq, seq - (ahead + self._half) // spf)
                self.lost += slot_seq + 1 - next_seq
                self._next_seq = slot_seq + 1
                self._play_ts = play_ts + spf
                self._underruns = 0
                self.concealed += 1
                return LOST_FRAME
            if ahead <= -self._half:
                # It missed its slot while an underrun was concealed. Playing it
                # now lengthens the playout, unless that exceeds the longest delay.
                if now_s - ts * self._inv_rate - self._base_s > self._max_s + _EPSILON_S:
                    del buffer[seq]
                    self.late += 1
                    self._next_seq = seq + 1
                    continue
                self.inserted += (self._half - ahead) // spf
            if seq > next_seq:
                self.lost += seq - next_seq
                self._next_seq = seq
            break
        return self._steer(seq, ts, payload, marker, now_s)

    def _steer(self, seq: int, ts: int, payload: bytes, marker: bool, now_s: float) -> Frame:
        """Play the due packet, dropping or repeating a frame if the delay strays."""
        delay_s = now_s - ts * self._inv_rate - self._base_s
        target_s = self._target_s
        if delay_s > target_s + self._drop_above_s + _EPSILON_S:
            # Too much buffered: skip this frame if the next one is here to take its slot.
            after = self._buffer.get(seq + 1)
            if after is not None and after[0] - ts == self._spf:
                overflow = delay_s > self._max_s + self._frame_s
                if overflow or self._may_correct(payload):
                    del self._buffer[seq]
                    if overflow:
                        self.dropped_overflow += 1
                    else:
                        self.dropped_for_drift += 1
                    self._correction_wait = 0
                    return self._play(seq + 1, after[0], after[1], now_s)
        elif delay_s < target_s - _EPSILON_S:
            # Too little buffered: hold this frame back one slot. At a talkspurt
            # start the slot before it is silence anyway; elsewhere play it twice.
            if marker or self._may_correct(payload):
                self.inserted += 1
                self._correction_wait = 0
                self._play_ts = ts
                self._play_offset_s = now_s - ts * self._inv_rate
                if marker:
                    return DTX_FRAME
                return Frame(FrameKind.AUDIO, payload, seq & 0xFFFF, ts & 0xFFFFFFFF)
        else:
            self._correction_wait = 0
        return self._play(seq, ts, payload, now_s)

    def _may_correct(self, payload: bytes) -> bool:
        quiet = self._quiet
        if quiet is None or quiet(payload):
            return True
        self._correction_wait += 1
        return self._correction_wait > self._force_after

    def _play(self, seq: int, ts: int, payload: bytes, now_s: float) -> Frame:
        del self._buffer[seq]
        self._next_seq = seq + 1
        self._play_ts = ts + self._spf
        self._play_offset_s = now_s - ts * self._inv_rate
        self._underruns = 0
        self.played += 1
        return Frame(FrameKind.AUDIO, payload, seq & 0xFFFF, ts & 0xFFFFFFFF)
