"""The whole media path on one tick, on a fake clock: receive, listen, speak, record, send."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from media_core import g711
from media_core.dtmf import DtmfEventSender, TelephoneEvent
from media_core.media_events import DtmfReceived, PromptFinished, SpeechEnded, SpeechStarted
from media_core.recording import WavRecorder
from media_core.recording_tap import write_chunks
from media_core.rtp import RtpPacket
from media_core.tick import MediaTick
from media_core.tone import tone_pcm

AUDIO = Path(__file__).resolve().parents[2] / "data" / "audio"
PEER_A = ("192.0.2.10", 4000)
PEER_B = ("192.0.2.20", 4002)
TE = 101


class Caller:
    """A remote phone feeding one stream with 20 ms PCMU packets of given audio."""

    def __init__(self, tick: MediaTick, stream_id: int, addr: tuple[str, int]) -> None:
        self.tick, self.stream_id, self.addr = tick, stream_id, addr
        self.seq, self.ts = 1000, 50_000

    def send_pcm(self, frame: np.ndarray, now: float, marker: bool = False) -> None:
        packet = RtpPacket(0, self.seq, self.ts, 0x1234, g711.ulaw_encode(frame), marker=marker)
        self.tick.on_rtp_received(self.stream_id, bytes(packet), self.addr, now)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFFFFFF

    def send_event(self, payload: bytes, timestamp: int, marker: bool, now: float) -> None:
        packet = RtpPacket(TE, self.seq, timestamp, 0x1234, payload, marker=marker)
        self.tick.on_rtp_received(self.stream_id, bytes(packet), self.addr, now)
        self.seq = (self.seq + 1) & 0xFFFF


def decode(datagrams: list, stream_id: int) -> np.ndarray:
    packets = [RtpPacket.parse(d) for sid, d, _ in datagrams if sid == stream_id]
    return np.concatenate([g711.ulaw_decode(p.payload) for p in packets if p.payload_type == 0])


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[np.argmax(spectrum)])


def run(
    tick: MediaTick, callers: list[tuple[Caller, np.ndarray]], seconds: float, start: float = 0.0
):
    """Each caller sends its audio in real time; the tick runs every 20 ms."""
    sent: list = []
    frames = int(seconds / 0.02)
    for index in range(frames):
        now = start + index * 0.02
        for caller, audio in callers:
            chunk = audio[index * 160 : (index + 1) * 160]
            if len(chunk) == 160:
                caller.send_pcm(chunk, now)
        sent += tick.tick(now + 0.0199)
    return sent


def test_a_bridge_carries_each_callers_audio_to_the_other_leg():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A)
    b = tick.add_stream("PCMU", 0, None, PEER_B)
    tick.bridge(a, b)
    sent = run(
        tick,
        [
            (Caller(tick, a, PEER_A), tone_pcm(400, 2000)),
            (Caller(tick, b, PEER_B), tone_pcm(1000, 2000)),
        ],
        2.0,
    )
    heard_by_b = decode(sent, b)[4000:]  # past the jitter buffer's initial delay
    heard_by_a = decode(sent, a)[4000:]
    assert dominant_hz(heard_by_b) == pytest.approx(400, abs=5)
    assert dominant_hz(heard_by_a) == pytest.approx(1000, abs=5)


def test_three_party_conference_with_mix_minus():
    tick = MediaTick()
    ids = [tick.add_stream("PCMU", 0, None, ("192.0.2.1", 5000 + 2 * i)) for i in range(3)]
    for stream_id in ids:
        tick.conference_add("room", stream_id)
    tones = [300, 700, 1500]
    callers = [
        (Caller(tick, s, ("192.0.2.1", 5000 + 2 * i)), tone_pcm(tones[i], 2000, amplitude=0.2))
        for i, s in enumerate(ids)
    ]
    sent = run(tick, callers, 2.0)
    for index, stream_id in enumerate(ids):
        heard = decode(sent, stream_id)[4000:]
        spectrum = np.abs(np.fft.rfft(heard))
        freqs = np.fft.rfftfreq(len(heard), 1 / 8000)
        level = {hz: spectrum[np.argmin(np.abs(freqs - hz))] for hz in tones}
        own = tones[index]
        others = [hz for hz in tones if hz != own]
        # Each hears the other two, and not itself (mix-minus).
        assert all(level[hz] > 50 * level[own] for hz in others), (stream_id, level)


def test_lost_packets_are_concealed_not_silenced():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A)
    b = tick.add_stream("PCMU", 0, None, PEER_B)
    tick.bridge(a, b)
    caller = Caller(tick, a, PEER_A)
    audio = tone_pcm(500, 2000)
    sent = []
    for index in range(100):
        now = index * 0.02
        if index != 60:  # one packet lost
            caller.send_pcm(audio[index * 160 : (index + 1) * 160], now)
        else:
            caller.seq += 1
            caller.ts += 160
        sent += tick.tick(now + 0.0199)
    assert tick.stream(a).rx.jitter.lost == 1
    heard = decode(sent, b)
    # The concealed frame is not silence: no 20 ms run of zeros after the stream started.
    frames = heard[2080:].reshape(-1, 160)
    assert min(np.abs(f).max() for f in frames) > 1000


def test_rfc4733_key_press_is_reported_once_with_its_duration():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A, telephone_event_pt=TE)
    caller = Caller(tick, a, PEER_A)
    sender = DtmfEventSender("5", 120, caller.ts)
    now = 0.0
    while not sender.done:
        for packet in sender.next_tick():
            caller.send_event(packet.payload, packet.timestamp, packet.marker, now)
        tick.tick(now)
        now += 0.02
    events = [e for e in tick.take_events() if isinstance(e, DtmfReceived)]
    assert [(e.digit.digit, e.method) for e in events] == [("5", "rfc4733")]
    assert events[0].digit.duration_ms == pytest.approx(120, abs=20)


def test_send_dtmf_replaces_audio_with_event_packets_then_resumes():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, tone_pcm(440, 1000), PEER_A, telephone_event_pt=TE)
    tick.send_dtmf(a, "#", 100)
    sent = [RtpPacket.parse(d) for now in range(12) for _, d, _ in tick.tick(now * 0.02)]
    events = [p for p in sent if p.payload_type == TE]
    decoded = [TelephoneEvent.parse(p.payload) for p in events]
    assert {d.digit for d in decoded} == {"#"}
    assert events[0].marker and not any(p.marker for p in events[1:])
    assert [d.end for d in decoded][-3:] == [True, True, True]  # RFC 4733 §2.5.1.4
    assert len({p.timestamp for p in events}) == 1  # one event, one timestamp
    assert sent[-1].payload_type == 0  # audio resumes
    assert [p.sequence_number for p in sent] == sorted(p.sequence_number for p in sent)


def test_inband_tones_are_detected_on_legs_that_ask_for_it():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A, inband_dtmf=True)
    t = np.arange(8000 * 200 // 1000) / 8000
    key = (0.25 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t)) * 32767).astype(
        np.int16
    )
    audio = np.concatenate([np.zeros(1600, np.int16), key, np.zeros(4000, np.int16)])
    run(tick, [(Caller(tick, a, PEER_A), audio)], 0.9)
    events = [e for e in tick.take_events() if isinstance(e, DtmfReceived)]
    assert [(e.digit.digit, e.method) for e in events] == [("5", "inband")]
    assert events[0].digit.duration_ms == pytest.approx(200, abs=25)


def test_speech_start_and_end_are_reported_for_ivr_legs():
    with wave.open(str(AUDIO / "toothache_8k.wav")) as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A, vad=True)
    run(tick, [(Caller(tick, a, PEER_A), speech)], len(speech) / 8000)
    tick.remove_stream(a)
    kinds = [type(e) for e in tick.take_events()]
    assert kinds == [SpeechStarted, SpeechEnded]


def test_barge_in_stops_the_prompt_at_the_next_frame():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A)
    tick.play(a, tone_pcm(600, 5000))
    first = [tick.tick(i * 0.02) for i in range(5)]
    assert all(np.abs(decode(batch, a)).max() > 1000 for batch in first)
    tick.stop_prompt(a)
    after = decode(tick.tick(0.2), a)
    assert np.abs(after).max() == 0
    assert not any(isinstance(e, PromptFinished) for e in tick.take_events())


def test_a_prompt_that_plays_to_its_end_reports_it():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A)
    tick.play(a, tone_pcm(600, 100))
    for i in range(8):
        tick.tick(i * 0.02)
    assert [e for e in tick.take_events() if isinstance(e, PromptFinished)] == [PromptFinished(a)]


def test_recording_has_the_caller_left_and_what_the_caller_heard_right(tmp_path: Path):
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, tone_pcm(1000, 1000), PEER_A)
    recorder = WavRecorder(tmp_path / "call.wav")
    tick.record(a, recorder)
    run(tick, [(Caller(tick, a, PEER_A), tone_pcm(300, 3000))], 3.0)
    tick.remove_stream(a)
    write_chunks(tick.take_recording_chunks())
    with wave.open(str(tmp_path / "call.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert len(stereo) == 150 * 160  # every tick, time-aligned
    assert dominant_hz(stereo[8000:, 0]) == pytest.approx(300, abs=5)
    assert dominant_hz(stereo[8000:, 1]) == pytest.approx(1000, abs=5)


def test_a_new_ssrc_restarts_the_receive_path():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A)
    caller = Caller(tick, a, PEER_A)
    run(tick, [(caller, tone_pcm(500, 1000))], 1.0)
    rx = tick.stream(a).rx
    packet = RtpPacket(0, 7, 9, 0x9999, g711.ulaw_encode(tone_pcm(500, 20)))
    tick.on_rtp_received(a, bytes(packet), PEER_A, 1.0)
    assert rx.stats.ssrc_changes >= 1


def test_rtcp_multiplexed_on_the_rtp_port_is_not_taken_for_audio():
    tick = MediaTick()
    a = tick.add_stream("PCMU", 0, None, PEER_A)
    # RFC 5761 §4: an RTCP receiver report (V=2, RC=0, PT=201) looks like RTP with M set.
    receiver_report = bytes([0x80, 201, 0, 1]) + (0x1234).to_bytes(4, "big") + bytes(4)
    assert not tick.on_rtp_received(a, receiver_report, PEER_A, 0.0)
    stats = tick.stats(a)
    assert (stats.packets_invalid, stats.packets_received, stats.latched) == (1, 0, False)
