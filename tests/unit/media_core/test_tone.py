"""Tones and the greeting: right frequency, right length, no clicks, continuous phase."""

from __future__ import annotations

import numpy as np
import pytest

from media_core.tone import ToneGenerator, greeting_pcm, tone_pcm


def peak_hz(pcm: np.ndarray, rate_hz: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate_hz)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("frequency_hz", [350.0, 440.0, 1000.0, 3400.0])
def test_the_spectrum_of_a_tone_peaks_at_its_frequency(frequency_hz: float):
    pcm = tone_pcm(frequency_hz, 1000)
    assert peak_hz(pcm) == frequency_hz  # 1 s at 8 kHz: 1 Hz bins


def test_a_tone_has_the_requested_length_type_and_amplitude():
    pcm = tone_pcm(440.0, 250, rate_hz=16000, amplitude=0.5)
    assert pcm.dtype == np.int16
    assert len(pcm) == 4000
    assert abs(int(np.max(np.abs(pcm))) - round(0.5 * 32767)) <= 1
    assert pcm[0] == 0  # starts at phase 0


def test_a_full_scale_tone_does_not_wrap_around():
    pcm = tone_pcm(1000.0, 100, amplitude=1.0)
    assert int(pcm.max()) == 32767
    assert int(pcm.min()) == -32767


def test_frames_from_the_generator_join_into_one_continuous_tone():
    generator = ToneGenerator(440.0)
    frames = np.concatenate([generator.next_frame(160) for _ in range(50)])
    whole = tone_pcm(440.0, 1000)
    # Equal up to float rounding of the accumulated phase.
    assert np.max(np.abs(frames.astype(int) - whole.astype(int))) <= 1


def test_the_generator_phase_stays_continuous_with_odd_frame_sizes():
    generator = ToneGenerator(1234.5)
    frames = np.concatenate([generator.next_frame(n) for n in (1, 7, 160, 0, 333, 99)])
    assert np.max(np.abs(frames.astype(int) - tone_pcm(1234.5, 75).astype(int))) <= 1


@pytest.mark.parametrize(
    ("frequency_hz", "rate_hz", "amplitude"),
    [
        (4000.0, 8000, 0.3),
        (5000.0, 8000, 0.3),
        (-1.0, 8000, 0.3),
        (440.0, 0, 0.3),
        (440.0, 8000, 1.5),
    ],
)
def test_out_of_range_parameters_are_refused(frequency_hz: float, rate_hz: int, amplitude: float):
    with pytest.raises(ValueError):
        ToneGenerator(frequency_hz, rate_hz, amplitude)


def test_greeting_is_two_notes_a_major_third_apart_then_silence():
    pcm = greeting_pcm(440.0)
    assert pcm.dtype == np.int16
    assert len(pcm) == 2 * 8000  # a 2 s loop
    first, gap, second, pause = pcm[:2400], pcm[2400:2800], pcm[2800:5200], pcm[5200:]
    assert abs(peak_hz(first) - 440.0) <= 8000 / len(first)
    assert abs(peak_hz(second) - 550.0) <= 8000 / len(second)
    assert not gap.any()
    assert not pause.any()


def test_greeting_fades_in_and_out_so_the_loop_does_not_click():
    pcm = greeting_pcm(440.0).astype(int)
    # The first and last samples of each note are near silence, the middle is loud.
    assert abs(pcm[0]) == 0 and abs(pcm[1]) < 100
    assert abs(pcm[2399]) < 100 and abs(pcm[2800]) < 100
    assert int(np.max(np.abs(pcm[1000:1400]))) > 8000
    # Sample-to-sample steps never exceed what the sine itself does.
    assert int(np.max(np.abs(np.diff(pcm)))) <= int(2 * np.pi * 550 / 8000 * 0.25 * 32767) + 2


def test_greeting_follows_the_configured_frequency():
    assert abs(peak_hz(greeting_pcm(600.0)[:2400]) - 600.0) <= 8000 / 2400


def test_greeting_refuses_a_second_note_above_nyquist():
    with pytest.raises(ValueError, match="not below half"):
        greeting_pcm(3500.0)
