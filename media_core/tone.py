"""Sine tones and the built-in greeting, as 16-bit PCM.

Until real prompts exist, an answered call hears ``greeting_pcm``: two short
soft notes a major third apart, then a pause, looped by the media tick.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["ToneGenerator", "greeting_pcm", "tone_pcm"]

FULL_SCALE = 32767
_TWO_PI = 2.0 * math.pi


def _check(frequency_hz: float, rate_hz: int, amplitude: float) -> None:
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be positive, not {rate_hz}")
    if not 0.0 <= frequency_hz < rate_hz / 2:
        # Above Nyquist the samples would alias to another frequency.
        raise ValueError(f"frequency {frequency_hz} Hz is not below half the {rate_hz} Hz rate")
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude {amplitude} is outside 0..1 of full scale")


def _to_pcm(signal: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.rint(signal * FULL_SCALE).astype(np.int16)


def tone_pcm(
    frequency_hz: float, duration_ms: int, rate_hz: int = 8000, amplitude: float = 0.3
) -> NDArray[np.int16]:
    """A sine tone starting at phase 0.

    Args:
        frequency_hz: the tone, below ``rate_hz / 2``.
        duration_ms: length; the sample count is rounded down.
        rate_hz: the sampling rate.
        amplitude: peak level as a fraction of full scale.

    Returns:
        ``duration_ms * rate_hz // 1000`` int16 samples.

    Raises:
        ValueError: a parameter out of range.
    """
    if duration_ms < 0:
        raise ValueError(f"duration_ms must not be negative, not {duration_ms}")
    return ToneGenerator(frequency_hz, rate_hz, amplitude).next_frame(duration_ms * rate_hz // 1000)


class ToneGenerator:
    """A sine tone produced frame by frame, phase-continuous across frames."""

    __slots__ = ("_amplitude", "_phase", "_step", "frequency_hz", "rate_hz")

    def __init__(self, frequency_hz: float, rate_hz: int = 8000, amplitude: float = 0.3) -> None:
        """Start at phase 0.

        Raises:
            ValueError: a parameter out of range.
        """
        _check(frequency_hz, rate_hz, amplitude)
        self.frequency_hz = frequency_hz
        self.rate_hz = rate_hz
        self._amplitude = amplitude
        self._step = _TWO_PI * frequency_hz / rate_hz  # radians per sample
        self._phase = 0.0

    def next_frame(self, samples: int) -> NDArray[np.int16]:
        """The next ``samples`` samples, continuing where the last frame stopped."""
        if samples < 0:
            raise ValueError(f"samples must not be negative, not {samples}")
        phases = self._phase + self._step * np.arange(samples, dtype=np.float64)
        # Keep the phase small so float precision does not drift over long calls.
        self._phase = math.fmod(self._phase + self._step * samples, _TWO_PI)
        return _to_pcm(self._amplitude * np.sin(phases))


def _note(
    frequency_hz: float, duration_ms: int, rate_hz: int, amplitude: float
) -> NDArray[np.float64]:
    count = duration_ms * rate_hz // 1000
    t = np.arange(count, dtype=np.float64) / rate_hz
    signal = amplitude * np.sin(_TWO_PI * frequency_hz * t)
    # 10 ms raised-cosine ramps: a hard start or stop is heard as a click.
    ramp = min(count // 2, rate_hz // 100)
    if ramp:
        fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        signal[:ramp] *= fade
        signal[count - ramp :] *= fade[::-1]
    return signal


def greeting_pcm(
    frequency_hz: float = 440.0, rate_hz: int = 8000, amplitude: float = 0.25
) -> NDArray[np.int16]:
    """The hotline's placeholder prompt: one loop of a soft two-note chime.

    ``frequency_hz`` for 300 ms, 50 ms apart a major third above (x 5/4) for
    300 ms, then 1350 ms of silence: 2 s in all, starting and ending at silence
    so it loops without a click.

    Args:
        frequency_hz: the first note; the second must stay below ``rate_hz / 2``.
        rate_hz: the sampling rate.
        amplitude: peak level as a fraction of full scale.

    Raises:
        ValueError: a parameter out of range.
    """
    second_hz = frequency_hz * 5 / 4
    _check(second_hz, rate_hz, amplitude)
    _check(frequency_hz, rate_hz, amplitude)
    gap = np.zeros(50 * rate_hz // 1000)
    pause = np.zeros(1350 * rate_hz // 1000)
    signal = np.concatenate(
        [
            _note(frequency_hz, 300, rate_hz, amplitude),
            gap,
            _note(second_hz, 300, rate_hz, amplitude),
            pause,
        ]
    )
    return _to_pcm(signal)
