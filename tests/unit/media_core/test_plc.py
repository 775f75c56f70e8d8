"""G.711 packet loss concealment (after G.711 Appendix I) on int16 PCM."""

from __future__ import annotations

import numpy as np
import pytest

from media_core.plc import G711Concealer

RATE_HZ = 8000
FRAME = 160


def sine(frequency_hz: float, start: int, count: int, amplitude: float = 8000.0) -> np.ndarray:
    n = np.arange(start, start + count)
    return np.rint(amplitude * np.sin(2 * np.pi * frequency_hz * n / RATE_HZ)).astype(np.int16)


def fed(frequency_hz: float, frames: int = 10) -> G711Concealer:
    plc = G711Concealer(FRAME, RATE_HZ)
    for k in range(frames):
        plc.good(sine(frequency_hz, k * FRAME, FRAME))
    return plc


def dominant_hz(pcm: np.ndarray) -> float:
    padded = np.zeros(16384)
    padded[: len(pcm)] = pcm * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(padded))
    return float(np.argmax(spectrum)) * RATE_HZ / len(padded)


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


@pytest.mark.parametrize("frequency_hz", [150.0, 300.0, 440.0, 1000.0])
def test_a_concealed_frame_of_a_steady_sine_has_the_same_dominant_frequency(frequency_hz):
    plc = fed(frequency_hz)
    concealed = plc.conceal()
    assert concealed.dtype == np.int16
    assert len(concealed) == FRAME
    assert dominant_hz(concealed) == pytest.approx(frequency_hz, abs=8.0)


@pytest.mark.parametrize("frequency_hz", [200.0, 440.0])
def test_the_first_10_ms_continue_the_waveform_where_it_stopped(frequency_hz):
    plc = fed(frequency_hz)
    concealed = plc.conceal()
    truth = sine(frequency_hz, 10 * FRAME, FRAME)
    # Full level for 10 ms: the repetition matches the real continuation closely.
    error = rms(concealed[:80] - truth[:80].astype(np.float64))
    assert error < 0.05 * rms(truth)
    # No click at the seam with the last good sample.
    last_good = int(sine(frequency_hz, 10 * FRAME - 1, 1)[0])
    step = abs(int(concealed[0]) - last_good)
    assert step <= abs(int(truth[0]) - last_good) + 200


def test_a_pitch_period_is_repeated_for_a_periodic_pulse_train():
    period = 57  # 140 Hz: inside the 66..200 Hz search range
    pulses = np.zeros(10 * FRAME, dtype=np.int16)
    pulses[::period] = 10000
    plc = G711Concealer()
    for k in range(10):
        plc.good(pulses[k * FRAME : (k + 1) * FRAME])
    concealed = plc.conceal()
    peaks = np.flatnonzero(concealed[:80] > 5000)
    # The next pulse is where the train would have put it.
    expected = [i - 10 * FRAME for i in range(0, 11 * FRAME, period) if 0 <= i - 10 * FRAME < 80]
    assert list(peaks) == expected


def test_repeating_a_non_periodic_signal_leaves_no_seam_between_repetitions():
    # Smooth noise matches itself at no lag: looping its last period would jump
    # at every repetition unless the loop's end is faded into what preceded it.
    rng = np.random.default_rng(3)
    noise = np.convolve(rng.normal(0, 4000, 2100), np.ones(12) / 4, mode="valid")[:1600]
    history = np.rint(noise).astype(np.int16)
    plc = G711Concealer()
    for k in range(10):
        plc.good(history[k * FRAME : (k + 1) * FRAME])
    concealed = plc.conceal()
    own_steepest = np.abs(np.diff(history.astype(np.int32))).max()
    assert np.abs(np.diff(concealed[:80].astype(np.int32))).max() <= own_steepest


def test_consecutive_losses_fade_to_silence_by_60_ms():
    plc = fed(300.0)
    frames = [plc.conceal() for _ in range(6)]
    levels = [rms(f) for f in frames]
    # 0-20 ms: full for 10 ms then -20%; 20-40 ms: 80%..40%; 40-60 ms: 40%..0%.
    assert levels[0] > levels[1] > levels[2] > 0
    assert levels[0] == pytest.approx(rms(sine(300.0, 0, FRAME)) * 0.93, rel=0.1)
    assert int(np.abs(frames[2][-8:]).max()) < 200
    assert all(not f.any() for f in frames[3:])
    assert plc.erased_ms == 120.0
    assert plc.concealed_frames == 6


def test_the_first_good_frame_after_a_loss_is_cross_faded_from_the_concealment():
    plc = fed(300.0)
    concealed = plc.conceal()
    good = sine(300.0, 11 * FRAME, FRAME)
    out = plc.good(good)
    assert out is not good
    # 8 ms of overlap after 20 ms of erasure (4 ms per 10 ms); untouched after.
    overlap = 64
    np.testing.assert_array_equal(out[overlap:], good[overlap:])
    assert not np.array_equal(out[:overlap], good[:overlap])
    # The seam from the concealment into the mix is no larger than the signal's own steps.
    steepest = np.abs(np.diff(good.astype(np.int32))).max()
    assert abs(int(out[0]) - int(concealed[-1])) <= 2 * steepest
    assert plc.erased_ms == 0.0


def test_after_a_long_gap_the_good_frame_fades_in_from_silence():
    plc = fed(300.0)
    for _ in range(5):
        plc.conceal()
    good = np.full(FRAME, 10000, dtype=np.int16)
    out = plc.good(good)
    overlap = 80  # at most 10 ms
    assert abs(int(out[0])) < 10000 / overlap + 1
    assert np.all(np.diff(out[:overlap].astype(np.int32)) > 0)
    np.testing.assert_array_equal(out[overlap:], good[overlap:])


def test_a_good_frame_without_a_preceding_loss_is_returned_untouched():
    plc = G711Concealer()
    frame = sine(300.0, 0, FRAME)
    assert plc.good(frame) is frame


def test_concealment_with_no_history_is_silence():
    plc = G711Concealer()
    assert not plc.conceal().any()


def test_a_second_erasure_conceals_from_the_newest_history():
    plc = fed(300.0)
    plc.conceal()
    for k in range(12, 22):
        plc.good(sine(700.0, k * FRAME, FRAME))
    assert dominant_hz(plc.conceal()) == pytest.approx(700.0, abs=8.0)


def test_reset_forgets_the_history():
    plc = fed(300.0)
    plc.reset()
    assert not plc.conceal().any()


def test_a_frame_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="frame of 80 samples, expected 160"):
        G711Concealer().good(np.zeros(80, dtype=np.int16))


def test_other_frame_sizes_and_rates_work_the_same_way():
    plc = G711Concealer(frame_samples=320, rate_hz=16000)
    n = np.arange(3200)
    signal = np.rint(6000 * np.sin(2 * np.pi * 440.0 * n / 16000)).astype(np.int16)
    for k in range(10):
        plc.good(signal[k * 320 : (k + 1) * 320])
    concealed = plc.conceal()
    padded = np.zeros(32768)
    padded[:320] = concealed * np.hanning(320)
    peak_hz = float(np.argmax(np.abs(np.fft.rfft(padded)))) * 16000 / 32768
    assert peak_hz == pytest.approx(440.0, abs=8.0)


def test_the_pitch_search_picks_the_lag_whose_segment_best_matches_the_last_20_ms():
    rng = np.random.default_rng(3)
    for _ in range(50):
        concealer = G711Concealer()
        signal = (rng.standard_normal(800) * 3000).astype(np.int16)
        for k in range(5):
            concealer.good(signal[k * 160 : (k + 1) * 160])
        history = concealer._linear_history()
        assert concealer._find_pitch(history) == best_lag_by_brute_force(history)


def best_lag_by_brute_force(history: np.ndarray) -> int:
    recent = history[-160:]

    def score(lag: int) -> float:
        earlier = history[len(history) - 160 - lag : len(history) - lag]
        return float(earlier @ recent / np.sqrt(earlier @ earlier + 1.0))

    return max(range(40, 121), key=score)  # 5..15 ms at 8 kHz
