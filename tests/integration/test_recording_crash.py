"""A recording survives ``kill -9`` of the server, playable up to the last half second.

SIPp places one call (``uac``, held 6 s). 3.25 s after the answer the test
SIGKILLs ``hotline serve``: no close, no final header patch. The recording left on
disk must still open and decode with PyAV (FFmpeg, not our code) and be as long
as the call was up to the kill, less what had not reached the file yet: the
tap's 500 ms chunk in memory, and for Ogg also the page the muxer holds back.
A WAV's RIFF and data sizes must agree with each other and with the file.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from tests.integration.helpers import (
    LOOPBACK,
    HotlineProcess,
    SippRun,
    dominant_frequency_hz,
    free_port,
    recordings,
    rms,
    wait_until,
)

pytestmark = pytest.mark.integration

# The kill lands mid-way between two 500 ms flushes, so the expected loss is not
# on a boundary where a tick's jitter decides it.
CALL_UP_S = 3.25
# What a kill may cost. WAV: the tap hands the writer 500 ms chunks and each one
# patches the header, so at most one chunk (measured 0.0-0.31 s). Ogg: that chunk,
# plus the Ogg page the muxer still holds (pages close every 250 ms; measured
# 0.43-0.93 s over kill times spread across 2.5-3.5 s).
MAX_LOST_S = {"wav": 0.6, "ogg": 1.0}


def _decode(path: Path) -> tuple[int, np.ndarray]:
    """(rate_hz, (samples, 2) on the 16-bit scale) of the whole file, decoded by FFmpeg."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.channels == 2, stream.channels
        blocks = []
        for frame in container.decode(stream):
            array = frame.to_ndarray()
            # Packed formats come as (1, samples * 2), planar ones as (2, samples).
            block = array.reshape(-1, 2) if frame.format.is_packed else array.T
            # PCM decodes to s16; Opus to floats in [-1, 1].
            scale = 32768.0 if np.issubdtype(array.dtype, np.floating) else 1.0
            blocks.append(block.astype(np.float64) * scale)
        rate_hz = stream.rate
    return rate_hz, np.concatenate(blocks)


@pytest.mark.parametrize("recording_format", ["wav", "ogg"])
def test_recording_of_a_call_up_when_the_server_is_sigkilled_plays_to_within_a_second_of_the_kill(
    sipp: str, hotline_factory: Callable[..., HotlineProcess], tmp_path: Path,
    recording_format: str,
) -> None:
    server = hotline_factory(config_yaml=f"media:\n  recording_format: {recording_format}\n")
    caller = SippRun(
        f"{LOOPBACK}:{server.sip_port}",
        ["-sn", "uac", "-d", "6000", "-m", "1", "-mi", LOOPBACK, "-mp", str(free_port(tcp=False))],
        workdir=tmp_path / "sipp", name="crash", timeout_s=20,
    ).start()
    try:
        # On loopback the answer follows the INVITE within milliseconds.
        assert wait_until(lambda: server.health()[1].get("active_calls") == 1, 5, 0.01), (
            server.log_text()[-2000:]
        )
        answered_at = time.monotonic()
        time.sleep(CALL_UP_S)
        assert server.proc is not None
        server.proc.kill()  # SIGKILL
        killed_at = time.monotonic()
        server.proc.wait(timeout=5)
    finally:
        caller.kill()
    call_up_s = killed_at - answered_at

    files = recordings(server.workdir / "data", recording_format)
    assert len(files) == 1, (files, server.log_text()[-2000:])
    path = files[0]
    rate_hz, audio = _decode(path)
    playable_s = len(audio) / rate_hz
    print(f"{recording_format}: {playable_s:.3f} s playable of {call_up_s:.3f} s up")
    # Never longer than the call (plus how late we saw the answer), and not much shorter.
    lost_s = call_up_s - playable_s
    assert -0.15 <= lost_s <= MAX_LOST_S[recording_format], (playable_s, call_up_s)
    # What is there is the call: the caller (SIPp uac sends no RTP) silent on the left,
    # our greeting tone on the right.
    steady = audio[int(0.2 * rate_hz):]
    assert rms(steady[:, 0]) < 30
    assert rms(steady[:, 1]) > 300
    assert abs(dominant_frequency_hz(steady[:, 1], rate_hz) - 440.0) <= 10.0

    if recording_format == "wav":
        data = path.read_bytes()
        (riff_size,) = struct.unpack_from("<I", data, 4)
        (data_size,) = struct.unpack_from("<I", data, 40)
        assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
        assert riff_size == 36 + data_size, (riff_size, data_size)
        assert data_size % 4 == 0, data_size  # whole stereo 16-bit frames
        # The header counts what was flushed; a chunk written but not yet patched may follow.
        unpatched = len(data) - 44 - data_size
        assert 0 <= unpatched <= rate_hz * 4 // 2, (len(data), data_size)
        assert playable_s == pytest.approx(data_size / 4 / rate_hz, abs=0.001)
