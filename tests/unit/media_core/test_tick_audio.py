"""The recognizer's tap: received frames of marked legs, one gather per tick; VAD tuning."""

from __future__ import annotations

import random

import numpy as np
import pytest

from media_core import g711
from media_core.rtp import RtpPacket
from media_core.tick import MediaTick

PEER = ("192.0.2.50", 40000)
SPEECHY = (np.sin(np.arange(1600) * 2 * np.pi * 300 / 8000) * 8000).astype(np.int16)


def feed(tick: MediaTick, stream_id: int, frames: int, now: float = 0.0) -> float:
    """Send ``frames`` packets of SPEECHY, ticking after each; return the clock."""
    for i in range(frames):
        chunk = SPEECHY[(i % 10) * 160 : (i % 10 + 1) * 160]
        packet = RtpPacket(0, 100 + i, i * 160, 0xABC, bytes(g711.ulaw_encode(chunk)))
        tick.on_rtp_received(stream_id, bytes(packet), PEER, now)
        now += 0.02
        tick.tick(now)
    return now


def test_only_marked_legs_hand_out_their_received_audio_one_gather_per_tick():
    tick = MediaTick(rng=random.Random(3))
    marked = tick.add_stream("PCMU", 0, None, PEER)
    other = tick.add_stream("PCMU", 0, None, PEER)
    tick.stream_audio(marked)
    feed(tick, marked, 20)
    feed(tick, other, 5)
    audio = tick.take_audio()
    assert len(audio) == 25  # one (ids, frames) per tick
    assert all(ids == [marked] and frames.shape == (1, 160) for ids, frames in audio)
    heard = np.concatenate([frames[0] for _, frames in audio])
    expected = g711.ulaw_decode(g711.ulaw_encode(SPEECHY))
    # After the jitter buffer's start-up delay, the frames are the sent audio, in order.
    start = 160 * int(np.flatnonzero(heard.reshape(-1, 160).any(axis=1))[0])
    np.testing.assert_array_equal(heard[start : start + 1600], expected)
    assert tick.take_audio() == []


def test_a_kept_frame_is_a_copy_the_next_tick_does_not_overwrite():
    tick = MediaTick(rng=random.Random(3))
    leg = tick.add_stream("PCMU", 0, None, PEER)
    tick.stream_audio(leg)
    feed(tick, leg, 10)
    kept = tick.take_audio()
    before = [frames.copy() for _, frames in kept]
    feed(tick, leg, 10, now=1.0)
    assert any(frames.any() for frames in before)
    for (_, frames), copy in zip(kept, before, strict=True):
        np.testing.assert_array_equal(frames, copy)


def test_unmarking_stops_the_tap():
    tick = MediaTick(rng=random.Random(3))
    leg = tick.add_stream("PCMU", 0, None, PEER)
    tick.stream_audio(leg)
    tick.stream_audio(leg, False)
    feed(tick, leg, 5)
    assert tick.take_audio() == []


def test_tune_vad_sets_the_legs_endpointing_and_needs_a_vad():
    tick = MediaTick(rng=random.Random(3))
    ivr = tick.add_stream("PCMU", 0, None, PEER, vad=True)
    plain = tick.add_stream("PCMU", 0, None, PEER)
    tick.tune_vad(ivr, start_ms=100, hangover_ms=450)
    vad = tick.stream(ivr).vad
    assert vad is not None and (vad.start_ms, vad.hangover_ms) == (100, 450)
    with pytest.raises(ValueError, match="vad=True"):
        tick.tune_vad(plain, hangover_ms=450)


def test_set_source_changes_what_the_leg_hears_under_its_prompts():
    tick = MediaTick(rng=random.Random(3))
    leg = tick.add_stream("PCMU", 0, None, PEER)
    silent = RtpPacket.parse(tick.tick(0.02)[0][1]).payload
    tick.set_source(leg, SPEECHY)
    music = RtpPacket.parse(tick.tick(0.04)[0][1]).payload
    assert silent == bytes(g711.ulaw_encode(np.zeros(160, np.int16)))
    assert music == bytes(g711.ulaw_encode(SPEECHY[:160]))
