"""TTS with the real engines (hibari "heart", espeak-ng), and the telephone line."""

from __future__ import annotations

import logging
import struct
import sys

import numpy as np
import pytest

from ivr.tts import (
    EspeakSynthesizer,
    FliteSynthesizer,
    HibariSynthesizer,
    SynthesisError,
    SynthesizerUnavailableError,
    default_synthesizer,
    parse_wav,
    synthesizer_named,
    telephone_quality,
)
from media_core import g711

TEXT = "Please tell me the reason for your call."


@pytest.fixture(scope="module")
def hibari() -> HibariSynthesizer:
    synthesizer = HibariSynthesizer()
    synthesizer.load()
    return synthesizer


@pytest.fixture(scope="module")
def hibari_speech(hibari: HibariSynthesizer) -> tuple[np.ndarray, int]:
    return hibari.synthesize(TEXT)


def speech_level_dbfs(pcm: np.ndarray, rate_hz: int = 8000) -> float:
    """RMS over the 20 ms frames within 30 dB of the loudest: the speech, not the pauses."""
    x = pcm.astype(np.float64) / 32768
    frame = rate_hz // 50
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    active = rms[rms >= rms.max() * 10 ** (-30 / 20)]
    return float(20 * np.log10(np.sqrt(np.mean(active**2))))


def is_ulaw_exact(pcm: np.ndarray) -> bool:
    """Every sample is a µ-law reconstruction value: it survives another round trip."""
    return bool(np.array_equal(g711.ulaw_decode(g711.ulaw_encode(pcm)), pcm))


# --- hibari ----------------------------------------------------------------------------------


def test_hibari_speaks_24khz_float_of_a_plausible_length(hibari_speech):
    samples, rate_hz = hibari_speech
    assert rate_hz == 24000
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Eight words: between one and five seconds, and not silence.
    assert 1.0 < len(samples) / rate_hz < 5.0
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 0.01
    assert np.max(np.abs(samples)) <= 1.0


def test_hibari_gives_the_same_samples_for_the_same_text(hibari, hibari_speech):
    again, _ = hibari.synthesize(TEXT)
    assert np.array_equal(again, hibari_speech[0])


def test_hibari_names_its_voice_and_any_setting_that_changes_the_audio():
    assert HibariSynthesizer().name == "hibari:heart"
    assert HibariSynthesizer(speed=1.2).name == "hibari:heart:speed=1.2"
    assert HibariSynthesizer(seed=7).name == "hibari:heart:seed=7"


def test_a_hibari_voice_not_on_this_machine_is_refused_not_downloaded(tmp_path, monkeypatch):
    # An empty cache: a non-bundled voice would have to be downloaded.
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path))
    with pytest.raises(SynthesizerUnavailableError, match="not on this machine"):
        HibariSynthesizer("emma").synthesize("hello")
    assert list(tmp_path.iterdir()) == []  # nothing was fetched into the cache


def test_an_unknown_hibari_voice_is_unavailable():
    with pytest.raises(SynthesizerUnavailableError, match="unknown voice"):
        HibariSynthesizer("no-such-voice").load()


def test_hibari_speed_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="speed"):
        HibariSynthesizer(speed=3.0)


# --- espeak-ng --------------------------------------------------------------------------------


def test_espeak_speaks_22khz_int16_of_a_plausible_length():
    samples, rate_hz = EspeakSynthesizer().synthesize(TEXT)
    assert rate_hz == 22050
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert 1.0 < len(samples) / rate_hz < 5.0
    assert np.max(np.abs(samples)) > 1000


def test_espeak_speed_changes_the_length_and_the_name():
    slow = EspeakSynthesizer(rate_wpm=120)
    fast = EspeakSynthesizer(rate_wpm=240)
    slow_samples, _ = slow.synthesize(TEXT)
    fast_samples, _ = fast.synthesize(TEXT)
    assert len(slow_samples) > 1.5 * len(fast_samples)
    assert slow.name == "espeak-ng:en-us:s=120" and fast.name == "espeak-ng:en-us:s=240"
    assert EspeakSynthesizer().name == "espeak-ng:en-us"
    assert EspeakSynthesizer(pitch=60).name == "espeak-ng:en-us:p=60"


def test_espeak_reads_text_that_looks_like_an_option():
    # The text goes in on stdin: "-h" is spoken, not taken for --help.
    samples, rate_hz = EspeakSynthesizer().synthesize("-h minus h")
    assert len(samples) / rate_hz > 0.3


def test_an_unknown_espeak_voice_is_a_synthesis_error():
    with pytest.raises(SynthesisError, match="exited with"):
        EspeakSynthesizer("xx-no-such-voice").synthesize("hello")


def test_a_missing_espeak_program_is_unavailable(tmp_path):
    missing = EspeakSynthesizer(executable=str(tmp_path / "espeak-ng"))
    assert not missing.available()
    with pytest.raises(SynthesizerUnavailableError, match="not installed"):
        missing.synthesize("hello")


def test_flite_speaks_16khz_int16_of_a_plausible_length():
    samples, rate_hz = FliteSynthesizer("rms").synthesize(TEXT)
    assert rate_hz == 16000
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert 1.0 < len(samples) / rate_hz < 5.0
    assert np.max(np.abs(samples)) > 1000
    assert FliteSynthesizer("slt").name == "flite:slt"


def test_a_missing_flite_program_is_unavailable(tmp_path):
    with pytest.raises(SynthesizerUnavailableError, match="not installed"):
        FliteSynthesizer(executable=str(tmp_path / "flite")).synthesize("hello")


def test_engines_are_named_as_config_and_command_line_name_them():
    assert synthesizer_named("hibari").name == "hibari:heart"
    assert synthesizer_named("espeak-ng").name == "espeak-ng:en-us"
    assert synthesizer_named("flite").name == "flite:rms"
    with pytest.raises(ValueError, match="unknown voice 'festival'"):
        synthesizer_named("festival")


def test_espeak_settings_outside_their_range_are_refused():
    with pytest.raises(ValueError, match="rate_wpm"):
        EspeakSynthesizer(rate_wpm=10)
    with pytest.raises(ValueError, match="pitch"):
        EspeakSynthesizer(pitch=100)


# --- default_synthesizer --------------------------------------------------------------------


def test_the_default_is_hibari_heart():
    assert default_synthesizer().name == "hibari:heart"


def test_without_hibari_the_default_falls_back_to_espeak_with_a_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "hibari", None)  # import hibari now fails
    with caplog.at_level(logging.WARNING, logger="hotline.ivr.tts"):
        synthesizer = default_synthesizer()
    assert synthesizer.name == "espeak-ng:en-us"
    assert "hibari-tts unavailable" in caplog.text
    samples, _ = synthesizer.synthesize("hello")
    assert len(samples) > 0


def test_with_neither_engine_the_error_names_both(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "hibari", None)
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on it
    with pytest.raises(SynthesizerUnavailableError, match="hibari-tts is not installed.*espeak-ng"):
        default_synthesizer()


# --- parse_wav --------------------------------------------------------------------------------


def wav_bytes(
    pcm: np.ndarray, rate_hz: int, *, declared: int | None = None, bits: int = 16
) -> bytes:
    data = pcm.astype("<i2").tobytes()
    size = len(data) if declared is None else declared
    fmt = struct.pack("<HHIIHH", 1, 1, rate_hz, rate_hz * 2, 2, bits)
    return (
        b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", size) + data
    )  # fmt: skip


def test_parse_wav_reads_a_streamed_wav_whose_sizes_are_placeholders():
    pcm = np.arange(-500, 500, dtype=np.int16)
    # espeak-ng --stdout declares ~2 GB of data: the data ends where the bytes end.
    samples, rate_hz = parse_wav(wav_bytes(pcm, 22050, declared=0x7FFFF000))
    assert rate_hz == 22050
    assert np.array_equal(samples, pcm)


def test_parse_wav_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="RIFF"):
        parse_wav(b"OggS" + bytes(40))
    with pytest.raises(ValueError, match="16-bit"):
        parse_wav(wav_bytes(np.zeros(4, np.int16), 8000, bits=8))
    with pytest.raises(ValueError, match="no data chunk"):
        parse_wav(wav_bytes(np.zeros(4, np.int16), 8000)[:36])


# --- telephone_quality ------------------------------------------------------------------------


def test_telephone_quality_is_8khz_int16_at_the_telephone_level(hibari_speech):
    samples, rate_hz = hibari_speech
    line = telephone_quality(samples, rate_hz)
    assert line.dtype == np.int16 and line.ndim == 1
    assert len(line) == -(-len(samples) * 8000 // rate_hz)
    assert speech_level_dbfs(line) == pytest.approx(-18.0, abs=1.0)
    assert np.max(np.abs(line.astype(np.int32))) < 32767 * 0.95  # no clipping
    assert is_ulaw_exact(line)


def test_telephone_quality_levels_a_quiet_int16_voice_the_same_way():
    samples, rate_hz = EspeakSynthesizer().synthesize(TEXT)
    quiet = (samples // 20).astype(np.int16)  # -26 dB
    line = telephone_quality(quiet, rate_hz)
    assert speech_level_dbfs(line) == pytest.approx(-18.0, abs=1.0)
    assert is_ulaw_exact(line)


def test_the_level_gives_way_to_the_peak_limit():
    # Clicks: reaching -18 dBFS RMS would need peaks far above full scale.
    clicks = np.zeros(8000, dtype=np.float32)
    clicks[::400] = 0.5
    line = telephone_quality(clicks, 8000)
    peak_dbfs = 20 * np.log10(np.max(np.abs(line.astype(np.float64))) / 32768)
    assert -1.5 < peak_dbfs <= -0.9  # at the limit (-1 dBFS), within one µ-law step


def test_trim_removes_leading_and_trailing_silence(hibari_speech):
    samples, rate_hz = hibari_speech
    silence = np.zeros(rate_hz, dtype=np.float32)
    padded = np.concatenate((silence, samples, silence))
    untrimmed = telephone_quality(padded, rate_hz)
    trimmed = telephone_quality(padded, rate_hz, trim=True)
    assert len(untrimmed) == -(-len(padded) * 8000 // rate_hz)
    # The two added seconds are gone, and at most the engine's own pauses with them.
    speech_s = len(samples) / rate_hz
    assert speech_s - 0.8 < len(trimmed) / 8000 <= speech_s + 0.1
    # What is left starts and ends quietly (the 30 ms margins), and speech is intact.
    assert np.max(np.abs(trimmed[:80].astype(np.int32))) < 300
    assert speech_level_dbfs(trimmed) == pytest.approx(-18.0, abs=1.0)


def test_silence_stays_silence():
    assert np.array_equal(telephone_quality(np.zeros(2400, np.float32), 24000), np.zeros(800))
    assert len(telephone_quality(np.zeros(2400, np.float32), 24000, trim=True)) == 0
    assert len(telephone_quality(np.zeros(0, np.int16), 22050)) == 0


def test_a_wideband_line_skips_the_ulaw_round_trip(hibari_speech):
    samples, rate_hz = hibari_speech
    wide = telephone_quality(samples, rate_hz, out_hz=16000, ulaw=False)
    assert len(wide) == -(-len(samples) * 16000 // rate_hz)
    assert not is_ulaw_exact(wide)


def test_telephone_quality_refuses_what_is_not_mono_samples():
    with pytest.raises(ValueError, match="1-D"):
        telephone_quality(np.zeros((2, 100), np.int16), 8000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int32"):
        telephone_quality(np.zeros(100, np.int32), 8000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        telephone_quality(np.array([0.0, np.nan], np.float32), 8000)
