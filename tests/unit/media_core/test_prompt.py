"""Prompts: any audio file decoded once to 8 kHz mono, played by frames; barge-in is instant."""

from __future__ import annotations

import os
import random
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from media_core import g711
from media_core.prompt import PromptCache, PromptPlayer, decode_prompt, fill_frames
from media_core.tick import MediaTick

AUDIO = Path(__file__).parents[2] / "data" / "audio"
SPEECH_AT = 8000  # the WAV fixture's speech starts after 1 s of silence
SPEECH_SAMPLES_8K = 10855  # espeak-ng's 29918 samples at 22.05 kHz, at 8 kHz (rounded up)


def read_wav(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


WAV = read_wav("toothache_8k.wav")
SPEECH = WAV[SPEECH_AT : SPEECH_AT + SPEECH_SAMPLES_8K]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


def frames_of(player: PromptPlayer, samples: int = 160) -> list[np.ndarray]:
    frames = []
    while (frame := player.next_frame(samples)) is not None:
        frames.append(frame)
    return frames


# -------------------------------------------------------------------- decoding


def test_an_8khz_mono_wav_decodes_to_its_samples_unchanged():
    pcm = PromptCache().load(AUDIO / "toothache_8k.wav")
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    np.testing.assert_array_equal(pcm, WAV)


def test_an_ogg_opus_file_decodes_to_8khz_at_the_right_length():
    pcm = PromptCache().load(AUDIO / "toothache_48k.opus")
    assert len(pcm) == SPEECH_SAMPLES_8K  # 1.357 s, Opus pre-skip removed
    assert correlation(pcm, SPEECH) > 0.9


def test_a_22khz_stereo_flac_is_downmixed_and_resampled_to_8khz():
    pcm = PromptCache().load(AUDIO / "toothache_22k_stereo.flac")
    assert len(pcm) == SPEECH_SAMPLES_8K
    assert correlation(pcm, SPEECH) > 0.99
    # Left is the speech, right the speech at half level: the mono mix is 3/4 of it.
    gain = float(np.dot(pcm.astype(float), SPEECH) / np.dot(SPEECH.astype(float), SPEECH))
    assert gain == pytest.approx(0.75, abs=0.02)


def test_decoding_to_another_rate_gives_that_rate():
    pcm = decode_prompt(AUDIO / "toothache_8k.wav", rate_hz=16000)
    assert len(pcm) == 2 * len(WAV)


def test_a_file_that_is_not_audio_is_refused(tmp_path: Path):
    text = tmp_path / "prompt.wav"
    text.write_text("this is not a WAV file\n" * 20)
    with pytest.raises(ValueError, match="cannot decode"):
        PromptCache().load(text)


def test_a_missing_file_is_reported_as_such(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        PromptCache().load(tmp_path / "nowhere.wav")


# --------------------------------------------------------------------- caching


def test_a_prompt_is_decoded_once_and_shared_read_only():
    cache = PromptCache()
    first = cache.load(AUDIO / "toothache_48k.opus")
    again = cache.load(str(AUDIO / "toothache_48k.opus"))
    assert again is first
    assert cache.decodes == 1
    assert AUDIO / "toothache_48k.opus" in cache
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 1


def test_a_changed_file_is_decoded_again(tmp_path: Path):
    path = tmp_path / "greeting.wav"
    shutil.copy(AUDIO / "toothache_8k.wav", path)
    cache = PromptCache()
    first = cache.load(path)
    with wave.open(str(path), "wb") as wav:  # re-recorded: half of it
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(WAV[: len(WAV) // 2].tobytes())
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = cache.load(path)
    assert cache.decodes == 2
    assert len(second) == len(WAV) // 2 and len(first) == len(WAV)


def test_the_least_recently_loaded_prompt_is_dropped_when_the_cache_is_full():
    cache = PromptCache(max_entries=2)
    wav, opus, flac = (
        AUDIO / n for n in ("toothache_8k.wav", "toothache_48k.opus", "toothache_22k_stereo.flac")
    )
    cache.load(wav)
    cache.load(opus)
    cache.load(wav)  # now opus is the oldest
    cache.load(flac)
    assert wav in cache and flac in cache and opus not in cache
    assert len(cache) == 2
    cache.forget(wav)
    assert wav not in cache
    cache.clear()
    assert len(cache) == 0


# -------------------------------------------------------------------- playback


def test_playback_frames_join_into_the_prompt_then_stop():
    player = PromptPlayer()
    player.start(SPEECH)
    assert player.playing and player.duration_ms == pytest.approx(1356.875)
    frames = frames_of(player)
    assert len(frames) == -(-len(SPEECH) // 160)
    assert all(len(f) == 160 for f in frames)
    joined = np.concatenate(frames)
    np.testing.assert_array_equal(joined[: len(SPEECH)], SPEECH)
    assert not joined[len(SPEECH) :].any()  # the last frame is padded with silence
    assert not player.playing and player.completed
    assert player.next_frame(160) is None


def test_position_advances_by_the_frame_duration():
    player = PromptPlayer()
    player.start(SPEECH)
    player.next_frame(160)
    player.next_frame(160)
    assert player.position_ms == 40.0


def test_stop_mid_prompt_gives_no_more_prompt_audio_from_the_next_frame():
    player = PromptPlayer()
    player.start(SPEECH)
    for _ in range(10):
        assert player.next_frame(160) is not None
    player.stop()
    assert not player.playing
    assert player.next_frame(160) is None
    out = np.full(160, 99, dtype=np.int16)
    player.read_into(out)
    assert not out.any()
    assert not player.completed  # stopped, not played out
    assert player.position_ms == 200.0


def test_starting_a_prompt_replaces_the_one_playing():
    player = PromptPlayer()
    player.start(SPEECH)
    player.next_frame(160)
    other = np.arange(320, dtype=np.int16)
    player.start(other)
    np.testing.assert_array_equal(np.concatenate(frames_of(player)), other)


def test_an_empty_prompt_is_done_at_once():
    player = PromptPlayer()
    player.start(np.zeros(0, dtype=np.int16))
    assert player.completed and not player.playing
    assert player.next_frame(160) is None


@pytest.mark.parametrize("pcm", [np.zeros(10, dtype=np.float32), np.zeros((2, 10), dtype=np.int16)])
def test_a_prompt_must_be_1d_int16(pcm: np.ndarray):
    with pytest.raises(ValueError, match="1-D int16"):
        PromptPlayer().start(pcm)


# ------------------------------------------------------------ the tick's view


def test_fill_frames_serves_every_call_in_one_array_and_reports_prompts_that_end():
    short = np.arange(1, 401, dtype=np.int16)  # 2.5 frames
    players = [PromptPlayer() for _ in range(4)]
    twins = [PromptPlayer() for _ in range(4)]
    for pair in (players, twins):
        pair[0].start(SPEECH)
        pair[1].start(short)
        pair[3].start(SPEECH)
    rows: list[PromptPlayer | None] = [players[0], players[1], None, players[3]]
    out = np.full((4, 160), 7, dtype=np.int16)
    finished_at = {}
    for tick in range(4):
        if tick == 1:
            players[3].stop()
            twins[3].stop()
        for row in fill_frames(rows, out):
            finished_at[row] = tick
        for row, twin in enumerate([twins[0], twins[1], None, twins[3]]):
            frame = twin.next_frame(160) if twin is not None else None
            np.testing.assert_array_equal(out[row], frame if frame is not None else 0)
    assert finished_at == {1: 2}  # the short prompt ends on the 3rd frame; a stop is no end


def test_a_player_is_a_pcm_source_for_the_media_tick():
    tick = MediaTick(rng=random.Random(1))
    player = PromptPlayer()
    player.start(SPEECH)
    tick.add_stream("PCMU", 0, player, ("192.0.2.1", 4000))
    for index in range(3):
        [(_, datagram, _)] = tick.tick(now=index * 0.02)
        assert datagram[12:] == g711.ulaw_encode(SPEECH[index * 160 : (index + 1) * 160])
