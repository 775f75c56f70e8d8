"""The call recording holds both directions, proven with a PJSIP phone (pjsua2-python).

The phone (``pjsua_caller.py``, its own process) calls the hotline as a plain
caller and plays a known utterance into the call, as its microphone would. The
server greets it with a committed prompt. Afterwards the stereo recording must
hold, by cross-correlation against the source files: on the LEFT what the phone
sent (after a trip through G.711 and both jitter buffers), on the RIGHT what the
phone heard from us (the prompt, then the 440 Hz tone), and neither in the
other channel.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.integration.helpers import (
    REPO,
    HotlineProcess,
    best_alignment,
    dominant_frequency_hz,
    read_wav,
    recordings,
    rms,
    run_pjsua_caller,
    trim_silence,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("pjsua2") is None,
        reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
    ),
]

CALLER_WAV = REPO / "tests/data/audio/toothache_8k.wav"  # speech from 1.000 s to ~2.36 s
PROMPT_WAV = REPO / "tests/data/media/greeting_prompt_8k.wav"  # 1.82 s, starts at once
RATE_HZ = 8000
HOLD_S = 4.0


def test_recording_has_the_callers_audio_on_the_left_and_our_prompt_then_tone_on_the_right(
    hotline_factory: Callable[..., HotlineProcess], tmp_path: Path
) -> None:
    server = hotline_factory(
        config_yaml=f"media:\n  greeting_prompt: {PROMPT_WAV}\n  recording_format: wav\n"
    )

    caller = run_pjsua_caller(
        server.sip_port, tmp_path / "caller", "--play", str(CALLER_WAV), "--hold-s", str(HOLD_S)
    )

    context = caller.describe()
    assert caller.one("call_answered")["ok"] is True, context
    assert str(caller.one("media_active")["codec"]).startswith("PCMU/"), context
    assert caller.one("call_ended")["ok"] is True and caller.returncode == 0, context
    call_id = str(caller.one("media_active")["call_id"])
    assert server.wait_log(f"[{call_id}] ended", timeout_s=5), server.log_text()[-2000:]
    # The writer thread closes the file a moment after the call ends; a clean stop
    # waits for it.
    assert server.stop() == 0, server.log_text()[-2000:]
    [path] = recordings(server.workdir / "data")
    # pjsua's call-ids hold only letters, digits, '-' and '.', which file names keep.
    assert path.name == f"{call_id}.wav", path
    rate_hz, stereo = read_wav(path)
    assert (rate_hz, stereo.shape[1]) == (RATE_HZ, 2)
    # From the answer to the BYE: the caller held the call HOLD_S after its media came up.
    assert HOLD_S - 0.3 <= len(stereo) / rate_hz <= HOLD_S + 1.0, len(stereo) / rate_hz
    left, right = stereo[:, 0], stereo[:, 1]

    _, sent = read_wav(CALLER_WAV)
    speech = trim_silence(sent[:, 0])
    _, prompt_file = read_wav(PROMPT_WAV)
    prompt = prompt_file[:, 0]

    # LEFT: the phone started its WAV when media came up, which on loopback is
    # the answer, i.e. the recording's start. The speech sits 1.0 s into the WAV;
    # the phone's bridge and our jitter buffer add some tens of ms.
    speech_at_s = (np.flatnonzero(np.abs(sent[:, 0]) > 0.02 * np.abs(sent).max())[0]) / RATE_HZ
    left_peak, left_lag_s = best_alignment(left, speech, rate_hz, 0.0)
    # G.711 alone leaves ~0.999 (measured 0.9999); a lost or misplaced frame in the
    # utterance's 1.36 s pulls it well below 0.9.
    assert left_peak > 0.9, (left_peak, left_lag_s)
    assert speech_at_s - 0.05 <= left_lag_s <= speech_at_s + 0.6, (left_lag_s, speech_at_s)
    # The caller was silent before its WAV's speech: no leak of our prompt there.
    assert rms(left[: int((left_lag_s - 0.1) * rate_hz)]) < 30

    # RIGHT: our prompt, sample-exact (no codec on this side), from the first tick on.
    right_peak, right_lag_s = best_alignment(right, prompt, rate_hz, 0.0)
    assert right_peak > 0.95, (right_peak, right_lag_s)
    assert right_lag_s <= 0.2, right_lag_s
    # Then the looped greeting tone, once the prompt has finished.
    after_prompt = right[int((right_lag_s + len(prompt) / rate_hz + 0.05) * rate_hz):]
    assert len(after_prompt) >= 0.5 * rate_hz, len(after_prompt)
    assert rms(after_prompt) > 300
    assert abs(dominant_frequency_hz(after_prompt, rate_hz) - 440.0) <= 10.0

    # The channels are not swapped or mixed: each source is absent from the other side.
    assert best_alignment(right, speech, rate_hz)[0] < 0.3
    assert best_alignment(left, prompt, rate_hz)[0] < 0.3


def test_a_g722_caller_is_answered_in_g722_and_recorded_at_the_calls_rate(
    hotline_factory: Callable[..., HotlineProcess], tmp_path: Path
) -> None:
    server = hotline_factory(config_yaml="media:\n  recording_format: wav\n")

    heard_wav = tmp_path / "heard.wav"
    caller = run_pjsua_caller(
        server.sip_port, tmp_path / "caller", "--play", str(CALLER_WAV), "--hold-s", str(HOLD_S),
        "--codec", "G722/16000", "--record", str(heard_wav),
    )

    context = caller.describe()
    assert str(caller.one("media_active")["codec"]).startswith("G722/"), context
    assert caller.one("call_ended")["ok"] is True and caller.returncode == 0, context
    assert server.stop() == 0, server.log_text()[-2000:]
    [path] = recordings(server.workdir / "data")
    rate_hz, stereo = read_wav(path)
    _, sent = read_wav(CALLER_WAV)
    speech = trim_silence(sent[:, 0])
    # G.722 from pjsua's 8 kHz bridge, decoded by PyAV and resampled to 8 kHz:
    # the caller's words are on the left, whole (a lost frame would fall below 0.8).
    left_peak, _ = best_alignment(stereo[:, 0], speech, rate_hz, 0.0)
    assert left_peak > 0.8, left_peak
    # Our encoder's G.722 decoded in PJSIP: the phone heard the 440 Hz greeting.
    heard_rate_hz, heard = read_wav(heard_wav)
    heard_mono = heard[:, 0]
    assert rms(heard_mono) > 300
    assert abs(dominant_frequency_hz(heard_mono, heard_rate_hz) - 440.0) <= 10.0
