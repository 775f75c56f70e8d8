"""Voice activity: one start and one end per utterance, on time; noise and clicks are not speech."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from media_core.vad import VadEvent, VoiceActivityDetector, process_many

AUDIO = Path(__file__).parents[2] / "data" / "audio"
TOLERANCE_S = 0.060


def read_wav(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


SPEECH = read_wav("toothache_8k.wav")  # 1 s silence, "I have a toothache", 1.2 s silence
NOISE = read_wav("line_noise_8k.wav")  # 2 s of pink noise around -45 dBFS


def energy_truth(pcm: np.ndarray, threshold_dbfs: float = -50.0) -> tuple[float, float]:
    """First and last instant of 5 ms windows louder than the threshold."""
    windows = pcm[: len(pcm) // 40 * 40].reshape(-1, 40).astype(np.float64)
    loud = np.flatnonzero(
        10 * np.log10(np.mean(windows**2, axis=1) / 32768**2 + 1e-20) > threshold_dbfs
    )
    return loud[0] * 40 / 8000, (loud[-1] + 1) * 40 / 8000


def run(detector: VoiceActivityDetector, pcm: np.ndarray) -> list[VadEvent]:
    size = detector.frame_samples
    events: list[VadEvent] = []
    for start in range(0, len(pcm) - size + 1, size):
        events += detector.process(pcm[start : start + size], start / 8000)
    return events + detector.finish()


def with_noise(pcm: np.ndarray) -> np.ndarray:
    noise = np.resize(NOISE, len(pcm)).astype(np.int32)
    return np.clip(pcm.astype(np.int32) + noise, -32768, 32767).astype(np.int16)


def click(background: np.ndarray, at: int = 4000) -> np.ndarray:
    """A 10 ms decaying 1 kHz click near full scale."""
    t = np.arange(80)
    burst = 30000 * np.sin(2 * np.pi * 1000 * t / 8000) * np.exp(-t / 20)
    out = background.astype(np.int32)
    out[at : at + 80] += burst.astype(np.int32)
    return np.clip(out, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_an_utterance_gives_one_start_and_one_end_at_the_speech_edges(frame_ms: int):
    start_s, end_s = energy_truth(SPEECH)
    assert 0.95 < start_s < 1.05  # the fixture is what it says it is
    events = run(VoiceActivityDetector(frame_ms=frame_ms), SPEECH)
    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    assert events[0].timestamp_s == pytest.approx(start_s, abs=TOLERANCE_S)
    assert events[1].timestamp_s == pytest.approx(end_s, abs=TOLERANCE_S)


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
def test_an_utterance_over_line_noise_still_starts_and_ends_at_the_speech_edges(
    aggressiveness: int,
):
    start_s, end_s = energy_truth(SPEECH)
    events = run(VoiceActivityDetector(aggressiveness=aggressiveness), with_noise(SPEECH))
    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    assert events[0].timestamp_s == pytest.approx(start_s, abs=TOLERANCE_S)
    # The end of the speech, not of the WebRTC VAD's hidden hangover over the noise.
    assert events[1].timestamp_s == pytest.approx(end_s, abs=TOLERANCE_S)


def test_digital_silence_is_not_speech():
    detector = VoiceActivityDetector()
    assert run(detector, np.zeros(3 * 8000, dtype=np.int16)) == []
    assert not detector.is_speech


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
def test_low_line_noise_is_not_speech(aggressiveness: int, frame_ms: int):
    assert run(VoiceActivityDetector(frame_ms=frame_ms, aggressiveness=aggressiveness), NOISE) == []


def test_without_the_floor_check_the_vads_start_up_reads_noise_as_speech():
    # Why min_snr_db exists: WebRTC's noise model starts from a fixed prior.
    events = run(VoiceActivityDetector(min_snr_db=0), NOISE)
    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    assert events[1].timestamp_s <= 0.12


@pytest.mark.parametrize("at", [4000, 4040, 4090])  # frame-aligned, mid-frame, across two frames
def test_a_10ms_click_is_not_speech(at: int):
    assert run(VoiceActivityDetector(), click(np.zeros(16000, dtype=np.int16), at)) == []
    assert run(VoiceActivityDetector(), click(NOISE, at)) == []


def test_without_the_floor_check_a_click_in_noise_lasts_as_long_as_the_vads_own_hangover():
    # The WebRTC VAD answers "voiced" for 3 more 20 ms frames after the click:
    # 80 ms in all, more than start_ms. The floor check is what rejects it.
    events = run(VoiceActivityDetector(min_snr_db=0), click(NOISE, at=4000))
    start_up = run(VoiceActivityDetector(min_snr_db=0), NOISE)
    assert events[: len(start_up)] == start_up
    assert events[len(start_up) :] == [
        VadEvent("speech_start", pytest.approx(0.5)),
        VadEvent("speech_end", pytest.approx(0.58)),
    ]


def test_speech_below_the_minimum_level_is_ignored():
    whisper = (SPEECH.astype(np.float64) * 0.01).astype(np.int16)  # about -60 dBFS
    assert run(VoiceActivityDetector(), whisper) == []
    heard = run(VoiceActivityDetector(min_level_dbfs=-120.0), whisper)
    assert [e.kind for e in heard] == ["speech_start", "speech_end"]


# ------------------------------------------------- smoothing, with a scripted VAD


class ScriptedVad:
    """Stands in for webrtcvad.Vad: answers from a script of '1' (voiced) and '.'."""

    def __init__(self, script: str) -> None:
        self.answers = iter(script)

    def is_speech(self, frame: bytes, rate_hz: int) -> bool:
        assert len(frame) == 320 and rate_hz == 8000
        return next(self.answers) == "1"


LOUD = np.full(160, 3000, dtype=np.int16)


def scripted(
    script: str, **options: int
) -> tuple[VoiceActivityDetector, list[tuple[int, VadEvent]]]:
    """Feed one loud 20 ms frame per script character; frame i starts at 10 + i/50 s."""
    detector = VoiceActivityDetector(min_snr_db=0, **options)
    detector._vad = ScriptedVad(script)
    events = [(i, e) for i in range(len(script)) for e in detector.process(LOUD, 10 + i * 0.02)]
    return detector, events


def test_speech_starts_after_start_ms_of_voiced_frames_stamped_at_the_first_one():
    detector, events = scripted("..111")
    assert events == [(4, VadEvent("speech_start", pytest.approx(10.04)))]
    assert detector.is_speech


def test_a_voiced_run_shorter_than_start_ms_starts_nothing():
    detector, events = scripted("11.11.1..11.")
    assert events == []
    assert not detector.is_speech


def test_start_ms_is_rounded_up_to_whole_frames():
    _, events = scripted("11.111", start_ms=50)  # 2.5 frames -> 3
    assert events == [(5, VadEvent("speech_start", pytest.approx(10.06)))]


def test_pauses_shorter_than_the_hangover_do_not_end_the_turn():
    detector, events = scripted("111" + "." * 14 + "1" + "." * 14)
    assert [e.kind for _, e in events] == ["speech_start"]
    assert detector.is_speech


def test_speech_ends_after_hangover_ms_of_unvoiced_frames_stamped_at_the_last_voiced_frame_end():
    detector, events = scripted("1111" + "." * 15)
    assert events[1] == (18, VadEvent("speech_end", pytest.approx(10.08)))
    assert not detector.is_speech


def test_a_new_turn_can_start_after_an_end():
    _, events = scripted("111" + "." * 15 + "111")
    assert [(i, e.kind) for i, e in events] == [
        (2, "speech_start"),
        (17, "speech_end"),
        (20, "speech_start"),
    ]
    assert events[2][1].timestamp_s == pytest.approx(10.36)


def test_finish_closes_an_open_turn_and_only_once():
    detector, _ = scripted("11111...")
    assert detector.finish() == [VadEvent("speech_end", pytest.approx(10.10))]
    assert detector.finish() == []


# --------------------------------------------------------------- many calls


def test_process_many_gives_each_row_what_its_own_detector_would():
    pcm = {
        "speech": SPEECH[:24000],
        "noisy": with_noise(SPEECH)[:24000],
        "noise": np.resize(NOISE, 24000),
    }
    rows = list(pcm.values())
    batch = [VoiceActivityDetector() for _ in rows]
    alone = [VoiceActivityDetector() for _ in rows]
    got: list[tuple[int, VadEvent]] = []
    expected: list[tuple[int, VadEvent]] = []
    for start in range(0, 24000, 160):
        frames = np.stack([row[start : start + 160] for row in rows])
        got += process_many(batch, frames, start / 8000)
        for index, detector in enumerate(alone):
            expected += [(index, e) for e in detector.process(frames[index], start / 8000)]
    assert got == expected
    assert {row for row, _ in got} == {0, 1}  # the noise row never speaks


def test_process_many_takes_a_timestamp_per_row():
    detectors = [VoiceActivityDetector(min_snr_db=0) for _ in range(2)]
    for detector, script in zip(detectors, ["111", "..."], strict=True):
        detector._vad = ScriptedVad(script)
    events = []
    for i in range(3):
        events += process_many(detectors, np.stack([LOUD, LOUD]), [5.0 + i * 0.02, 7.0 + i * 0.02])
    assert events == [(0, VadEvent("speech_start", 5.0))]


def test_process_many_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="2 frames for 1 detectors"):
        process_many([VoiceActivityDetector()], np.zeros((2, 160), dtype=np.int16), 0.0)
    with pytest.raises(ValueError, match="240-sample frames"):
        process_many([VoiceActivityDetector(frame_ms=30)], np.zeros((1, 160), dtype=np.int16), 0.0)
    with pytest.raises(ValueError, match="timestamp"):
        process_many([VoiceActivityDetector()], np.zeros((1, 160), dtype=np.int16), [0.0, 1.0])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"frame_ms": 25}, "10, 20 or 30 ms frames, not 25 ms"),
        ({"frame_ms": 40}, "10, 20 or 30 ms frames"),
        ({"rate_hz": 11025}, "not 11025 Hz"),
        ({"aggressiveness": 4}, "0, 1, 2 or 3"),
        ({"start_ms": -20}, "start_ms"),
        ({"hangover_ms": -1}, "hangover_ms"),
    ],
)
def test_settings_the_webrtc_vad_cannot_run_are_refused_at_construction(
    options: dict, message: str
):
    with pytest.raises(ValueError, match=message):
        VoiceActivityDetector(**options)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros(159, dtype=np.int16),
        np.zeros(160, dtype=np.float32),
        np.zeros((1, 160), dtype=np.int16),
    ],
)
def test_a_frame_of_the_wrong_size_or_type_is_refused(frame: np.ndarray):
    with pytest.raises(ValueError, match="160 int16 samples"):
        VoiceActivityDetector().process(frame, 0.0)


def test_16khz_frames_are_accepted():
    detector = VoiceActivityDetector(rate_hz=16000, frame_ms=10)
    assert detector.frame_samples == 160
    assert detector.process(np.zeros(160, dtype=np.int16), 0.0) == []


# ---------------------------------------------------------------- the echo guard


def run_with_reference(
    detector: VoiceActivityDetector, pcm: np.ndarray, reference: np.ndarray
) -> list[VadEvent]:
    """Feed frame by frame through ``process_many`` with what the leg was sent."""
    size = detector.frame_samples
    events: list[VadEvent] = []
    for start in range(0, len(pcm) - size + 1, size):
        rows = process_many(
            [detector],
            pcm[None, start : start + size],
            start / 8000,
            reference=reference[None, start : start + size],
        )
        events += [event for _, event in rows]
    return events + detector.finish()


def scaled(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    return np.clip(pcm.astype(np.float64) * 10 ** (gain_db / 20), -32768, 32767).astype(np.int16)


def delayed(pcm: np.ndarray, delay_ms: int) -> np.ndarray:
    shift = delay_ms * 8
    return np.concatenate([np.zeros(shift, np.int16), pcm[: len(pcm) - shift]])


@pytest.mark.parametrize("delay_ms", [20, 100, 250])
def test_our_prompt_coming_back_10db_down_is_not_the_caller_speaking(delay_ms: int):
    prompt = SPEECH  # what we send the caller
    echo = scaled(delayed(prompt, delay_ms), -10.0)
    assert run(VoiceActivityDetector(), echo), "without a reference the echo reads as speech"
    assert run_with_reference(VoiceActivityDetector(), echo, prompt) == []


def test_the_caller_talking_over_the_prompt_at_its_level_is_speech():
    prompt = np.roll(SPEECH, 4000)  # our prompt, out of step with the caller
    caller = SPEECH.astype(np.int32) + scaled(delayed(prompt, 100), -10.0)
    caller = np.clip(caller, -32768, 32767).astype(np.int16)
    events = run_with_reference(VoiceActivityDetector(), caller, prompt)
    assert [e.kind for e in events][:1] == ["speech_start"]
    start, _ = energy_truth(SPEECH)
    assert abs(events[0].timestamp_s - start) < TOLERANCE_S


def test_the_reference_is_forgotten_after_the_echo_tail():
    # The prompt ends; the caller answers softly 400 ms later (past a 300 ms tail).
    prompt = np.zeros_like(SPEECH)
    prompt[:4800] = scaled(SPEECH[8000:12800], 6.0)
    caller = scaled(SPEECH, -12.0)
    events = run_with_reference(VoiceActivityDetector(echo_tail_ms=300), caller, prompt)
    assert [e.kind for e in events] == ["speech_start", "speech_end"]


def test_process_many_refuses_a_reference_of_another_shape():
    with pytest.raises(ValueError, match="reference"):
        process_many(
            [VoiceActivityDetector()],
            np.zeros((1, 160), np.int16),
            0.0,
            reference=np.zeros((1, 80), np.int16),
        )


def test_tune_changes_start_and_hangover_mid_call():
    detector = VoiceActivityDetector(start_ms=60, hangover_ms=300)
    detector.tune(start_ms=200, hangover_ms=500)
    events = run(detector, SPEECH)
    start, end = energy_truth(SPEECH)
    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    assert abs(events[1].timestamp_s - end) < TOLERANCE_S
    with pytest.raises(ValueError, match="hangover_ms"):
        detector.tune(hangover_ms=-1)
