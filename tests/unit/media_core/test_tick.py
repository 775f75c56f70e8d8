"""The one media tick: a packet per stream per tick, batched encoding, wrap-around, latching."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest

from media_core import g711
from media_core.rtp import RtpPacket
from media_core.tick import LoopedPcm, MediaTick
from media_core.tone import tone_pcm

PEER = ("192.0.2.50", 40000)
NAT = ("198.51.100.7", 61000)
RAMP = np.arange(-8000, 8000, 10, dtype=np.int16)  # 1600 distinct samples


class CountingEncoder:
    """Wraps an ``*_into`` kernel and records each call's input size."""

    def __init__(self, kernel: Callable[[np.ndarray, np.ndarray], None]) -> None:
        self.kernel = kernel
        self.calls: list[int] = []

    def __call__(self, pcm: np.ndarray, out: np.ndarray) -> None:
        self.calls.append(len(pcm))
        self.kernel(pcm, out)


def make_tick() -> tuple[MediaTick, CountingEncoder, CountingEncoder]:
    ulaw, alaw = CountingEncoder(g711.ulaw_encode_into), CountingEncoder(g711.alaw_encode_into)
    tick = MediaTick(encoders={"PCMU": ulaw, "PCMA": alaw}, rng=random.Random(7))
    return tick, ulaw, alaw


def rtp(seq: int = 1, ssrc: int = 0x5EED, payload: bytes = b"\xff" * 160) -> bytes:
    return bytes(RtpPacket(0, seq, seq * 160, ssrc, payload))


def test_each_stream_with_an_address_gets_exactly_one_packet_per_tick():
    tick, _, _ = make_tick()
    ids = [tick.add_stream("PCMU", 0, RAMP, (f"192.0.2.{i}", 4000 + 2 * i)) for i in range(5)]
    ids += [tick.add_stream("PCMA", 8, RAMP, (f"192.0.2.{i}", 5000)) for i in range(3)]
    out = tick.tick(0.02)
    assert sorted(stream_id for stream_id, _, _ in out) == sorted(ids)
    destinations = {stream_id: addr for stream_id, _, addr in out}
    assert destinations[ids[2]] == ("192.0.2.2", 4004)
    assert all(len(datagram) == 12 + 160 for _, datagram, _ in out)


def test_packets_carry_the_streams_header_fields_and_the_encoded_frame():
    tick, _, _ = make_tick()
    mu = tick.add_stream(
        "PCMU", 0, RAMP, PEER, ssrc=0xABCDEF01, sequence_number=100, timestamp=5000
    )
    a = tick.add_stream("pcma", 8, RAMP, PEER, ssrc=0x11, sequence_number=7, timestamp=0)
    packets = {stream_id: RtpPacket.parse(datagram) for stream_id, datagram, _ in tick.tick(0.02)}
    first = packets[mu]
    assert (first.payload_type, first.ssrc, first.sequence_number, first.timestamp) == (
        0,
        0xABCDEF01,
        100,
        5000,
    )
    assert first.payload == g711.ulaw_encode(RAMP[:160])
    assert packets[a].payload_type == 8
    assert packets[a].payload == g711.alaw_encode(RAMP[:160])


def test_consecutive_packets_advance_sequence_by_one_and_timestamp_by_one_frame():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP, PEER, sequence_number=10, timestamp=1000)
    packets = [RtpPacket.parse(tick.tick(0.02 * k)[0][1]) for k in range(1, 12)]
    assert [p.sequence_number for p in packets] == list(range(10, 21))
    assert [p.timestamp for p in packets] == [1000 + 160 * k for k in range(11)]
    # The prompt plays on, looping after its 10 frames.
    assert packets[3].payload == g711.ulaw_encode(RAMP[480:640])
    assert packets[10].payload == packets[0].payload
    assert tick.stats(stream_id).packets_sent == 11
    assert tick.stats(stream_id).octets_sent == 11 * 160


def test_only_the_first_packet_carries_the_marker_bit():
    tick, _, _ = make_tick()
    tick.add_stream("PCMU", 0, RAMP, PEER)
    markers = [RtpPacket.parse(tick.tick(0.02 * k)[0][1]).marker for k in range(1, 4)]
    assert markers == [True, False, False]


def test_sequence_number_wraps_at_2_to_the_16_and_timestamp_at_2_to_the_32():
    tick, _, _ = make_tick()
    tick.add_stream("PCMU", 0, RAMP, PEER, sequence_number=65534, timestamp=2**32 - 200)
    packets = [RtpPacket.parse(tick.tick(0.02 * k)[0][1]) for k in range(1, 4)]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0]
    assert [p.timestamp for p in packets] == [2**32 - 200, 2**32 - 40, 120]


def test_all_streams_of_a_codec_are_encoded_in_one_kernel_call_per_tick():
    tick, ulaw, alaw = make_tick()
    for i in range(40):
        tick.add_stream("PCMU", 0, RAMP, (f"10.0.0.{i}", 4000))
    for i in range(3):
        tick.add_stream("PCMA", 8, RAMP, (f"10.0.1.{i}", 4000))
    for k in range(1, 4):
        tick.tick(0.02 * k)
    assert ulaw.calls == [40 * 160] * 3
    assert alaw.calls == [3 * 160] * 3


def test_a_codec_without_sending_streams_costs_no_kernel_call():
    tick, ulaw, alaw = make_tick()
    tick.add_stream("PCMU", 0, RAMP, PEER)
    tick.add_stream("PCMA", 8, RAMP)  # no address yet
    tick.tick(0.02)
    assert (len(ulaw.calls), len(alaw.calls)) == (1, 0)


def test_streams_sharing_one_prompt_each_keep_their_own_playout_position():
    tick, _, _ = make_tick()
    early = tick.add_stream("PCMU", 0, RAMP, PEER)
    tick.tick(0.02)
    tick.tick(0.04)
    late = tick.add_stream("PCMU", 0, RAMP, NAT)
    payloads = {stream_id: RtpPacket.parse(data).payload for stream_id, data, _ in tick.tick(0.06)}
    assert payloads[early] == g711.ulaw_encode(RAMP[320:480])
    assert payloads[late] == g711.ulaw_encode(RAMP[:160])


def test_a_stream_without_an_address_waits_silently_and_starts_from_the_top_once_latched():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP, None, sequence_number=500)
    assert tick.tick(0.02) == []
    assert tick.tick(0.04) == []
    tick.latch(stream_id, NAT)
    [(sent_id, datagram, addr)] = tick.tick(0.06)
    packet = RtpPacket.parse(datagram)
    assert (sent_id, addr) == (stream_id, NAT)
    assert packet.sequence_number == 500
    assert packet.marker
    assert packet.payload == g711.ulaw_encode(RAMP[:160])


def test_a_removed_stream_sends_nothing_more():
    tick, _, _ = make_tick()
    keep = tick.add_stream("PCMU", 0, RAMP, PEER)
    gone = tick.add_stream("PCMU", 0, RAMP, PEER)
    tick.remove_stream(gone)
    assert [stream_id for stream_id, _, _ in tick.tick(0.02)] == [keep]
    assert gone not in tick and len(tick) == 1
    with pytest.raises(KeyError, match=f"no RTP stream {gone}"):
        tick.stats(gone)


def test_the_first_valid_packet_latches_the_stream_to_its_source_address():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP, PEER)  # what the SDP said
    assert tick.tick(0.02)[0][2] == PEER
    assert tick.on_rtp_received(stream_id, rtp(seq=9), NAT, now=0.03)
    stats = tick.stats(stream_id)
    assert stats.latched and stats.remote_addr == NAT
    assert tick.tick(0.04)[0][2] == NAT  # RFC 4961: send back where media comes from


def test_received_packets_and_payload_octets_are_counted():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP)
    for seq in range(5):
        tick.on_rtp_received(stream_id, rtp(seq=seq, payload=b"\x00" * 80), NAT, now=seq * 0.02)
    stats = tick.stats(stream_id)
    assert (stats.packets_received, stats.octets_received) == (5, 400)
    assert stats.remote_ssrc == 0x5EED
    assert stats.last_payload_type == 0
    assert tick.stream(stream_id).last_received_at == pytest.approx(0.08)


def test_packets_from_elsewhere_after_latching_are_ignored_and_do_not_move_the_stream():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP)
    tick.on_rtp_received(stream_id, rtp(), NAT, now=0.0)
    assert not tick.on_rtp_received(stream_id, rtp(ssrc=666), ("203.0.113.66", 1234), now=0.02)
    stats = tick.stats(stream_id)
    assert stats.remote_addr == NAT
    assert (stats.packets_received, stats.packets_ignored) == (1, 1)
    assert stats.remote_ssrc == 0x5EED


def test_datagrams_that_are_not_rtp_are_counted_invalid_and_do_not_latch():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP, PEER)
    assert tick.on_rtp_received(stream_id, b"\x00" * 20, NAT, now=0.0) is False  # version 0
    assert tick.on_rtp_received(stream_id, b"\x80\x00", NAT, now=0.0) is False  # truncated
    stats = tick.stats(stream_id)
    assert stats.packets_invalid == 2
    assert (stats.latched, stats.remote_addr, stats.packets_received) == (False, PEER, 0)


def test_a_datagram_for_a_removed_stream_is_dropped():
    tick, _, _ = make_tick()
    stream_id = tick.add_stream("PCMU", 0, RAMP)
    tick.remove_stream(stream_id)
    assert not tick.on_rtp_received(stream_id, rtp(), NAT, now=0.0)


def test_random_ssrcs_differ_between_streams():
    tick = MediaTick(rng=random.Random(1))
    ssrcs = {tick.stats(tick.add_stream("PCMU", 0, RAMP)).ssrc for _ in range(200)}
    assert len(ssrcs) == 200


def test_a_looped_prompt_shorter_than_a_frame_repeats_within_the_frame():
    source = LoopedPcm(np.array([1, 2, 3], dtype=np.int16))
    out = np.zeros(8, dtype=np.int16)
    source.read_into(out)
    assert out.tolist() == [1, 2, 3, 1, 2, 3, 1, 2]
    source.read_into(out)
    assert out.tolist() == [3, 1, 2, 3, 1, 2, 3, 1]


def test_a_tone_prompt_survives_the_tick_and_g711_at_its_frequency():
    tick, _, _ = make_tick()
    tick.add_stream("PCMA", 8, tone_pcm(700.0, 1000), PEER)
    payloads = [RtpPacket.parse(tick.tick(0.02 * k)[0][1]).payload for k in range(1, 51)]
    pcm = g711.alaw_decode(b"".join(payloads)).astype(np.float64)
    assert float(np.fft.rfftfreq(len(pcm), 1 / 8000)[np.argmax(np.abs(np.fft.rfft(pcm)))]) == 700.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codec": "G729"}, "codec 'G729' is not one of PCMU, PCMA, G722, OPUS"),
        ({"payload_type": 128}, "payload type 128"),
        ({"ssrc": -1}, "SSRC -1"),
        ({"sequence_number": 70000}, "sequence number 70000"),
        ({"timestamp": 2**32}, "timestamp 4294967296"),
        ({"source": np.zeros(0, dtype=np.int16)}, "cannot be empty"),
        ({"source": np.zeros(10, dtype=np.float32)}, "1-D int16"),
    ],
)
def test_add_stream_refuses_bad_parameters(kwargs: dict[str, object], message: str):
    tick, _, _ = make_tick()
    args: dict[str, object] = {"codec": "PCMU", "payload_type": 0, "source": RAMP}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        tick.add_stream(**args)  # type: ignore[arg-type]
    assert len(tick) == 0


def test_ptime_must_be_a_whole_number_of_samples():
    with pytest.raises(ValueError, match="whole number of samples"):
        MediaTick(ptime_ms=20, rate_hz=8001)
    assert MediaTick(ptime_ms=30).samples_per_frame == 240
