"""Sample-rate conversion for int16 PCM: a polyphase windowed-sinc FIR (sans-IO).

The telephone leg runs at 8 kHz, speech recognisers want 16 kHz and Opus works
at 48 kHz. ``Resampler`` converts one stream chunk by chunk, keeping the filter
history between chunks, so 20 ms frames resampled one at a time give exactly the
samples the whole signal would give at once (no clicks at frame edges).
``resample_many`` converts one frame of many calls with a single matrix product;
``resample`` converts a whole signal, delay-compensated, for prompts.

Design: the ratio ``out/in`` is reduced to ``L/M``; the signal is (virtually)
upsampled by ``L``, low-pass filtered and decimated by ``M``, computing only the
output samples that are kept (the polyphase form). The low-pass is a Kaiser-
windowed sinc whose pass band ends at 85 % of the lower rate's Nyquist frequency
(3.4 kHz for 8 kHz, the telephone band's edge) and whose stop band starts at
that Nyquist frequency, ``STOPBAND_ATTENUATION_DB`` down, so nothing folds back
into the output band. The filter is linear-phase: the stream is delayed by
``Resampler.delay_samples`` output samples; ``resample`` removes that delay.

PyAV's ``AudioResampler`` (libswresample) was measured as the alternative: it
keeps state across frames too, but its first frame comes out short (864 of 960
samples for 8 -> 48 kHz, 20 ms frames), it costs about 50 µs per call per frame
with no way to batch calls, and it needs an ``AudioFrame`` per call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PASSBAND_FRACTION",
    "STOPBAND_ATTENUATION_DB",
    "Resampler",
    "resample",
    "resample_many",
]

PASSBAND_FRACTION = 0.85
STOPBAND_ATTENUATION_DB = 60.0

# Larger phase tables mean an unusual ratio (44.1 kHz -> 8 kHz needs ~22k taps);
# past this the ratio is almost certainly a mistake.
_MAX_PROTOTYPE_TAPS = 1 << 20
# Long chunks are cut into blocks whose dense matrix stays about this size
# (8 MiB); a 20 ms frame is never cut.
_BLOCK_MATRIX_ENTRIES = 1 << 20
_MATRIX_CACHE_ENTRIES = 32
_INT16_MIN = -32768
_INT16_MAX = 32767


@dataclass(slots=True, eq=False)
class _Design:
    """The filter for one rate pair, shared by every resampler of that pair."""

    in_hz: int
    out_hz: int
    up: int  # L
    down: int  # M
    taps_per_phase: int  # K: input samples each output sample depends on
    delay_samples: int  # the filter's group delay, in output samples
    phases: NDArray[np.float64]  # (L, K): phases[p, k] = h[p + k L]
    block_samples: int  # longest chunk given one matrix; a multiple of M
    matrices: dict[tuple[int, int], NDArray[np.float64]] = field(default_factory=dict)

    def matrix(self, consumed_mod: int, chunk: int) -> NDArray[np.float64]:
        """The dense map from ``history + chunk`` to the chunk's output samples.

        Input ``history + chunk`` has ``K - 1 + chunk`` samples; the matrix is
        ``(K - 1 + chunk, outputs)``, so a frame of many calls is one product.
        ``consumed_mod`` is how many input samples came before, modulo ``M``:
        it alone fixes which outputs fall due and on which phases.
        """
        key = (consumed_mod, chunk)
        cached = self.matrices.get(key)
        if cached is not None:
            return cached
        up, down, taps = self.up, self.down, self.taps_per_phase
        first = -(-consumed_mod * up // down)  # ceil: the first output not yet produced
        end = -(-(consumed_mod + chunk) * up // down)
        n = np.arange(first, end, dtype=np.int64)
        newest = n * down // up  # the newest input sample output n depends on
        phase = n * down % up
        k = np.arange(taps, dtype=np.int64)
        # Output n = sum_k h[phase + k L] * x[newest - k]; x[i] sits in the buffer
        # at i - consumed_mod + (K - 1), the history coming first.
        rows = (newest - consumed_mod + taps - 1)[:, None] - k[None, :]
        cols = np.broadcast_to(np.arange(len(n))[:, None], rows.shape)
        matrix = np.zeros((taps - 1 + chunk, len(n)), dtype=np.float64)
        matrix[rows, cols] = self.phases[phase]
        matrix.setflags(write=False)
        if len(self.matrices) >= _MATRIX_CACHE_ENTRIES:
            self.matrices.clear()  # odd chunk sizes: start over rather than grow
        self.matrices[key] = matrix
        return matrix


def _design(in_hz: int, out_hz: int) -> _Design:
    for rate in (in_hz, out_hz):
        # Checked before the cache: 8000.0 would otherwise hit the entry for 8000.
        if type(rate) is not int or rate <= 0:
            raise ValueError(f"rates must be positive integers, not {in_hz!r} and {out_hz!r}")
    return _cached_design(in_hz, out_hz)


@lru_cache(maxsize=16)
def _cached_design(in_hz: int, out_hz: int) -> _Design:
    g = math.gcd(in_hz, out_hz)
    up, down = out_hz // g, in_hz // g
    if up == down:
        return _Design(in_hz, out_hz, 1, 1, 1, 0, np.ones((1, 1)), 1 << 30)
    prototype_hz = in_hz * up
    nyquist_hz = min(in_hz, out_hz) / 2
    pass_hz = PASSBAND_FRACTION * nyquist_hz
    transition = 2 * math.pi * (nyquist_hz - pass_hz) / prototype_hz  # rad/sample
    attenuation = STOPBAND_ATTENUATION_DB
    # Kaiser's formulas (Oppenheim & Schafer, 7.6): length and beta for the ripple.
    estimate = math.ceil((attenuation - 7.95) / (2.285 * transition)) + 1
    # An odd length 2 d M + 1 puts the centre on an output sample: delay d.
    delay = max(1, math.ceil((estimate - 1) / (2 * down)))
    length = 2 * delay * down + 1
    taps = -(-length // up)
    if taps * up > _MAX_PROTOTYPE_TAPS:
        raise ValueError(f"{in_hz} Hz -> {out_hz} Hz needs a {taps * up}-tap filter; not supported")
    beta = 0.1102 * (attenuation - 8.7)
    cutoff = (pass_hz + nyquist_hz) / 2 / prototype_hz  # cycles per prototype sample
    centre = (length - 1) / 2
    t = np.arange(length) - centre
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(length, beta)
    h *= up / h.sum()  # unit gain at DC: each of the L phases sums to about 1
    padded = np.zeros(taps * up)
    padded[:length] = h
    phases = np.ascontiguousarray(padded.reshape(taps, up).T)
    # A block of b inputs needs a (b + K) x (b L / M) matrix: about b^2 L / M entries.
    block = max(1, int(math.sqrt(_BLOCK_MATRIX_ENTRIES * down / up)) // down) * down
    return _Design(in_hz, out_hz, up, down, taps, delay, phases, block)


def _to_int16(values: NDArray[np.float64]) -> NDArray[np.int16]:
    # The filter overshoots near full-scale edges: clip rather than wrap around.
    # (In place: the out-of-place np.clip is ~15x slower on this path.)
    rounded = np.rint(values)
    np.clip(rounded, _INT16_MIN, _INT16_MAX, out=rounded)
    return rounded.astype(np.int16)


def _check_pcm(pcm: NDArray[np.int16], ndim: int) -> None:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != ndim:
        raise ValueError(f"expected a {ndim}-D int16 array, not {_describe(pcm)}")


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D {value.dtype} array"
    return type(value).__name__


class Resampler:
    """One stream's rate converter, carrying its filter history across chunks.

    Chunks may have any length; the output of a chunk is every output sample
    whose input has fully arrived, so for 8 -> 16 kHz a 160-sample chunk always
    gives 320 samples, and for 16 -> 8 kHz an odd chunk leaves one sample owed
    to the next chunk. The output lags the input by ``delay_samples``.
    """

    __slots__ = ("_consumed_mod", "_design", "_history", "channels")

    def __init__(self, in_hz: int, out_hz: int, *, channels: int = 1) -> None:
        """Start with silence as the history.

        Args:
            in_hz: the input rate.
            out_hz: the output rate.
            channels: 1 for 1-D chunks; more for ``(channels, samples)`` chunks.

        Raises:
            ValueError: a rate is not a positive integer, the ratio needs an
                unreasonably long filter, or ``channels`` < 1.
        """
        if channels < 1:
            raise ValueError(f"channels must be at least 1, not {channels}")
        self._design = _design(in_hz, out_hz)
        self.channels = channels
        self._history = np.zeros((channels, self._design.taps_per_phase - 1))
        self._consumed_mod = 0

    @property
    def in_hz(self) -> int:
        """The input rate."""
        return self._design.in_hz

    @property
    def out_hz(self) -> int:
        """The output rate."""
        return self._design.out_hz

    @property
    def delay_samples(self) -> int:
        """How many output samples the output lags the input by."""
        return self._design.delay_samples

    @property
    def taps_per_phase(self) -> int:
        """How many input samples each output sample is computed from."""
        return self._design.taps_per_phase

    def output_length(self, chunk_samples: int) -> int:
        """How many samples ``process`` will return for the next chunk of this length."""
        up, down, mod = self._design.up, self._design.down, self._consumed_mod
        return -(-(mod + chunk_samples) * up // down) - -(-mod * up // down)

    def process(self, pcm: NDArray[np.int16]) -> NDArray[np.int16]:
        """Convert the next chunk.

        Args:
            pcm: int16, 1-D when ``channels`` is 1, else ``(channels, samples)``.

        Returns:
            A new int16 array of ``output_length(samples)`` samples (per channel).

        Raises:
            ValueError: wrong dtype or shape.
        """
        if self.channels == 1 and isinstance(pcm, np.ndarray) and pcm.ndim == 1:
            _check_pcm(pcm, 1)
            mono: NDArray[np.int16] = self._process_rows(pcm[None, :])[0]
            return mono
        _check_pcm(pcm, 2)
        if pcm.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, not {pcm.shape[0]}")
        return self._process_rows(pcm)

    def reset(self) -> None:
        """Forget the history, as if nothing had been converted yet."""
        self._history[:] = 0.0
        self._consumed_mod = 0

    def _process_rows(self, rows: NDArray[np.int16]) -> NDArray[np.int16]:
        design = self._design
        chunk = rows.shape[1]
        if design.up == design.down == 1:
            return rows.copy()
        if chunk > design.block_samples:
            # Blocks are whole M-sample cycles, so each reuses the same matrix.
            step = design.block_samples
            pieces = [self._process_rows(rows[:, i : i + step]) for i in range(0, chunk, step)]
            return np.concatenate(pieces, axis=1)
        buffer = np.concatenate((self._history, rows.astype(np.float64)), axis=1)
        out = buffer @ design.matrix(self._consumed_mod, chunk)
        self._advance(_tail(buffer, design.taps_per_phase - 1), chunk)
        return _to_int16(out)

    def _advance(self, history: NDArray[np.float64], chunk: int) -> None:
        self._history = history
        self._consumed_mod = (self._consumed_mod + chunk) % self._design.down


def _tail(buffer: NDArray[np.float64], keep: int) -> NDArray[np.float64]:
    # A copy, so a history does not keep a whole batch's buffer alive.
    return buffer[:, buffer.shape[1] - keep :].copy()


def resample_many(resamplers: Sequence[Resampler], frames: NDArray[np.int16]) -> NDArray[np.int16]:
    """Convert one frame of many calls at once: one matrix product per phase.

    Args:
        resamplers: one mono ``Resampler`` per row, all for the same rates.
        frames: ``(calls, samples)`` int16, row ``i`` for ``resamplers[i]``.

    Returns:
        ``(calls, output samples)`` int16. Rows whose resamplers are at the same
        point of the ``M``-sample cycle (always, when frames are a multiple of
        ``M`` samples, as 20 ms frames are) share one product.

    Raises:
        ValueError: shapes disagree, a resampler is not mono, or rates differ,
            or the resamplers would produce different lengths.
    """
    _check_pcm(frames, 2)
    if frames.shape[0] != len(resamplers):
        raise ValueError(f"{frames.shape[0]} frames for {len(resamplers)} resamplers")
    if not resamplers:
        return np.zeros((0, 0), dtype=np.int16)
    design = resamplers[0]._design
    chunk = frames.shape[1]
    groups: dict[int, list[int]] = {}
    for row, resampler in enumerate(resamplers):
        if resampler._design is not design:
            raise ValueError("resample_many needs resamplers for the same rates")
        if resampler.channels != 1:
            raise ValueError("resample_many needs mono resamplers")
        groups.setdefault(resampler._consumed_mod, []).append(row)
    lengths = {resamplers[rows[0]].output_length(chunk) for rows in groups.values()}
    if len(lengths) != 1:
        raise ValueError("these resamplers owe different output lengths for this frame")
    if chunk > design.block_samples:
        step = design.block_samples
        pieces = [resample_many(resamplers, frames[:, i : i + step]) for i in range(0, chunk, step)]
        return np.concatenate(pieces, axis=1)
    out = np.empty((len(resamplers), lengths.pop()), dtype=np.int16)
    if design.up == design.down == 1:
        out[:] = frames
        return out
    keep = design.taps_per_phase - 1
    for consumed_mod, rows in groups.items():
        members = [resamplers[row] for row in rows]
        # Usually every call is at the same point of the cycle: no row gathering.
        picked: slice | list[int] = slice(None) if len(rows) == len(resamplers) else rows
        buffer = np.empty((len(rows), keep + chunk), dtype=np.float64)
        np.concatenate([r._history for r in members], axis=0, out=buffer[:, :keep])
        buffer[:, keep:] = frames[picked]
        out[picked] = _to_int16(buffer @ design.matrix(consumed_mod, chunk))
        tail = _tail(buffer, keep)
        for index, resampler in enumerate(members):
            resampler._advance(tail[index : index + 1], chunk)
    return out


def resample(pcm: NDArray[np.int16], in_hz: int, out_hz: int) -> NDArray[np.int16]:
    """Convert a whole signal, without the filter's delay.

    Args:
        pcm: int16, 1-D or ``(rows, samples)`` (rows are independent signals).
        in_hz: its rate.
        out_hz: the wanted rate.

    Returns:
        A new int16 array of ``ceil(samples * out_hz / in_hz)`` samples per row,
        time-aligned with the input (sample 0 is at the same instant).

    Raises:
        ValueError: wrong dtype or shape, or a rate as ``Resampler`` refuses it.
    """
    if isinstance(pcm, np.ndarray) and pcm.ndim == 1:
        _check_pcm(pcm, 1)
        mono: NDArray[np.int16] = resample(pcm[None, :], in_hz, out_hz)[0]
        return mono
    _check_pcm(pcm, 2)
    design = _design(in_hz, out_hz)
    rows, samples = pcm.shape
    up, down, delay = design.up, design.down, design.delay_samples
    wanted = -(-samples * up // down)
    if up == down == 1:
        return pcm.copy()
    # Feed zeros after the signal until the delayed outputs have all come out.
    total_in = max(samples, -(-(delay + wanted) * down // up))
    padded = np.zeros((rows, total_in), dtype=np.int16)
    padded[:, :samples] = pcm
    out = Resampler(in_hz, out_hz, channels=rows).process(padded)
    return np.ascontiguousarray(out[:, delay : delay + wanted])
