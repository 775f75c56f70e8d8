"""DTMF spectral analysis for many calls at once: the NumPy twin and the kernel choice.

``classify_windows`` takes one frame per call (a 2-D int16 array, calls x
samples), cuts it into 10 ms blocks and decides, for every 20 ms window that
ends at one of those blocks, which DTMF key (0..15, ``-1`` for none) the window
holds. Windows overlap by half: the first window of a frame is the previous
frame's last block plus this frame's first block, which is why each call
carries a small ``tails`` row from one tick to the next.

Why 20 ms windows on a 10 ms hop, and not the classic 205-sample block: 160
samples line up with the 20 ms media tick (205 does not divide it), resolve
the 73 Hz between adjacent row tones, and a 10 ms hop gives the debouncer
(``dtmf_inband``) enough decisions to accept 40 ms tones and reject 20 ms ones
at any alignment. The
row tones are analysed with a rectangular window (the sharpest separation of
697/770/852/941 Hz); the column tones, 127 Hz or more apart, and their second
harmonics with a Hann window, whose flatter top keeps a tone 1.5 % off
frequency (ITU-T Q.24's acceptance range) within 1.4 dB instead of 3.7 dB.
The row tones' second harmonics (1394..1882 Hz) lie within 60..70 Hz of
column tones and cannot be separated from them in 20 ms, so only the column
tones' harmonics are checked.

Each block's value at a frequency is what Goertzel's recurrence yields; here
it is a sum against a precomputed cos/sin basis instead, which vectorises over
the frequencies in the kernel and is one matrix product over all calls in the
twin.

The kernel ``media_core._goertzel`` is chosen once, at import, unless
``HOTLINE_NO_EXTENSIONS`` is set or it is not built. Both take the same
arguments and return the same codes; their powers differ only by float32
summation order. Measured on the 2-core development machine (best of 5, under
other load), per 20 ms tick: the kernel takes 3 us for 1 call, 80 us for 100
and 0.7-1.1 ms for 1000; this twin 70 us, 180-490 us and 4 ms with a
single-threaded BLAS, and 4-17 ms for 1000 calls when OpenBLAS runs its
default threads. So the kernel pays off at every size: 3-20x.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from media_core import extensions

__all__ = [
    "BASIS_COLUMNS",
    "COLUMN_HZ",
    "FALLBACK_REASON",
    "KEYPAD",
    "LIMIT_COUNT",
    "ROW_HZ",
    "TAIL_SIZE",
    "USING_EXTENSION",
    "Classify",
    "block_samples",
    "check_arguments",
    "classify_windows",
    "classify_windows_py",
    "dtmf_basis",
    "load_extension",
]

#: ITU-T Q.23: the low (row) group and the high (column) group, in Hz.
ROW_HZ: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
COLUMN_HZ: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
#: Q.23's keypad: code ``row * 4 + column`` is ``KEYPAD[code]``.
KEYPAD = "123A456B789C*0#D"

# Basis columns per block: the 4 row tones (rectangular window: cos, -sin),
# then 8 Hann-windowed frequencies (the 4 column tones and their 2nd harmonics)
# weighted once as the first half of a window and once as the second half.
_ROWS = 4
_HANN = 8
BASIS_COLUMNS = 2 * _ROWS + 4 * _HANN  # 40
#: Per call between ticks: last block's row sums (re, im), first-half Hann sums (re, im), energy.
TAIL_SIZE = 2 * _ROWS + 2 * _HANN + 1  # 25
_ENERGY = TAIL_SIZE - 1
#: ``limits``: min tone power, normal twist, reverse twist, group dominance,
#: tone fraction, half-window balance, harmonic ratio (all linear power ratios).
LIMIT_COUNT = 7

Classify = Callable[
    [
        NDArray[np.int16],
        NDArray[np.float64],
        NDArray[np.float32],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.int8],
    ],
    None,
]


def block_samples(rate_hz: int) -> int:
    """Samples in one 10 ms analysis block.

    Raises:
        ValueError: the rate is not a multiple of 100 Hz or too low for 2 x 1633 Hz.
    """
    if rate_hz < 8000 or rate_hz % 100:
        raise ValueError(
            f"DTMF analysis needs a rate of 8000 Hz or more in steps of 100, not {rate_hz}"
        )
    return rate_hz // 100


def dtmf_basis(rate_hz: int = 8000) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """The per-block DFT basis and the phase step from one block to the next.

    Args:
        rate_hz: the sampling rate of the frames.

    Returns:
        ``(basis, rotation)``: ``basis`` is ``(block, 40)`` float32, each
        column ``w[n] * cos(2 pi f n / rate)`` or ``-w[n] * sin(...)`` for the
        layout in this module's comments; ``rotation`` is ``cos`` then ``sin``
        of ``-2 pi f block / rate`` for the 4 row and 8 Hann frequencies, so
        the second block of a window is brought to the window's time origin.

    Raises:
        ValueError: see ``block_samples``.
    """
    block = block_samples(rate_hz)
    window = 2 * block
    n = np.arange(block, dtype=np.float64)
    hann_hz = np.array([*COLUMN_HZ, *(2 * f for f in COLUMN_HZ)])
    row_w = 2 * math.pi * np.array(ROW_HZ) / rate_hz
    hann_w = 2 * math.pi * hann_hz / rate_hz
    # sin^2 over the whole window: sums to window/2, so the Hann gain is exactly 1/2.
    hann = np.sin(math.pi * (np.arange(window) + 0.5) / window) ** 2
    first, second = hann[:block, None], hann[block:, None]
    row_phase, hann_phase = np.outer(n, row_w), np.outer(n, hann_w)
    basis = np.concatenate(
        [
            np.cos(row_phase),
            -np.sin(row_phase),
            first * np.cos(hann_phase),
            -first * np.sin(hann_phase),
            second * np.cos(hann_phase),
            -second * np.sin(hann_phase),
        ],
        axis=1,
    ).astype(np.float32)
    step = -np.concatenate([row_w, hann_w]) * block
    rotation = np.concatenate([np.cos(step), np.sin(step)])
    return np.ascontiguousarray(basis), rotation


def check_arguments(
    frames: NDArray[np.int16],
    tails: NDArray[np.float64],
    basis: NDArray[np.float32],
    rotation: NDArray[np.float64],
    limits: NDArray[np.float64],
    codes: NDArray[np.int8],
) -> tuple[int, int, int]:
    """Check ``classify_windows``' arguments fit together (the kernel calls this too).

    Returns:
        ``(calls, blocks per frame, samples per block)``.

    Raises:
        ValueError: naming the argument that does not fit.
    """
    if frames.ndim != 2 or frames.dtype != np.int16:
        raise ValueError("frames must be a 2-D int16 array (calls x samples)")
    calls, samples = frames.shape
    if basis.ndim != 2 or basis.shape[1] != BASIS_COLUMNS or basis.shape[0] == 0:
        raise ValueError(f"basis must be (block, {BASIS_COLUMNS}), not {basis.shape}")
    block = basis.shape[0]
    if samples % block:
        raise ValueError(f"a frame of {samples} samples is not whole {block}-sample blocks")
    if tails.shape != (calls, TAIL_SIZE):
        raise ValueError(f"tails must be ({calls}, {TAIL_SIZE}), not {tails.shape}")
    if codes.shape != (calls, samples // block):
        raise ValueError(f"codes must be ({calls}, {samples // block}), not {codes.shape}")
    if rotation.shape != (2 * (_ROWS + _HANN),) or limits.shape != (LIMIT_COUNT,):
        raise ValueError("rotation or limits has the wrong length")
    return calls, samples // block, block


def classify_windows_py(
    frames: NDArray[np.int16],
    tails: NDArray[np.float64],
    basis: NDArray[np.float32],
    rotation: NDArray[np.float64],
    limits: NDArray[np.float64],
    codes: NDArray[np.int8],
) -> None:
    """Decide the DTMF key of every 20 ms window of every call (the NumPy twin).

    Args:
        frames: ``(calls, samples)`` int16, ``samples`` a multiple of the block.
        tails: ``(calls, TAIL_SIZE)`` float64, read then overwritten with the
            last block of each frame (zeros for a new call).
        basis: from ``dtmf_basis``.
        rotation: from ``dtmf_basis``.
        limits: ``LIMIT_COUNT`` thresholds, see ``dtmf_inband.InbandDtmfConfig``.
        codes: ``(calls, samples // block)`` int8, written: the key code of
            the window ending at each block, or -1.

    Raises:
        ValueError: shapes or dtypes that do not fit together.
    """
    calls, blocks, block = check_arguments(frames, tails, basis, rotation, limits, codes)
    if calls == 0:
        return
    window = 2 * block
    x = frames.reshape(calls * blocks, block).astype(np.float32)
    sums = (x @ basis).astype(np.float64).reshape(calls, blocks, BASIS_COLUMNS)
    # Exact: squares of int16 summed over a block stay far below 2**53.
    energy = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
    energy = energy.reshape(calls, blocks)

    r, h = _ROWS, _HANN
    row_re, row_im = sums[..., 0:r], sums[..., r : 2 * r]
    first_re, first_im = sums[..., 2 * r : 2 * r + h], sums[..., 2 * r + h : 2 * r + 2 * h]
    second_re = sums[..., 2 * r + 2 * h : 2 * r + 3 * h]
    second_im = sums[..., 2 * r + 3 * h : 2 * r + 4 * h]

    # The earlier half of each window: the tail, then this frame's blocks but the last.
    previous = np.concatenate(
        [
            tails[:, None, :],
            np.concatenate([row_re, row_im, first_re, first_im, energy[..., None]], axis=-1)[
                :, :-1
            ],
        ],
        axis=1,
    )
    cos_r, sin_r = rotation[0:r], rotation[r + h : 2 * r + h]
    cos_h, sin_h = rotation[r : r + h], rotation[2 * r + h :]
    # X = earlier + rotation * later (complex product written out, as the kernel does).
    x_row_re = previous[..., 0:r] + (cos_r * row_re - sin_r * row_im)
    x_row_im = previous[..., r : 2 * r] + (cos_r * row_im + sin_r * row_re)
    x_hann_re = previous[..., 2 * r : 2 * r + h] + (cos_h * second_re - sin_h * second_im)
    x_hann_im = previous[..., 2 * r + h : 2 * r + 2 * h] + (cos_h * second_im + sin_h * second_re)
    # Scaled so that a sine of amplitude A filling the window reads A**2 / 2.
    row_power = (x_row_re * x_row_re + x_row_im * x_row_im) * (2.0 / (window * window))
    hann_power = (x_hann_re * x_hann_re + x_hann_im * x_hann_im) * (8.0 / (window * window))
    _decide(row_power, hann_power, previous[..., _ENERGY], energy, window, limits, codes)

    tails[:, 0:r] = row_re[:, -1]
    tails[:, r : 2 * r] = row_im[:, -1]
    tails[:, 2 * r : 2 * r + h] = first_re[:, -1]
    tails[:, 2 * r + h : 2 * r + 2 * h] = first_im[:, -1]
    tails[:, _ENERGY] = energy[:, -1]


def _decide(
    row_power: NDArray[np.float64],
    hann_power: NDArray[np.float64],
    earlier_energy: NDArray[np.float64],
    later_energy: NDArray[np.float64],
    window: int,
    limits: NDArray[np.float64],
    codes: NDArray[np.int8],
) -> None:
    min_power, normal_twist, reverse_twist, dominance, fraction, balance, harmonic = limits
    column_power = hann_power[..., 0:4]
    row = row_power.argmax(axis=-1)  # the first of equal maxima, as the kernel
    column = column_power.argmax(axis=-1)
    pr = np.take_along_axis(row_power, row[..., None], axis=-1)[..., 0]
    pc = np.take_along_axis(column_power, column[..., None], axis=-1)[..., 0]
    second_row = np.sort(row_power, axis=-1)[..., -2]
    second_column = np.sort(column_power, axis=-1)[..., -2]
    harmonic_power = np.take_along_axis(hann_power[..., 4:8], column[..., None], axis=-1)[..., 0]
    mean_square = (earlier_energy + later_energy) / window
    ok = (
        (pr >= min_power)
        & (pc >= min_power)
        & (pr <= pc * normal_twist)
        & (pc <= pr * reverse_twist)
        & (second_row * dominance <= pr)
        & (second_column * dominance <= pc)
        & (pr + pc >= fraction * mean_square)
        & (
            np.minimum(earlier_energy, later_energy) * balance
            >= np.maximum(earlier_energy, later_energy)
        )
        & (harmonic_power * harmonic <= pc)
    )
    codes[...] = np.where(ok, row * 4 + column, -1)


def load_extension() -> tuple[ModuleType | None, str | None]:
    """Import the Cython kernel, whatever the environment says."""
    return extensions.load_extension("media_core._goertzel")


def _select() -> tuple[Classify, str | None]:
    module, why = extensions.select("media_core._goertzel", sys.modules[__name__])
    if module is sys.modules[__name__]:
        return classify_windows_py, why
    kernel: Classify = module.classify_windows
    return kernel, None


classify_windows, FALLBACK_REASON = _select()  # why the twin serves, if it does
#: True when the Cython kernel serves this process.
USING_EXTENSION: bool = classify_windows is not classify_windows_py
