"""G.722 and Opus legs on the one tick: decoded to its rate, encoded from it, own RTP clocks."""

from __future__ import annotations

import numpy as np
import pytest

from media_core import g711
from media_core.codec_av import decoder_for, encoder_for
from media_core.dtmf import TelephoneEvent
from media_core.rtp import RtpPacket
from media_core.tick import MediaTick
from media_core.tone import tone_pcm

PEER_A = ("192.0.2.10", 4000)
PEER_B = ("192.0.2.20", 4002)
OPUS_PT, G722_PT, TE = 111, 9, 101


class WidebandPhone:
    """A remote phone with its own PyAV encoder: 20 ms packets at the codec's RTP clock."""

    def __init__(self, tick: MediaTick, stream_id: int, addr, codec: str, pt: int) -> None:
        self.tick, self.stream_id, self.addr, self.pt = tick, stream_id, addr, pt
        self.encoder = encoder_for(codec)
        self.step = 960 if codec == "OPUS" else 160
        self.seq, self.ts = 500, 90_000

    def send(self, frame_8k: np.ndarray, now: float) -> None:
        packet = RtpPacket(self.pt, self.seq, self.ts, 0xCA11, self.encoder.encode(frame_8k))
        self.tick.on_rtp_received(self.stream_id, bytes(packet), self.addr, now)
        self.seq += 1
        self.ts += self.step


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[np.argmax(spectrum)])


def packets_of(sent: list, stream_id: int) -> list[RtpPacket]:
    return [RtpPacket.parse(d) for sid, d, _ in sent if sid == stream_id]


def test_an_opus_caller_bridged_to_a_g711_agent_is_heard_and_hears_back():
    tick = MediaTick()
    caller = tick.add_stream("opus", OPUS_PT, None, PEER_A)
    agent = tick.add_stream("PCMU", 0, None, PEER_B)
    tick.bridge(caller, agent)
    phone = WidebandPhone(tick, caller, PEER_A, "OPUS", OPUS_PT)
    voice, agent_voice = tone_pcm(500, 2000), tone_pcm(1200, 2000)
    sent = []
    seq = 0
    for index in range(100):
        now = index * 0.02
        phone.send(voice[index * 160 : (index + 1) * 160], now)
        agent_packet = RtpPacket(
            0, seq, seq * 160, 0xA6E, g711.ulaw_encode(agent_voice[index * 160 : (index + 1) * 160])
        )
        tick.on_rtp_received(agent, bytes(agent_packet), PEER_B, now)
        seq += 1
        sent += tick.tick(now + 0.0199)
    heard_by_agent = np.concatenate([g711.ulaw_decode(p.payload) for p in packets_of(sent, agent)])
    assert dominant_hz(heard_by_agent[4000:]) == pytest.approx(500, abs=10)
    to_caller = packets_of(sent, caller)
    decoder = decoder_for("OPUS")
    heard_by_caller = np.concatenate([decoder.decode(p.payload) for p in to_caller])
    assert dominant_hz(heard_by_caller[4000:]) == pytest.approx(1200, abs=10)
    assert {p.payload_type for p in to_caller} == {OPUS_PT}


def test_opus_timestamps_step_by_960_and_g722_by_160_per_20_ms():
    tick = MediaTick()
    opus = tick.add_stream("OPUS", OPUS_PT, tone_pcm(440, 1000), PEER_A, timestamp=0)
    g722 = tick.add_stream("G722", G722_PT, tone_pcm(440, 1000), PEER_B, timestamp=0)
    sent = [item for k in range(5) for item in tick.tick(0.02 * k)]
    assert [p.timestamp for p in packets_of(sent, opus)] == [0, 960, 1920, 2880, 3840]
    g722_packets = packets_of(sent, g722)
    assert [p.timestamp for p in g722_packets] == [0, 160, 320, 480, 640]  # RFC 3551 §4.5.2
    assert {len(p.payload) for p in g722_packets} == {160}


def test_a_g722_prompt_reaches_the_phone_as_the_same_tone():
    tick = MediaTick()
    leg = tick.add_stream("G722", G722_PT, tone_pcm(700, 1000), PEER_A)
    sent = [item for k in range(50) for item in tick.tick(0.02 * k)]
    decoder = decoder_for("G722")
    heard = np.concatenate([decoder.decode(p.payload) for p in packets_of(sent, leg)])
    assert dominant_hz(heard[800:]) == pytest.approx(700, abs=10)


def test_lost_opus_packets_are_concealed_by_the_codec_not_silenced():
    tick = MediaTick()
    caller = tick.add_stream("OPUS", OPUS_PT, None, PEER_A)
    phone = WidebandPhone(tick, caller, PEER_A, "OPUS", OPUS_PT)
    voice = tone_pcm(400, 2000)
    levels = []
    for index in range(80):
        now = index * 0.02
        frame = voice[index * 160 : (index + 1) * 160]
        if index in (40, 41):
            phone.encoder.encode(frame)  # lost on the way: the sender moved on
            phone.seq += 1
            phone.ts += 960
        else:
            phone.send(frame, now)
        tick.tick(now + 0.0199)
        levels.append(float(np.abs(tick._frames_in[tick.stream(caller).slot]).mean()))
    assert tick.stream(caller).rx.jitter.lost == 2  # type: ignore[union-attr]
    normal = float(np.median(levels[20:70]))
    # libopus fades its concealment of a steady tone, but never to a hole of silence,
    # and the audio is back at its level within a few frames.
    assert min(levels[20:70]) > 0.05 * normal
    assert levels[-1] == pytest.approx(normal, rel=0.3)


def test_a_corrupt_wideband_payload_is_counted_and_concealed():
    tick = MediaTick()
    caller = tick.add_stream("OPUS", OPUS_PT, None, PEER_A)
    phone = WidebandPhone(tick, caller, PEER_A, "OPUS", OPUS_PT)
    voice = tone_pcm(400, 1000)
    for index in range(30):
        now = index * 0.02
        if index == 20:
            # A TOC byte that claims a 60 ms frame in a 20 ms slot, and nothing after it.
            packet = RtpPacket(OPUS_PT, phone.seq, phone.ts, 0xCA11, b"\xfb")
            tick.on_rtp_received(caller, bytes(packet), PEER_A, now)
            phone.seq += 1
            phone.ts += 960
            phone.encoder.encode(voice[:160])
        else:
            phone.send(voice[index * 160 : (index + 1) * 160], now)
        tick.tick(now + 0.0199)
    assert tick.stats(caller).packets_invalid == 1
    assert tick.stream(caller).rx.jitter.played >= 25  # type: ignore[union-attr]


def test_rfc4733_on_an_opus_leg_counts_durations_in_48_khz_units():
    tick = MediaTick()
    leg = tick.add_stream("OPUS", OPUS_PT, tone_pcm(440, 1000), PEER_A, telephone_event_pt=TE)
    tick.send_dtmf(leg, "7", 100)
    sent = packets_of([item for k in range(10) for item in tick.tick(0.02 * k)], leg)
    events = [TelephoneEvent.parse(p.payload) for p in sent if p.payload_type == TE]
    assert events[-1].end
    assert events[-1].duration == 4800  # 100 ms at the 48 kHz RTP clock (RFC 4733 §2.5.1.3)
