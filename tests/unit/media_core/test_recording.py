"""Call recordings: stereo and time-aligned, playable while written, and after a kill -9."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from media_core import recording
from media_core.recording import (
    OggOpusRecorder,
    WavRecorder,
    interleave_many,
    open_recorder,
)
from media_core.resample import resample
from media_core.tone import tone_pcm

REPO = Path(__file__).parents[3]
AUDIO = REPO / "tests" / "data" / "audio"
FRAME = 160  # 20 ms at 8 kHz


def read_wav_fixture(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


CALLER = read_wav_fixture("toothache_8k.wav")[: 3 * 8000]  # speech from 1.0 s
AGENT = tone_pcm(440.0, 3000, amplitude=0.2)


def write_ticks(
    recorder: WavRecorder | OggOpusRecorder, caller: np.ndarray, agent: np.ndarray
) -> None:
    for start in range(0, len(caller), FRAME):
        recorder.write(caller[start : start + FRAME], agent[start : start + FRAME])


def decode(path: Path) -> tuple[av.AudioStream, np.ndarray]:
    """Every sample of the first audio stream, as (channels, samples)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        if stream.format.is_planar:
            return stream, np.concatenate(frames, axis=1)
        packed = np.concatenate(frames, axis=1)[0]
        return stream, packed.reshape(-1, stream.channels).T


def wav_sizes(path: Path) -> tuple[int, int]:
    """The RIFF and data chunk sizes the header claims."""
    header = path.read_bytes()[:44]
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt " and header[36:40] == b"data"
    return struct.unpack_from("<I", header, 4)[0], struct.unpack_from("<I", header, 40)[0]


def best_correlation(decoded: np.ndarray, original: np.ndarray, max_lag: int = 40) -> float:
    """The highest correlation over small lags (the codec may shift a few samples)."""
    a, b = decoded.astype(np.float64), original.astype(np.float64)
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b[: len(b) - lag]) if lag >= 0 else (a[: len(a) + lag], b[-lag:])
        n = min(len(x), len(y))
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


# ---------------------------------------------------------------------- WAV


def test_a_wav_recording_decodes_to_exactly_the_caller_left_and_the_agent_right(tmp_path: Path):
    path = tmp_path / "call.wav"
    with WavRecorder(path) as recorder:
        write_ticks(recorder, CALLER, AGENT)
    stream, pcm = decode(path)
    assert (stream.codec_context.name, stream.rate, stream.channels) == ("pcm_s16le", 8000, 2)
    np.testing.assert_array_equal(pcm[0], CALLER)
    np.testing.assert_array_equal(pcm[1], AGENT)


def test_after_close_the_wav_header_sizes_match_the_file(tmp_path: Path):
    path = tmp_path / "call.wav"
    recorder = WavRecorder(path)
    write_ticks(recorder, CALLER[:8040], AGENT[:8040])  # not a whole flush interval
    recorder.close()
    riff_size, data_size = wav_sizes(path)
    size = path.stat().st_size
    assert data_size == 8040 * 4 == size - 44
    assert riff_size == size - 8
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        assert wav.getnframes() == 8040


def test_while_recording_the_header_covers_all_audio_up_to_the_last_flush_interval(tmp_path: Path):
    path = tmp_path / "call.wav"
    recorder = WavRecorder(path, flush_interval_ms=500)
    assert wav_sizes(path) == (36, 0)  # a valid empty file from the start
    write_ticks(recorder, CALLER[:9600], AGENT[:9600])  # 1.2 s
    riff_size, data_size = wav_sizes(path)
    assert data_size == 8000 * 4  # patched at 0.5 s and 1.0 s
    assert riff_size == 36 + data_size
    assert path.stat().st_size >= 44 + data_size  # and those bytes are in the file
    recorder.close()


def test_fsync_runs_at_every_patch_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    synced: list[int] = []
    monkeypatch.setattr(recording.os, "fsync", synced.append)
    recorder = WavRecorder(tmp_path / "call.wav", flush_interval_ms=1000, fsync=True)
    write_ticks(recorder, CALLER[:16000], AGENT[:16000])
    recorder.close()
    assert len(synced) == 1 + 2 + 1  # the header, each second, the close


def test_a_missing_side_is_recorded_as_silence_keeping_both_channels_aligned(tmp_path: Path):
    path = tmp_path / "call.wav"
    with WavRecorder(path) as recorder:
        recorder.write(CALLER[:FRAME], None)
        recorder.write(None, AGENT[:FRAME])
    _, pcm = decode(path)
    np.testing.assert_array_equal(pcm[0], np.concatenate([CALLER[:FRAME], np.zeros(FRAME)]))
    np.testing.assert_array_equal(pcm[1], np.concatenate([np.zeros(FRAME), AGENT[:FRAME]]))


def test_position_and_clock_follow_the_samples_written(tmp_path: Path):
    recorder = WavRecorder(tmp_path / "call.wav", started_at=1234.5)
    write_ticks(recorder, CALLER[:4000], AGENT[:4000])
    assert recorder.samples_written == 4000
    assert recorder.position_s == 0.5
    assert recorder.ends_at == 1235.0
    recorder.close()


def test_interleaved_ticks_for_many_calls_record_the_same_as_separate_writes(tmp_path: Path):
    rng = np.random.default_rng(3)
    caller = rng.integers(-30000, 30000, (3, FRAME), dtype=np.int16)
    agent = rng.integers(-30000, 30000, (3, FRAME), dtype=np.int16)
    stereo = interleave_many(caller, agent)
    assert stereo.shape == (3, 2 * FRAME)
    np.testing.assert_array_equal(stereo[:, 0::2], caller)
    np.testing.assert_array_equal(stereo[:, 1::2], agent)
    for call in range(3):
        with WavRecorder(tmp_path / "a.wav") as a, WavRecorder(tmp_path / "b.wav") as b:
            a.write_interleaved(stereo[call])
            b.write(caller[call], agent[call])
        assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_interleave_many_fills_a_given_buffer():
    caller = np.ones((2, 4), dtype=np.int16)
    agent = np.full((2, 4), 2, dtype=np.int16)
    out = np.zeros((2, 8), dtype=np.int16)
    assert interleave_many(caller, agent, out) is out
    assert out.tolist() == [[1, 2] * 4] * 2
    with pytest.raises(ValueError, match="shape"):
        interleave_many(caller, agent[:, :3])


@pytest.mark.parametrize(
    ("caller", "agent", "message"),
    [
        (np.zeros(160, np.int16), np.zeros(80, np.int16), "differ in length"),
        (None, None, "needs the caller's or the agent's"),
        (np.zeros(160, np.float32), None, "int16"),
    ],
)
def test_bad_ticks_are_refused(tmp_path: Path, caller: object, agent: object, message: str):
    with WavRecorder(tmp_path / "call.wav") as recorder, pytest.raises(ValueError, match=message):
        recorder.write(caller, agent)  # type: ignore[arg-type]


def test_writing_after_close_is_an_error_and_closing_again_is_not(tmp_path: Path):
    recorder = WavRecorder(tmp_path / "call.wav")
    recorder.close()
    recorder.close()
    assert recorder.closed
    with pytest.raises(OSError, match="closed"):
        recorder.write(CALLER[:FRAME], AGENT[:FRAME])


# ------------------------------------------------------------------ Ogg Opus


def test_an_opus_recording_decodes_to_both_channels_in_place(tmp_path: Path):
    path = tmp_path / "call.ogg"
    with OggOpusRecorder(path) as recorder:
        write_ticks(recorder, CALLER, AGENT)
        assert recorder.position_s == 3.0
    stream, pcm = decode(path)
    assert (stream.codec_context.name, stream.rate, stream.channels) == ("opus", 48000, 2)
    assert pcm.shape[1] == 3 * 48000  # exactly as long as what was written
    as_int16 = np.rint(np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    left = resample(np.ascontiguousarray(as_int16[0]), 48000, 8000)
    right = resample(np.ascontiguousarray(as_int16[1]), 48000, 8000)
    assert best_correlation(left, CALLER) > 0.9
    assert best_correlation(right, AGENT) > 0.9
    assert abs(np.corrcoef(left.astype(float), AGENT.astype(float))[0, 1]) < 0.1  # not swapped


@pytest.mark.parametrize("samples", [1, 161, 1000])
def test_an_opus_recording_is_exactly_as_long_as_what_was_written(tmp_path: Path, samples: int):
    path = tmp_path / "call.ogg"
    with OggOpusRecorder(path) as recorder:
        recorder.write(np.full(samples, 1000, dtype=np.int16), None)
    _, pcm = decode(path)
    assert pcm.shape[1] == 6 * samples


def test_the_recorder_factory_picks_the_format_by_name_or_suffix(tmp_path: Path):
    for name, fmt, kind in [
        ("a.wav", None, WavRecorder),
        ("b.ogg", None, OggOpusRecorder),
        ("c.opus", None, OggOpusRecorder),
        ("d.bin", "wav", WavRecorder),
        ("e.bin", "ogg", OggOpusRecorder),
    ]:
        recorder = open_recorder(tmp_path / name, fmt)  # type: ignore[arg-type]
        assert isinstance(recorder, kind)
        recorder.close()
    with pytest.raises(ValueError, match="cannot tell"):
        open_recorder(tmp_path / "call.mp3")
    with pytest.raises(ValueError, match="'wav' or 'ogg'"):
        open_recorder(tmp_path / "call.wav", "mp3")  # type: ignore[arg-type]


# ------------------------------------------------------- surviving a SIGKILL

CHILD = """
import sys
import numpy as np
from media_core.recording import open_recorder
from media_core.tone import tone_pcm

path, ticks = sys.argv[1], int(sys.argv[2])
caller = tone_pcm(300.0, ticks * 20, amplitude=0.3)
agent = tone_pcm(700.0, ticks * 20, amplitude=0.3)
recorder = open_recorder(path)
for i in range(ticks):
    recorder.write(caller[i * 160 : (i + 1) * 160], agent[i * 160 : (i + 1) * 160])
print(recorder.position_s, flush=True)
sys.stdin.read()  # wait here, mid-call, to be killed
"""


def record_then_kill(path: Path, ticks: int) -> float:
    """Run a recorder in a subprocess, SIGKILL it after ``ticks`` ticks; seconds written."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(ticks)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        elapsed_s = float(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return elapsed_s


@pytest.mark.parametrize("suffix", ["wav", "ogg"])
def test_a_recording_killed_mid_call_keeps_all_but_the_last_second(tmp_path: Path, suffix: str):
    path = tmp_path / f"killed.{suffix}"
    elapsed_s = record_then_kill(path, ticks=275)  # 5.5 s
    assert elapsed_s == 5.5
    stream, pcm = decode(path)
    decoded_s = pcm.shape[1] / stream.rate
    assert elapsed_s - 1.0 <= decoded_s <= elapsed_s
    if suffix == "wav":
        # Lossless: what survived is exactly the start of what was written.
        survived = pcm.shape[1]
        np.testing.assert_array_equal(pcm[0], tone_pcm(300.0, 5500, amplitude=0.3)[:survived])
        np.testing.assert_array_equal(pcm[1], tone_pcm(700.0, 5500, amplitude=0.3)[:survived])
