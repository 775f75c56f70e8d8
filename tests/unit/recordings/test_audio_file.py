"""Reading recordings back: WAV and Ogg Opus as the media core writes them."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from calls import place, speech, write_call

from recordings.audio_file import format_of, probe, read_stereo


def _tones(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(round(seconds * 8000)) / 8000
    left = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    right = (np.sin(2 * np.pi * 300 * t) * 4000).astype(np.int16)
    return left, right


def test_a_wav_recording_reads_back_sample_for_sample(tmp_path: Path):
    caller = place(4.0, (1.0, speech("en_chest")))
    agent = place(4.0, (0.2, speech("en_yes")))
    path = write_call(tmp_path / "2026-12-02" / "call.wav", caller, agent)
    info = probe(path)
    assert (info.fmt, info.duration_s, info.size_bytes) == ("wav", 4.0, 44 + 4 * 8000 * 4)
    stereo = read_stereo(path)
    assert stereo.dtype == np.int16 and stereo.shape == (2, 32000)
    assert np.array_equal(stereo[0], caller) and np.array_equal(stereo[1], agent)


def test_an_ogg_recording_decodes_to_8_khz_with_both_channels_apart(tmp_path: Path):
    left, right = _tones(3.0)
    path = write_call(tmp_path / "call.ogg", left, right)
    info = probe(path)
    assert info.fmt == "ogg" and info.duration_s == pytest.approx(3.0, abs=0.02)
    assert info.size_bytes == path.stat().st_size
    stereo = read_stereo(path)
    assert stereo.shape == (2, 24000)
    # Lossy, but each channel is still its own tone at its own level.
    for row, (reference, peak) in enumerate(((left, 8000), (right, 4000))):
        middle = slice(4000, 20000)
        correlation = np.corrcoef(stereo[row, middle].astype(float), reference[middle])[0, 1]
        assert correlation > 0.9
        rms = np.sqrt(np.mean(stereo[row, middle].astype(float) ** 2))
        assert rms == pytest.approx(peak / np.sqrt(2), rel=0.15)


def test_a_mono_file_is_read_as_both_channels(tmp_path: Path):
    path = tmp_path / "mono.wav"
    pcm = speech("en_yes")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(pcm.tobytes())
    stereo = read_stereo(path)
    assert np.array_equal(stereo[0], pcm) and np.array_equal(stereo[1], pcm)


def test_bad_files_get_clear_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="not a .wav or .ogg"):
        format_of("call.mp3")
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "missing.wav")
    with pytest.raises(FileNotFoundError):
        read_stereo(tmp_path / "missing.ogg")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not a wave")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        probe(broken)
    garbage = tmp_path / "garbage.ogg"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError):
        read_stereo(garbage)
