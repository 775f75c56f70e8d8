"""In-band DTMF: Q.24-style acceptance and rejection on generated audio, for many calls at once.

Every signal is made here with NumPy: two sines at a given level (dBm0, G.711's
scale), passed through µ-law as a trunk would send them, cut into 20 ms frames
and fed at 20 ms steps of a fake clock. The detector tests run on the Cython
kernel ("c") and on its NumPy twin ("py"); a separate test holds the two to
the same window decisions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import ModuleType

import numpy as np
import pytest
from numpy.typing import NDArray

from media_core import g711, goertzel
from media_core.dtmf import DtmfDigit
from media_core.dtmf_inband import (
    InbandDtmfConfig,
    InbandDtmfDetector,
    InbandDtmfState,
    tone_power_dbm0,
)

RATE_HZ = 8000
FRAME = 160
KEYS = "123A456B789C*0#D"
Signal = NDArray[np.float64]


def kernel_module() -> ModuleType:
    if g711.extensions_disabled():
        pytest.skip("HOTLINE_NO_EXTENSIONS is set: the Cython kernel is not in use")
    module, why = goertzel.load_extension()
    if module is None:
        pytest.skip(str(why))
    return module


@pytest.fixture(params=["py", "c"], ids=["py", "c"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the detector on the twin or on the kernel."""
    if request.param == "py":
        monkeypatch.setattr(goertzel, "classify_windows", goertzel.classify_windows_py)
    else:
        monkeypatch.setattr(goertzel, "classify_windows", kernel_module().classify_windows)
    yield request.param


# ------------------------------------------------------------------ signals


def amplitude(level_dbm0: float) -> float:
    """Peak of a sine at ``level_dbm0`` (a full-scale sine is +3.14 dBm0)."""
    return 32768.0 * 10 ** ((level_dbm0 - 3.14) / 20)


def silence(ms: float) -> Signal:
    return np.zeros(round(ms * RATE_HZ / 1000))


def key_tone(
    key: str,
    ms: float,
    level_dbm0: float = -10.0,
    *,
    twist_db: float = 0.0,
    row_offset: float = 0.0,
    column_offset: float = 0.0,
) -> Signal:
    """Key ``key`` for ``ms``; ``twist_db`` > 0 puts the column tone that far below the row."""
    index = KEYS.index(key)
    row_hz = goertzel.ROW_HZ[index // 4] * (1 + row_offset)
    column_hz = goertzel.COLUMN_HZ[index % 4] * (1 + column_offset)
    t = np.arange(round(ms * RATE_HZ / 1000)) / RATE_HZ
    row = amplitude(level_dbm0) * np.sin(2 * np.pi * row_hz * t + 0.3)
    column = amplitude(level_dbm0 - twist_db) * np.sin(2 * np.pi * column_hz * t + 1.1)
    return row + column


def at_level(signal: Signal, rms_dbm0: float) -> Signal:
    """Scale to an RMS level: the level of a sine of the same power."""
    rms = np.sqrt(np.mean(signal**2))
    return signal * (amplitude(rms_dbm0) / np.sqrt(2)) / rms


def through_ulaw(signal: Signal) -> NDArray[np.int16]:
    pcm = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    return g711.ulaw_decode(g711.ulaw_encode(pcm))


def detect(
    *parts: Signal,
    detector: InbandDtmfDetector | None = None,
    frame: int = FRAME,
) -> list[DtmfDigit]:
    """Feed the parts, then 100 ms of silence, frame by frame at the frame's pace."""
    pcm = through_ulaw(np.concatenate([*parts, silence(100)]))
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % frame, dtype=np.int16)])
    detector = detector if detector is not None else InbandDtmfDetector()
    state = detector.new_state()
    digits: list[DtmfDigit] = []
    for start in range(0, len(pcm), frame):
        digits += detector.detect(pcm[start : start + frame], state, start / RATE_HZ)
    assert state.flush() is None  # the trailing silence ended everything
    return digits


def keys(digits: list[DtmfDigit]) -> str:
    return "".join(d.digit for d in digits)


# ------------------------------------------------------------------ acceptance


@pytest.mark.parametrize("level_dbm0", [-3.0, -10.0, -20.0, -30.0])
def test_all_sixteen_keys_are_detected_at_levels_down_to_minus_30_dbm0(
    impl: str, level_dbm0: float
):
    for key in KEYS:
        digits = detect(silence(60), key_tone(key, 80, level_dbm0))
        assert keys(digits) == key, (key, level_dbm0)


@pytest.mark.parametrize("duration_ms", [40, 60, 100, 250, 1000])
def test_a_tone_is_reported_once_with_its_start_and_duration(impl: str, duration_ms: int):
    digits = detect(silence(103), key_tone("5", duration_ms))
    assert len(digits) == 1
    digit = digits[0]
    assert digit.digit == "5"
    assert digit.start_rtp_ts is None
    assert abs(digit.duration_ms - duration_ms) <= 10
    assert digit.start_s == pytest.approx(0.103, abs=0.010)
    assert digit.end_s == pytest.approx(0.103 + duration_ms / 1000, abs=0.010)


@pytest.mark.parametrize("offset_ms", [0.0, 1.25, 2.5, 3.75, 5.0, 6.25, 7.5, 8.75])
def test_40_ms_tones_are_reported_and_20_ms_tones_are_not_at_any_alignment(
    impl: str, offset_ms: float
):
    assert keys(detect(silence(60 + offset_ms), key_tone("8", 40))) == "8"
    assert keys(detect(silence(60 + offset_ms), key_tone("8", 20))) == ""


def test_normal_twist_within_the_limit_is_accepted_and_beyond_it_rejected(impl: str):
    assert keys(detect(silence(60), key_tone("1", 100, twist_db=6))) == "1"
    assert keys(detect(silence(60), key_tone("1", 100, twist_db=10))) == ""


def test_reverse_twist_within_the_limit_is_accepted_and_beyond_it_rejected(impl: str):
    assert keys(detect(silence(60), key_tone("D", 100, twist_db=-3))) == "D"
    assert keys(detect(silence(60), key_tone("D", 100, twist_db=-6))) == ""


def test_a_stricter_twist_limit_rejects_what_the_default_accepts(impl: str):
    strict = InbandDtmfDetector(InbandDtmfConfig(max_normal_twist_db=4.0))
    assert keys(detect(silence(60), key_tone("9", 100, twist_db=6), detector=strict)) == ""


def test_tones_below_the_minimum_level_are_ignored(impl: str):
    assert keys(detect(silence(60), key_tone("0", 100, -42))) == ""


@pytest.mark.parametrize("offset", [-0.015, 0.015])
def test_tones_off_frequency_by_1_5_percent_are_accepted(impl: str, offset: float):
    for key in "1D5":
        tone = key_tone(key, 100, row_offset=offset, column_offset=offset)
        assert keys(detect(silence(60), tone)) == key


@pytest.mark.parametrize("offset", [-0.035, 0.035])
def test_tones_off_frequency_by_3_5_percent_are_rejected(impl: str, offset: float):
    for key in "1D5":
        tone = key_tone(key, 100, row_offset=offset, column_offset=offset)
        assert keys(detect(silence(60), tone)) == ""


def test_a_tone_in_noise_15_db_below_it_is_detected(impl: str):
    rng = np.random.default_rng(3)
    tone = key_tone("#", 120, -15)
    noise = at_level(rng.standard_normal(len(tone) + 960), -30)
    signal = noise + np.concatenate([silence(60), tone, silence(60)])
    assert keys(detect(signal)) == "#"


# ------------------------------------------------------------------ talk-off


@pytest.mark.parametrize("rms_dbm0", [-10.0, -20.0, -35.0])
def test_white_noise_never_makes_a_key(impl: str, rms_dbm0: float):
    rng = np.random.default_rng(int(-rms_dbm0))
    assert detect(at_level(rng.standard_normal(5 * RATE_HZ), rms_dbm0)) == []


@pytest.mark.parametrize(("from_hz", "to_hz"), [(300, 3400), (3400, 300), (600, 1700)])
def test_a_chirp_through_the_dtmf_band_never_makes_a_key(impl: str, from_hz: int, to_hz: int):
    t = np.arange(2 * RATE_HZ) / RATE_HZ
    phase = 2 * np.pi * (from_hz * t + (to_hz - from_hz) * t**2 / (2 * t[-1]))
    assert detect(at_level(np.sin(phase), -10)) == []


def formant_gain(hz: Signal, formants: tuple[float, ...], bandwidth_hz: float) -> Signal:
    gain = np.ones_like(hz)
    for formant in formants:
        gain = gain / np.sqrt(1 + ((hz - formant) / (bandwidth_hz / 2)) ** 2)
    return gain


def vowel(
    pitch_hz: Sequence[float], formants: tuple[float, ...], bandwidth_hz: float = 90
) -> Signal:
    """A voiced vowel: the harmonics of a gliding pitch shaped by formant resonances."""
    count = 3 * RATE_HZ
    f0 = np.interp(np.arange(count), np.linspace(0, count, len(pitch_hz)), pitch_hz)
    phase = 2 * np.pi * np.cumsum(f0) / RATE_HZ
    signal = np.zeros(count)
    for harmonic in range(1, 40):
        hz = harmonic * f0
        signal += np.where(hz < 3800, formant_gain(hz, formants, bandwidth_hz), 0) * np.sin(
            harmonic * phase
        )
    return signal


VOWELS = {
    "a": (730, 1090, 2440),
    "i": (270, 2290, 3010),
    "u": (300, 870, 2240),
    "e": (530, 1840, 2480),
    "o": (570, 840, 2410),
}


@pytest.mark.parametrize("vowel_name", sorted(VOWELS))
def test_voiced_speech_like_vowels_never_make_a_key(impl: str, vowel_name: str):
    for pitch in ([100, 130, 110], [180, 240, 200], [116.2, 116.2], [232.3, 232.3]):
        signal = at_level(vowel(pitch, VOWELS[vowel_name]), -10)
        assert detect(signal) == [], (vowel_name, pitch)


def test_the_harmonic_check_rejects_a_vowel_whose_harmonics_sit_on_a_key(impl: str):
    # 4 x 174.25 Hz = 697 Hz and 7 x 174.25 = 1219.75 Hz (1209 Hz + 0.9 %), both
    # formant peaks: only the column tone's harmonic at 2439.5 Hz gives it away.
    signal = at_level(vowel([174.25], (697, 1209, 2500), bandwidth_hz=60), -10)
    assert detect(signal) == []
    unchecked = InbandDtmfDetector(InbandDtmfConfig(min_harmonic_rejection_db=None))
    assert keys(detect(signal, detector=unchecked)) == "1"


# ------------------------------------------------------------------ sequences


def test_a_sequence_with_50_ms_gaps_gives_every_key_in_order(impl: str):
    parts = [p for key in KEYS for p in (silence(50), key_tone(key, 60))]
    digits = detect(*parts)
    assert keys(digits) == KEYS
    assert all(abs(d.duration_ms - 60) <= 10 for d in digits)


@pytest.mark.parametrize("offset_ms", [0.0, 2.5, 5.0, 7.5])
def test_the_same_key_pressed_again_after_50_ms_is_two_presses(impl: str, offset_ms: float):
    tone = key_tone("5", 60)
    digits = detect(silence(60 + offset_ms), tone, silence(50), tone, silence(50), tone)
    assert keys(digits) == "555"


def test_a_short_dropout_inside_a_key_does_not_split_it(impl: str):
    tone = key_tone("7", 100)
    digits = detect(silence(60), tone, silence(20), tone)
    assert [(d.digit, abs(d.duration_ms - 220) <= 10) for d in digits] == [("7", True)]


def test_a_different_key_straight_after_ends_the_first(impl: str):
    digits = detect(silence(60), key_tone("1", 100), key_tone("9", 100))
    assert keys(digits) == "19"
    assert digits[0].end_s <= digits[1].start_s + 0.01


def test_the_held_key_is_known_before_its_end_is_reported(impl: str):
    detector = InbandDtmfDetector()
    state = detector.new_state()
    pcm = through_ulaw(np.concatenate([silence(40), key_tone("B", 200)]))
    seen = []
    for start in range(0, len(pcm), FRAME):
        assert detector.detect(pcm[start : start + FRAME], state, start / RATE_HZ) == []
        seen.append(state.active_digit)
    assert seen[:2] == [None, None]
    assert seen[-1] == "B"
    held = state.flush()
    assert held is not None and held.digit == "B"
    assert state.active_digit is None and not state.busy


@pytest.mark.parametrize("frame", [80, 240, 320])
def test_other_packet_times_give_the_same_keys(impl: str, frame: int):
    parts = [p for key in "0#9" for p in (silence(50), key_tone(key, 60))]
    assert keys(detect(*parts, frame=frame)) == "0#9"


def test_wideband_audio_at_16_khz_is_analysed_too(impl: str):
    detector = InbandDtmfDetector(rate_hz=16000)
    state = detector.new_state()
    t = np.arange(1600) / 16000
    tone = amplitude(-10) * (np.sin(2 * np.pi * 852 * t) + np.sin(2 * np.pi * 1477 * t))
    pcm = np.rint(np.concatenate([np.zeros(960), tone, np.zeros(1600)])).astype(np.int16)
    digits = []
    for start in range(0, len(pcm), 320):
        digits += detector.detect(pcm[start : start + 320], state, start / 16000)
    assert keys(digits) == "9"


# ------------------------------------------------------------------ many calls


def test_detect_many_reports_each_call_its_own_keys(impl: str):
    detector = InbandDtmfDetector()
    plans = {0: "12", 2: "#", 3: "", 4: "ABCD"}
    calls = 5
    streams = []
    for row in range(calls):
        parts = [silence(40 + 7 * row)]
        for key in plans.get(row, "9"):
            parts += [key_tone(key, 70), silence(60)]
        streams.append(through_ulaw(np.concatenate(parts)))
    length = max(len(s) for s in streams) + 1600
    length += -length % FRAME
    frames_all = np.zeros((calls, length), dtype=np.int16)
    for row, stream in enumerate(streams):
        frames_all[row, : len(stream)] = stream
    states = [detector.new_state() for _ in range(calls)]
    found: dict[int, str] = {row: "" for row in range(calls)}
    for start in range(0, length, FRAME):
        for row, digit in detector.detect_many(
            frames_all[:, start : start + FRAME], states, start / RATE_HZ
        ):
            found[row] += digit.digit
    assert found == {0: "12", 1: "9", 2: "#", 3: "", 4: "ABCD"}


def test_calls_joining_and_leaving_keep_their_own_history(impl: str):
    detector = InbandDtmfDetector()
    a, b, c = (detector.new_state() for _ in range(3))
    tone = through_ulaw(np.concatenate([key_tone("3", 100), silence(100)]))
    tone = np.concatenate([tone, np.zeros(-len(tone) % FRAME, dtype=np.int16)])
    quiet = np.zeros(FRAME, dtype=np.int16)
    found: list[tuple[str, str]] = []
    names = {id(a): "a", id(b): "b", id(c): "c"}
    for tick, start in enumerate(range(0, len(tone), FRAME)):
        frame = tone[start : start + FRAME]
        # a sends the key throughout; b joins at tick 2 (mid-key) and c leaves at tick 3.
        batch = [a, c] if tick < 2 else [c, b, a] if tick < 3 else [b, a]
        rows = [frame if s is a else quiet for s in batch]
        for row, digit in detector.detect_many(np.stack(rows), batch, start / RATE_HZ):
            found.append((names[id(batch[row])], digit.digit))
    assert found == [("a", "3")]


def test_idle_calls_stay_idle(impl: str):
    detector = InbandDtmfDetector()
    states = [detector.new_state() for _ in range(50)]
    rng = np.random.default_rng(9)
    for tick in range(10):
        frames = (rng.standard_normal((50, FRAME)) * 300).astype(np.int16)
        assert detector.detect_many(frames, states, tick * 0.02) == []
    assert not any(state.busy for state in states)


def test_a_reset_state_forgets_the_key_in_progress(impl: str):
    detector = InbandDtmfDetector()
    state = detector.new_state()
    pcm = through_ulaw(key_tone("6", 100))
    for start in range(0, 640, FRAME):
        detector.detect(pcm[start : start + FRAME], state, start / RATE_HZ)
    assert state.active_digit == "6"
    state.reset()
    assert state.active_digit is None and not state.tail.any()


def test_bad_frames_are_refused_with_a_reason():
    detector = InbandDtmfDetector()
    state = detector.new_state()
    with pytest.raises(ValueError, match="2-D int16"):
        detector.detect_many(np.zeros((1, FRAME), dtype=np.float32), [state], 0.0)
    with pytest.raises(ValueError, match="2 states for 1 frames"):
        detector.detect_many(np.zeros((1, FRAME), dtype=np.int16), [state, state], 0.0)
    with pytest.raises(ValueError, match="not whole 80-sample blocks"):
        detector.detect_many(np.zeros((1, 100), dtype=np.int16), [state], 0.0)
    with pytest.raises(ValueError, match="rate of 8000 Hz or more"):
        InbandDtmfDetector(rate_hz=8050)
    with pytest.raises(ValueError, match="min_tone_fraction"):
        InbandDtmfConfig(min_tone_fraction=0.0)


def test_an_empty_batch_is_a_no_op():
    detector = InbandDtmfDetector()
    assert detector.detect_many(np.zeros((0, FRAME), dtype=np.int16), [], 0.0) == []


def test_levels_are_in_dbm0_on_the_g711_scale():
    assert tone_power_dbm0(32768) == pytest.approx(3.14)
    assert tone_power_dbm0(amplitude(-20)) == pytest.approx(-20)


# ------------------------------------------------------------------ kernel vs twin


def mixed_batch(ticks: int) -> NDArray[np.int16]:
    """40 calls of keys, partial keys, noise, vowels and silence: (ticks, calls, 160)."""
    rng = np.random.default_rng(11)
    length = ticks * FRAME
    rows = []
    for call in range(40):
        kind = call % 5
        if kind == 0:
            signal = np.concatenate(
                [silence(call), key_tone(KEYS[call % 16], 90, -5 - call / 2), silence(400)]
            )
        elif kind == 1:
            signal = at_level(rng.standard_normal(length), -12 - call / 4)
        elif kind == 2:
            signal = at_level(vowel([120 + call, 150], VOWELS["a"]), -10)
        elif kind == 3:
            signal = np.concatenate(
                [key_tone(KEYS[call % 16], 23 + call % 9, twist_db=call % 7 - 3), silence(500)]
            )
        else:
            signal = silence(length / 8)
        rows.append(through_ulaw(signal[:length]))
    batch = np.zeros((40, length), dtype=np.int16)
    for row, pcm in enumerate(rows):
        batch[row, : len(pcm)] = pcm
    return batch.reshape(40, ticks, FRAME).transpose(1, 0, 2)


def test_the_kernel_and_the_twin_make_the_same_decisions():
    kernel = kernel_module()
    basis, rotation = goertzel.dtmf_basis(RATE_HZ)
    limits = InbandDtmfConfig().limits()
    ticks = mixed_batch(25)
    tails_py = np.zeros((40, goertzel.TAIL_SIZE))
    tails_c = np.zeros((40, goertzel.TAIL_SIZE))
    hits = 0
    for frames in ticks:
        frames = np.ascontiguousarray(frames)
        codes_py = np.full((40, 2), 99, dtype=np.int8)
        codes_c = np.full((40, 2), 99, dtype=np.int8)
        goertzel.classify_windows_py(frames, tails_py, basis, rotation, limits, codes_py)
        kernel.classify_windows(frames, tails_c, basis, rotation, limits, codes_c)
        np.testing.assert_array_equal(codes_py, codes_c)
        # Only float32 summation order differs.
        np.testing.assert_allclose(tails_py, tails_c, rtol=1e-5, atol=0.05)
        hits += int((codes_c >= 0).sum())
    assert hits > 50  # the batch does exercise the accepting path


def test_the_kernel_and_the_twin_refuse_the_same_bad_arguments():
    kernel = kernel_module()
    basis, rotation = goertzel.dtmf_basis(RATE_HZ)
    limits = InbandDtmfConfig().limits()
    frames = np.zeros((2, FRAME), dtype=np.int16)
    for classify in (goertzel.classify_windows_py, kernel.classify_windows):
        with pytest.raises(ValueError, match=r"tails must be \(2, 25\)"):
            classify(frames, np.zeros((3, 25)), basis, rotation, limits, np.zeros((2, 2), np.int8))
        with pytest.raises(ValueError, match=r"codes must be \(2, 2\)"):
            classify(frames, np.zeros((2, 25)), basis, rotation, limits, np.zeros((2, 1), np.int8))


def test_the_kernel_reads_strided_frames():
    kernel = kernel_module()
    basis, rotation = goertzel.dtmf_basis(RATE_HZ)
    limits = InbandDtmfConfig().limits()
    wide = np.ascontiguousarray(mixed_batch(4).transpose(1, 0, 2).reshape(40, -1))
    strided = wide[:, FRAME : 2 * FRAME]  # rows 640 samples apart
    codes_view, codes_copy = np.zeros((40, 2), np.int8), np.zeros((40, 2), np.int8)
    kernel.classify_windows(strided, np.zeros((40, 25)), basis, rotation, limits, codes_view)
    kernel.classify_windows(
        np.ascontiguousarray(strided), np.zeros((40, 25)), basis, rotation, limits, codes_copy
    )
    np.testing.assert_array_equal(codes_view, codes_copy)


def test_the_selected_implementation_is_reported():
    if g711.extensions_disabled():
        assert goertzel.classify_windows is goertzel.classify_windows_py
        assert goertzel.FALLBACK_REASON == "HOTLINE_NO_EXTENSIONS is set"
    else:
        assert goertzel.USING_EXTENSION == (goertzel.load_extension()[0] is not None)


def test_a_fresh_state_has_a_zero_tail():
    state = InbandDtmfState()
    assert state.tail.shape == (goertzel.TAIL_SIZE,) and not state.tail.any()
