"""DTMF key presses detected in the audio, for trunks that send tones in-band (sans-IO).

Per 20 ms tick, ``InbandDtmfDetector.detect_many`` takes the decoded frames of
many calls as one ``(calls, samples)`` int16 array and one ``InbandDtmfState``
per call. ``media_core.goertzel`` measures the 8 DTMF frequencies (and the
column tones' second harmonics) in 20 ms windows every 10 ms, for all calls in
one kernel call, and keeps a window only if it passes ITU-T Q.24-style checks:

- each tone above ``min_tone_dbm0``;
- twist: the row (low) tone at most ``max_normal_twist_db`` above the column
  (high) tone, and at most ``max_reverse_twist_db`` below it;
- in each group, the strongest tone ``min_dominance_db`` above the others;
- the two tones carry ``min_tone_fraction`` of the window's power (noise and
  speech spread theirs);
- the window's two halves within ``max_half_imbalance_db`` of each other: a
  window half filled by a tone edge is not evidence of the tone;
- the column tone's second harmonic ``min_harmonic_rejection_db`` below it
  (voiced speech is harmonic).

The per-call state then debounces (Q.24's duration and interruption rules): a
key counts once consecutive windows of it span ``min_on_ms``, and ends after
windows without it span ``min_off_ms``, so 40 ms tones are reported and 20 ms
tones are not at any alignment, and a pause of 50 ms or more always separates
two presses of the same key. A different key that becomes stable ends the
previous one at once. Each press is reported once, at its end, as a
``DtmfDigit`` (``start_rtp_ts`` None); ``InbandDtmfState.active_digit`` tells
a key that is still held.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from media_core import goertzel
from media_core.dtmf import DtmfDigit

__all__ = ["InbandDtmfConfig", "InbandDtmfDetector", "InbandDtmfState", "tone_power_dbm0"]

# G.711: a full-scale sine on the 16-bit scale is +3.14 dBm0 (A-law; µ-law +3.17).
_FULL_SCALE_SINE_DBM0 = 3.14
_FULL_SCALE = 32768.0


def _ratio(db: float) -> float:
    return float(10.0 ** (db / 10.0))


def tone_power_dbm0(amplitude: float) -> float:
    """The level of a sine of peak ``amplitude`` on the 16-bit scale, in dBm0."""
    return float(20.0 * np.log10(amplitude / _FULL_SCALE)) + _FULL_SCALE_SINE_DBM0


@dataclass(frozen=True, slots=True)
class InbandDtmfConfig:
    """Thresholds of the in-band detector; the defaults follow ITU-T Q.24.

    Attributes:
        min_tone_dbm0: each tone's lowest accepted level.
        max_normal_twist_db: how far the column tone may be below the row tone.
        max_reverse_twist_db: how far the column tone may be above the row tone.
        min_dominance_db: how far the strongest tone of each group must stand
            above the group's other frequencies.
        min_tone_fraction: the share of the window's power the two tones must hold.
        max_half_imbalance_db: the largest power difference between the two
            10 ms halves of a window.
        min_harmonic_rejection_db: how far the column tone's second harmonic
            must be below it; None skips the check.
        min_on_ms: the stable detection that makes a key press.
        min_off_ms: the absence that ends one.
    """

    min_tone_dbm0: float = -36.0
    max_normal_twist_db: float = 8.0
    max_reverse_twist_db: float = 4.0
    min_dominance_db: float = 8.0
    min_tone_fraction: float = 0.6
    max_half_imbalance_db: float = 6.0
    min_harmonic_rejection_db: float | None = 20.0
    min_on_ms: int = 40
    min_off_ms: int = 40

    def __post_init__(self) -> None:
        if not 0.0 < self.min_tone_fraction <= 1.0:
            raise ValueError(f"min_tone_fraction {self.min_tone_fraction} is not in (0, 1]")
        for name in ("max_normal_twist_db", "max_reverse_twist_db", "max_half_imbalance_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.min_on_ms <= 0 or self.min_off_ms <= 0:
            raise ValueError("min_on_ms and min_off_ms must be positive")

    def limits(self) -> NDArray[np.float64]:
        """The thresholds as the linear power ratios ``goertzel.classify_windows`` takes."""
        tone_amplitude = _FULL_SCALE * 10.0 ** ((self.min_tone_dbm0 - _FULL_SCALE_SINE_DBM0) / 20)
        harmonic = self.min_harmonic_rejection_db
        return np.array(
            [
                tone_amplitude**2 / 2,  # powers read A**2 / 2 for a sine of peak A
                _ratio(self.max_normal_twist_db),
                _ratio(self.max_reverse_twist_db),
                _ratio(self.min_dominance_db),
                self.min_tone_fraction,
                _ratio(self.max_half_imbalance_db),
                0.0 if harmonic is None else _ratio(harmonic),
            ]
        )


class InbandDtmfState:
    """One call's detector state: the analysis tail and the debouncer.

    Create it with ``InbandDtmfDetector.new_state``; it belongs to that
    detector and to one call at a time.
    """

    __slots__ = (
        "_active",
        "_active_start_s",
        "_candidate",
        "_candidate_hits",
        "_candidate_start_s",
        "_last_hit_end_s",
        "_misses",
        "hop_s",
        "min_off_s",
        "min_on_s",
        "tail",
    )

    def __init__(
        self, hop_s: float = 0.01, min_on_s: float = 0.04, min_off_s: float = 0.04
    ) -> None:
        """Start idle.

        Args:
            hop_s: the step between windows (10 ms), half a window.
            min_on_s: ``InbandDtmfConfig.min_on_ms`` in seconds.
            min_off_s: ``InbandDtmfConfig.min_off_ms`` in seconds.
        """
        self.hop_s = hop_s
        self.min_on_s = min_on_s
        self.min_off_s = min_off_s
        self.tail: NDArray[np.float64] = np.zeros(goertzel.TAIL_SIZE)
        self._candidate = -1  # a key seen in the latest windows, not yet stable
        self._candidate_hits = 0
        self._candidate_start_s = 0.0
        self._active = -1  # the key held now
        self._active_start_s = 0.0
        self._last_hit_end_s = 0.0
        self._misses = 0

    @property
    def active_digit(self) -> str | None:
        """The key held now, once stable; None otherwise."""
        return goertzel.KEYPAD[self._active] if self._active >= 0 else None

    @property
    def busy(self) -> bool:
        """Whether the debouncer holds a key or a candidate (idle calls are skipped)."""
        return self._active >= 0 or self._candidate >= 0

    def reset(self) -> None:
        """Forget everything, as for a new call."""
        self.tail[:] = 0.0
        self._candidate = self._active = -1
        self._candidate_hits = self._misses = 0

    def flush(self) -> DtmfDigit | None:
        """End the key held now (the call is going away), if any."""
        digit = self._report() if self._active >= 0 else None
        self._active = self._candidate = -1
        self._candidate_hits = self._misses = 0
        return digit

    def window(self, code: int, start_s: float) -> DtmfDigit | None:
        """Take one window's decision, in time order (the detector calls this).

        Args:
            code: ``goertzel.KEYPAD`` index of the window's key, -1 for none.
            start_s: when the 20 ms window starts.

        Returns:
            The key press this window ended, if any.
        """
        hop_s = self.hop_s
        ended = None
        if self._active >= 0:
            if code == self._active:
                self._misses = 0
                self._last_hit_end_s = start_s + 2 * hop_s
                self._candidate = -1
                return None
            self._misses += 1
        if code >= 0:
            if code == self._candidate:
                self._candidate_hits += 1
            else:
                self._candidate, self._candidate_hits, self._candidate_start_s = code, 1, start_s
        else:
            self._candidate, self._candidate_hits = -1, 0
        # n windows in a row, 10 ms apart and 20 ms long, cover (n + 1) hops.
        if self._active >= 0 and (self._misses - 1) * hop_s >= self.min_off_s - 1e-9:
            ended = self._report()
            self._active = -1
        if self._candidate >= 0 and (self._candidate_hits + 1) * hop_s >= self.min_on_s - 1e-9:
            if self._active >= 0:
                ended = self._report()  # a different stable key ends the held one at once
            self._active, self._active_start_s = self._candidate, self._candidate_start_s
            self._last_hit_end_s = start_s + 2 * hop_s
            self._misses = 0
            self._candidate, self._candidate_hits = -1, 0
        return ended

    def _report(self) -> DtmfDigit:
        # A window passes once about 3/4 of it holds the tone, so the hit
        # windows overhang the tone by 0..7.5 ms at each end: take a quarter
        # hop off each, which keeps the estimate within +-5 ms.
        quarter_hop_s = self.hop_s / 4
        start_s = self._active_start_s + quarter_hop_s
        end_s = self._last_hit_end_s - quarter_hop_s
        return DtmfDigit(
            digit=goertzel.KEYPAD[self._active],
            start_rtp_ts=None,
            duration_ms=round((end_s - start_s) * 1000),
            start_s=start_s,
            end_s=end_s,
        )


class InbandDtmfDetector:
    """Detects DTMF in many calls' audio per tick; one instance serves them all.

    Calls whose windows hold no key and whose state is idle cost only their
    share of the kernel call: the debouncer runs for the others alone.
    """

    __slots__ = (
        "_basis",
        "_batch",
        "_busy_rows",
        "_codes",
        "_limits",
        "_rotation",
        "_tails",
        "block_samples",
        "config",
        "hop_s",
        "rate_hz",
    )

    def __init__(self, config: InbandDtmfConfig | None = None, *, rate_hz: int = 8000) -> None:
        """Precompute the analysis for ``rate_hz``.

        Raises:
            ValueError: a rate the analysis does not support (see ``goertzel.block_samples``).
        """
        self.config = config if config is not None else InbandDtmfConfig()
        self.rate_hz = rate_hz
        self.block_samples = goertzel.block_samples(rate_hz)
        self.hop_s = self.block_samples / rate_hz
        self._basis, self._rotation = goertzel.dtmf_basis(rate_hz)
        self._limits = self.config.limits()
        # The last batch's states, and their tails as one array, reused while
        # the same states come in the same order (the usual tick).
        self._batch: list[InbandDtmfState] = []
        self._tails: NDArray[np.float64] = np.zeros((0, goertzel.TAIL_SIZE))
        self._busy_rows: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._codes: NDArray[np.int8] = np.zeros((0, 0), dtype=np.int8)

    def new_state(self) -> InbandDtmfState:
        """A fresh state for a new call, with this detector's timing rules."""
        config = self.config
        return InbandDtmfState(self.hop_s, config.min_on_ms / 1000, config.min_off_ms / 1000)

    def detect_many(
        self,
        frames: NDArray[np.int16],
        states: Sequence[InbandDtmfState],
        frame_start_s: float,
    ) -> list[tuple[int, DtmfDigit]]:
        """Analyse one frame of each call.

        Args:
            frames: ``(calls, samples)`` int16, every call's frame of this tick;
                ``samples`` a multiple of 10 ms (160 for 20 ms at 8 kHz).
            states: one per row of ``frames``, each call's own, each once.
            frame_start_s: when the frames' first sample was taken (the same
                for all calls: they share the tick).

        Returns:
            ``(row, digit)`` for each key press that ended in these frames.

        Raises:
            ValueError: ``frames`` is not 2-D int16, its length not whole
                blocks, or ``states`` does not match its rows.
        """
        if frames.ndim != 2 or frames.dtype != np.int16:
            raise ValueError("frames must be a 2-D int16 array (calls x samples)")
        calls, samples = frames.shape
        if len(states) != calls:
            raise ValueError(f"{len(states)} states for {calls} frames")
        if samples % self.block_samples:
            raise ValueError(
                f"a frame of {samples} samples is not whole {self.block_samples}-sample blocks"
            )
        self._adopt(states)
        blocks = samples // self.block_samples
        if self._codes.shape != (calls, blocks):
            self._codes = np.empty((calls, blocks), dtype=np.int8)
        codes = self._codes
        goertzel.classify_windows(
            frames, self._tails, self._basis, self._rotation, self._limits, codes
        )
        rows = np.flatnonzero((codes >= 0).any(axis=1) | self._busy_rows)
        if len(rows) == 0:
            return []
        hop_s = self.hop_s
        # Window w of this frame starts one hop before block w: it began in the previous frame.
        first_window_s = frame_start_s - hop_s
        ended: list[tuple[int, DtmfDigit]] = []
        for row in rows.tolist():
            state = self._batch[row]
            for window, code in enumerate(codes[row].tolist()):
                digit = state.window(code, first_window_s + window * hop_s)
                if digit is not None:
                    ended.append((row, digit))
            self._busy_rows[row] = state.busy
        return ended

    def detect(
        self, frame: NDArray[np.int16], state: InbandDtmfState, frame_start_s: float
    ) -> list[DtmfDigit]:
        """``detect_many`` for one call's 1-D frame."""
        return [
            digit for _, digit in self.detect_many(frame.reshape(1, -1), [state], frame_start_s)
        ]

    def _adopt(self, states: Sequence[InbandDtmfState]) -> None:
        """Make ``self._tails`` row i the tail of ``states[i]``.

        The tails live in the detector's array while the same states come in
        the same order (the usual tick: one identity check per call); when the
        batch changes, the new one is gathered once.
        """
        batch = self._batch
        if len(states) == len(batch) and all(map(operator.is_, states, batch)):
            return
        # A state's tail is a view of its row while adopted, so this gathers
        # current values, also from states of the previous batch.
        self._batch = list(states)
        self._tails = np.zeros((len(states), goertzel.TAIL_SIZE))
        for row, state in enumerate(states):
            self._tails[row] = state.tail
            state.tail = self._tails[row]
        self._busy_rows = np.array([state.busy for state in states], dtype=bool)
