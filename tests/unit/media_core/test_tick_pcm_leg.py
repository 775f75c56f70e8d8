"""PCM legs (no RTP: a browser's audio over WebRTC) in the one media tick, on a fake clock."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from media_core import g711
from media_core.media_events import DtmfReceived, SpeechStarted
from media_core.pcm_leg import PcmLegs
from media_core.recording import WavRecorder
from media_core.recording_tap import write_chunks
from media_core.rtp import RtpPacket
from media_core.tick import PCM_CODEC, MediaTick
from media_core.tone import tone_pcm

PEER = ("192.0.2.10", 4000)


def dominant_hz(pcm: np.ndarray, rate_hz: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate_hz)[np.argmax(spectrum)])


def heard(tick: MediaTick, stream_id: int) -> np.ndarray:
    """Everything ``take_pcm`` handed out for one leg since the last call."""
    rows = []
    for ids, frames in tick.take_pcm():
        if stream_id in ids:
            rows.append(frames[ids.index(stream_id)])
    return np.concatenate(rows) if rows else np.zeros(0, np.int16)


def rtp_payloads(datagrams: list, stream_id: int) -> np.ndarray:
    packets = [RtpPacket.parse(d) for sid, d, _ in datagrams if sid == stream_id]
    return np.concatenate([g711.ulaw_decode(p.payload) for p in packets])


def test_pushed_audio_goes_out_in_the_bridged_rtp_legs_packets_and_back():
    tick = MediaTick()
    browser = tick.add_pcm_stream()
    phone = tick.add_stream("PCMU", 0, None, PEER)
    tick.bridge(browser, phone)
    browser_tone, phone_tone = tone_pcm(440, 2000), tone_pcm(1000, 2000)
    sent: list = []
    seq, ts = 100, 8000
    for index in range(100):
        now = index * 0.02
        frame = slice(index * 160, (index + 1) * 160)
        tick.push_pcm(browser, browser_tone[frame])
        packet = RtpPacket(
            0, seq + index, ts + 160 * index, 0x77, g711.ulaw_encode(phone_tone[frame])
        )
        tick.on_rtp_received(phone, bytes(packet), PEER, now)
        sent += tick.tick(now + 0.0199)
    # The PCM leg sends no RTP: only the phone's packets go out.
    assert {sid for sid, _, _ in sent} == {phone}
    out_to_phone = rtp_payloads(sent, phone)[4000:]
    assert dominant_hz(out_to_phone) == pytest.approx(440, abs=5)
    to_browser = heard(tick, browser)
    assert len(to_browser) == 100 * 160  # a frame every tick, even before audio came
    assert dominant_hz(to_browser[4000:]) == pytest.approx(1000, abs=5)


def test_the_bridge_carries_the_exact_samples_after_the_prefill():
    tick = MediaTick()
    a, b = tick.add_pcm_stream(), tick.add_pcm_stream()
    tick.bridge(a, b)
    ramp = np.arange(0, 160 * 10, dtype=np.int16)
    for index in range(10):
        tick.push_pcm(a, ramp[index * 160 : (index + 1) * 160])
        tick.tick(index * 0.02)
    out = heard(tick, b)
    # The first tick waits for a second frame (prefill 2), then every frame follows in order.
    assert not out[:160].any()
    np.testing.assert_array_equal(out[160:], ramp[:-160])
    assert not heard(tick, a).size  # already taken: one hand-out per tick


def test_source_prompt_and_silence_are_what_the_leg_hears_when_in_no_room():
    tick = MediaTick()
    leg = tick.add_pcm_stream(tone_pcm(600, 200))
    for index in range(25):
        tick.tick(index * 0.02)
    assert dominant_hz(heard(tick, leg)) == pytest.approx(600, abs=10)
    tick.play(leg, tone_pcm(1500, 200))
    for index in range(10):
        tick.tick(1 + index * 0.02)
    assert dominant_hz(heard(tick, leg)) == pytest.approx(1500, abs=10)
    tick.set_source(leg, None)
    for index in range(3):
        tick.tick(2 + index * 0.02)
    assert not heard(tick, leg).any()


def test_recording_a_pcm_leg_has_what_it_pushed_left_and_what_it_heard_right(tmp_path: Path):
    tick = MediaTick()
    leg = tick.add_pcm_stream(tone_pcm(1000, 1000))
    tick.record(leg, WavRecorder(tmp_path / "leg.wav"))
    pushed = tone_pcm(300, 2000)
    for index in range(100):
        tick.push_pcm(leg, pushed[index * 160 : (index + 1) * 160])
        tick.tick(index * 0.02)
    tick.remove_stream(leg)
    write_chunks(tick.take_recording_chunks())
    with wave.open(str(tmp_path / "leg.wav")) as wav:
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert len(stereo) == 100 * 160
    assert dominant_hz(stereo[800:, 0]) == pytest.approx(300, abs=5)
    assert dominant_hz(stereo[800:, 1]) == pytest.approx(1000, abs=5)


def test_removing_a_pcm_leg_frees_its_slot_and_stops_its_frames():
    tick = MediaTick()
    leg = tick.add_pcm_stream(tone_pcm(600, 200))
    other = tick.add_pcm_stream()
    tick.bridge(leg, other)
    tick.tick(0.02)
    tick.take_pcm()
    tick.remove_stream(leg)
    assert leg not in tick and not tick.is_pcm(leg)
    tick.tick(0.04)
    [(ids, frames)] = tick.take_pcm()
    assert ids == [other] and not frames.any()  # its bridge partner hears silence now
    with pytest.raises(KeyError):
        tick.push_pcm(leg, np.zeros(160, np.int16))
    # Its row is taken again by the next leg, which starts empty.
    again = tick.add_pcm_stream()
    assert tick.pcm_stats(again).frames_buffered == 0
    assert tick.stream(again).slot == 0


def test_an_rtp_datagram_fed_to_a_pcm_leg_is_ignored_and_stats_have_no_rtcp():
    tick = MediaTick()
    leg = tick.add_pcm_stream()
    packet = RtpPacket(0, 1, 160, 0x77, b"\xff" * 160)
    assert not tick.on_rtp_received(leg, bytes(packet), PEER, 0.0)
    stats = tick.stats(leg)
    assert (stats.codec, stats.remote_addr, stats.packets_ignored) == (PCM_CODEC, None, 1)
    assert (stats.rtcp_sent, stats.round_trip_s) == (0, None)
    for index in range(1, 400):  # 8 s: RTCP reports would be due for an RTP leg
        assert tick.tick(index * 0.02) == []
    assert tick.take_rtcp() == []
    with pytest.raises(KeyError):
        tick.push_pcm(tick.add_stream("PCMU", 0, None, PEER), np.zeros(160, np.int16))


def test_rtp_legs_without_an_address_stay_paused_beside_pcm_legs():
    tick = MediaTick()
    tick.add_pcm_stream()
    waiting = tick.add_stream("PCMU", 0, None, None)
    tick.play(waiting, tone_pcm(500, 100))
    for index in range(10):
        assert tick.tick(index * 0.02) == []
    assert tick.stream(waiting).player.playing  # type: ignore[union-attr]


def test_pcm_legs_get_vad_and_inband_dtmf_like_rtp_legs():
    tick = MediaTick()
    leg = tick.add_pcm_stream(vad=True, inband_dtmf=True)
    t = np.arange(1600) / 8000  # 200 ms of key 5: 770 Hz + 1336 Hz
    tones = 0.25 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))
    key = np.concatenate([(tones * 32767).astype(np.int16), np.zeros(1600, np.int16)])
    speech = tone_pcm(300, 600, amplitude=0.5)
    audio = np.concatenate([np.zeros(800, np.int16), key, speech, np.zeros(8000, np.int16)])
    for index in range(len(audio) // 160):
        tick.push_pcm(leg, audio[index * 160 : (index + 1) * 160])
        tick.tick(index * 0.02)
    events = tick.take_events()
    keys = [e for e in events if isinstance(e, DtmfReceived)]
    assert [(e.stream_id, e.digit.digit, e.method) for e in keys] == [(leg, "5", "inband")]
    assert any(isinstance(e, SpeechStarted) and e.stream_id == leg for e in events)


# --------------------------------------------------------- the playout buffer


def test_partial_pushes_are_joined_into_whole_frames():
    legs = PcmLegs(160)
    row = legs.add()
    ramp = np.arange(480, dtype=np.int16)
    for start in range(0, 480, 70):  # 70-sample pieces, as a resampler may hand out
        legs.push(row, ramp[start : start + 70])
    out = np.zeros((1, 160), np.int16)
    rows = np.array([row], np.intp)
    got = []
    for _ in range(3):
        legs.pull_into(rows, out)
        got.append(out[0].copy())
    np.testing.assert_array_equal(np.concatenate(got), ramp)
    assert legs.stats(row).frames_pushed == 3


def test_a_burst_beyond_depth_drops_the_oldest_frames():
    legs = PcmLegs(4, depth=3, prefill=1)
    row = legs.add()
    legs.push(row, np.arange(4 * 5, dtype=np.int16))  # frames 0..4 at once
    legs.push(row, np.full(4, 99, np.int16))  # and one more
    stats = legs.stats(row)
    assert (stats.frames_pushed, stats.frames_dropped, stats.frames_buffered) == (6, 3, 3)
    out = np.zeros((1, 4), np.int16)
    firsts = []
    for _ in range(3):
        legs.pull_into(np.array([row], np.intp), out)
        firsts.append(int(out[0, 0]))
    assert firsts == [12, 16, 99]  # frames 3, 4 and the last: the newest three


def test_an_underrun_is_silence_and_playing_resumes_after_the_prefill():
    legs = PcmLegs(2, depth=4, prefill=2)
    row = legs.add()
    rows = np.array([row], np.intp)
    out = np.zeros((1, 2), np.int16)
    legs.push(row, np.array([1, 1], np.int16))
    legs.pull_into(rows, out)
    assert out.tolist() == [[0, 0]]  # one frame is not enough to start
    legs.push(row, np.array([2, 2], np.int16))
    legs.pull_into(rows, out)
    assert out.tolist() == [[1, 1]]
    legs.pull_into(rows, out)
    assert out.tolist() == [[2, 2]]
    legs.pull_into(rows, out)
    assert out.tolist() == [[0, 0]] and legs.stats(row).underruns == 1
    legs.push(row, np.array([3, 3], np.int16))
    legs.pull_into(rows, out)
    assert out.tolist() == [[0, 0]]  # waits for the prefill again
    assert legs.stats(row).underruns == 1  # not playing: waiting is not an underrun


def test_many_legs_are_pulled_independently_in_one_call():
    legs = PcmLegs(3, depth=4, prefill=1)
    rows = np.array([legs.add() for _ in range(20)], np.intp)
    for index, row in enumerate(rows):
        if index % 2 == 0:
            legs.push(int(row), np.full(3, index, np.int16))
    out = np.full((20, 3), -1, np.int16)
    legs.pull_into(rows, out)
    expected = [[index] * 3 if index % 2 == 0 else [0] * 3 for index in range(20)]
    assert out.tolist() == expected


def test_bad_pushes_and_settings_are_refused():
    legs = PcmLegs(160)
    row = legs.add()
    with pytest.raises(ValueError, match="int16"):
        legs.push(row, np.zeros(160, np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefill"):
        PcmLegs(160, depth=2, prefill=3)
