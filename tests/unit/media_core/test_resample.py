"""Rate conversion: the band passes, what cannot fit is filtered out, chunks join seamlessly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from media_core.resample import Resampler, resample, resample_many
from media_core.tone import tone_pcm

PAIRS = [(8000, 16000), (16000, 8000), (8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000)]


def level_db(pcm: np.ndarray, frequency_hz: float, rate_hz: int) -> float:
    """The level of one frequency in the steady middle half (edges hold the filter's start-up)."""
    middle = pcm[len(pcm) // 4 : 3 * len(pcm) // 4].astype(np.float64)
    t = np.arange(len(middle)) / rate_hz
    amplitude = 2 * abs(np.dot(middle, np.exp(-2j * np.pi * frequency_hz * t))) / len(middle)
    return 20 * math.log10(amplitude / 32767)


def rms_db(pcm: np.ndarray) -> float:
    middle = pcm[len(pcm) // 4 : 3 * len(pcm) // 4].astype(np.float64)
    return 10 * math.log10(max(float(np.mean(middle**2)), 1e-12) / 32767**2)


def peak_hz(pcm: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate_hz)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(("in_hz", "out_hz"), PAIRS)
def test_a_1khz_tone_keeps_its_frequency_and_level(in_hz: int, out_hz: int):
    tone = tone_pcm(1000.0, 1000, rate_hz=in_hz, amplitude=0.5)
    out = resample(tone, in_hz, out_hz)
    assert len(out) == out_hz
    assert peak_hz(out, out_hz) == 1000.0
    assert abs(level_db(out, 1000.0, out_hz) - level_db(tone, 1000.0, in_hz)) < 0.5


@pytest.mark.parametrize("high_hz", [16000, 48000])
def test_up_and_back_down_returns_the_same_tone(high_hz: int):
    tone = tone_pcm(1000.0, 1000, amplitude=0.5)
    back = resample(resample(tone, 8000, high_hz), high_hz, 8000)
    assert len(back) == len(tone)
    assert abs(level_db(back, 1000.0, 8000) - level_db(tone, 1000.0, 8000)) < 0.5
    # Time-aligned too: the round trip is the tone, sample for sample, but for rounding.
    assert np.max(np.abs(back[400:-400].astype(int) - tone[400:-400])) <= 4


@pytest.mark.parametrize("frequency_hz", [3400.0, 3500.0])
def test_the_telephone_band_passes_downsampling_to_8khz(frequency_hz: float):
    tone = tone_pcm(frequency_hz, 1000, rate_hz=16000)
    out = resample(tone, 16000, 8000)
    assert abs(level_db(out, frequency_hz, 8000) - level_db(tone, frequency_hz, 16000)) < 0.5


@pytest.mark.parametrize(
    ("frequency_hz", "in_hz"),
    [
        (6000.0, 16000),  # would fold to 2 kHz
        (4500.0, 16000),  # would fold to 3.5 kHz
        (4100.0, 16000),  # just past the new Nyquist frequency
        (6000.0, 48000),
        (11000.0, 48000),
    ],
)
def test_tones_above_4khz_are_removed_before_decimating_to_8khz(frequency_hz: float, in_hz: int):
    tone = tone_pcm(frequency_hz, 1000, rate_hz=in_hz)
    out = resample(tone, in_hz, 8000)
    # Whatever folds back is anywhere in 0..4 kHz: measure all of it.
    assert rms_db(out) - rms_db(tone) < -40


@pytest.mark.parametrize("out_hz", [16000, 48000])
def test_upsampling_leaves_no_images_above_the_original_band(out_hz: int):
    out = resample(tone_pcm(1000.0, 1000, amplitude=0.5), 8000, out_hz)
    spectrum = np.abs(np.fft.rfft(out[len(out) // 4 : 3 * len(out) // 4].astype(np.float64)))
    freqs = np.fft.rfftfreq(len(out) // 2, 1 / out_hz)
    tone_power = float(np.max(spectrum) ** 2)
    image_power = float(np.max(spectrum[freqs > 4000]) ** 2)
    assert 10 * math.log10(image_power / tone_power) < -50


@pytest.mark.parametrize(("in_hz", "out_hz"), [*PAIRS, (22050, 8000), (44100, 16000)])
def test_20ms_chunks_give_exactly_what_the_whole_signal_gives(in_hz: int, out_hz: int):
    rng = np.random.default_rng(1)
    signal = rng.integers(-12000, 12000, in_hz // 2, dtype=np.int16)  # 500 ms of noise
    whole = Resampler(in_hz, out_hz).process(signal)
    chunked_resampler = Resampler(in_hz, out_hz)
    chunk = in_hz // 50
    chunks = [
        chunked_resampler.process(signal[i : i + chunk]) for i in range(0, len(signal), chunk)
    ]
    assert all(len(c) == len(chunks[0]) for c in chunks[:-1])
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_odd_sized_chunks_owe_samples_to_the_next_chunk_and_still_join_exactly():
    signal = tone_pcm(700.0, 300, rate_hz=16000)
    whole = Resampler(16000, 8000).process(signal)
    resampler = Resampler(16000, 8000)
    pieces, start = [], 0
    for size in (1, 7, 160, 0, 333, 99, 1, 2, 4197):
        expected = resampler.output_length(size)
        piece = resampler.process(signal[start : start + size])
        assert len(piece) == expected
        pieces.append(piece)
        start += size
    assert start == len(signal)
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_a_stream_lags_by_the_reported_delay_and_resample_removes_it():
    impulse = np.zeros(800, dtype=np.int16)
    impulse[100] = 20000
    resampler = Resampler(8000, 16000)
    streamed = resampler.process(impulse)
    assert int(np.argmax(streamed)) == 200 + resampler.delay_samples
    aligned = resample(impulse, 8000, 16000)
    assert int(np.argmax(aligned)) == 200
    np.testing.assert_array_equal(
        aligned[: -resampler.delay_samples], streamed[resampler.delay_samples :]
    )


@pytest.mark.parametrize(("samples", "expected"), [(0, 0), (1, 1), (2, 1), (3, 2), (161, 81)])
def test_one_shot_length_is_the_input_duration_rounded_up(samples: int, expected: int):
    assert len(resample(np.ones(samples, dtype=np.int16), 16000, 8000)) == expected


def test_a_batch_of_calls_matches_each_call_resampled_on_its_own():
    rng = np.random.default_rng(2)
    calls, frames = 5, 6
    audio = rng.integers(-20000, 20000, (calls, frames * 160), dtype=np.int16)
    batch = [Resampler(8000, 16000) for _ in range(calls)]
    alone = [Resampler(8000, 16000) for _ in range(calls)]
    for f in range(frames):
        frame = audio[:, f * 160 : (f + 1) * 160]
        out = resample_many(batch, frame)
        assert out.shape == (calls, 320)
        for row in range(calls):
            np.testing.assert_array_equal(out[row], alone[row].process(frame[row]))


def test_a_batch_with_resamplers_at_different_points_of_their_cycle_is_still_exact():
    signal = tone_pcm(440.0, 100, rate_hz=48000)
    ahead, fresh = Resampler(48000, 8000), Resampler(48000, 8000)
    ahead_reference, fresh_reference = Resampler(48000, 8000), Resampler(48000, 8000)
    ahead.process(signal[:3])  # 3 samples into its 6-sample cycle
    ahead_reference.process(signal[:3])
    frames = np.stack([signal[3:963], signal[:960]])
    out = resample_many([ahead, fresh], frames)
    np.testing.assert_array_equal(out[0], ahead_reference.process(signal[3:963]))
    np.testing.assert_array_equal(out[1], fresh_reference.process(signal[:960]))


def test_a_stereo_resampler_keeps_channels_apart():
    left = tone_pcm(500.0, 100, rate_hz=8000)
    right = tone_pcm(1500.0, 100, rate_hz=8000)
    stereo = Resampler(8000, 48000, channels=2).process(np.stack([left, right]))
    np.testing.assert_array_equal(stereo[0], Resampler(8000, 48000).process(left))
    np.testing.assert_array_equal(stereo[1], Resampler(8000, 48000).process(right))


def test_full_scale_input_is_clipped_not_wrapped_around():
    # A full-scale square wave overshoots by ~9% after band-limiting (Gibbs).
    square = np.where((np.arange(8000) // 8) % 2 == 0, 32767, -32768).astype(np.int16)
    out = resample(square, 8000, 48000)
    plateau_middles = np.arange(0, 48000, 96)[5:-5] + 24
    assert np.all(out[plateau_middles] > 25000)
    assert int(out.max()) == 32767


def test_equal_rates_copy_the_input():
    pcm = np.arange(100, dtype=np.int16)
    out = Resampler(8000, 8000).process(pcm)
    np.testing.assert_array_equal(out, pcm)
    assert out is not pcm


def test_reset_forgets_the_history():
    signal = tone_pcm(1000.0, 40)
    resampler = Resampler(8000, 16000)
    first = resampler.process(signal)
    resampler.process(signal)
    resampler.reset()
    np.testing.assert_array_equal(resampler.process(signal), first)


@pytest.mark.parametrize(
    ("in_hz", "out_hz"), [(0, 8000), (8000, -1), (8000.0, 16000), (8000, 44099)]
)
def test_unusable_rates_are_refused(in_hz: int, out_hz: int):
    with pytest.raises(ValueError, match="Hz|rates"):
        Resampler(in_hz, out_hz)


@pytest.mark.parametrize(
    "pcm",
    [np.zeros(160, dtype=np.float32), np.zeros((2, 160), dtype=np.int16), [0] * 160],
)
def test_a_mono_resampler_refuses_anything_but_1d_int16(pcm: object):
    with pytest.raises(ValueError, match="int16|channels"):
        Resampler(8000, 16000).process(pcm)  # type: ignore[arg-type]


def test_a_batch_refuses_resamplers_for_other_rates():
    frames = np.zeros((2, 160), dtype=np.int16)
    with pytest.raises(ValueError, match="same rates"):
        resample_many([Resampler(8000, 16000), Resampler(8000, 48000)], frames)
    with pytest.raises(ValueError, match="2 frames for 1"):
        resample_many([Resampler(8000, 16000)], frames)
