"""The adaptive jitter buffer on a fake clock: which payloads play, in which slot, at what delay.

Every scenario is a script of packets (sequence number, timestamp, arrival time)
fed to the buffer in arrival order, with one ``get`` per 20 ms tick; a packet
that arrives at a tick's instant is ``put`` before that tick's ``get``, as the
transport reads the socket before the media tick runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from media_core import g711
from media_core.jitter_buffer import (
    DTX_FRAME,
    EMPTY_FRAME,
    LOST_FRAME,
    QUIET_DETECTORS,
    AdaptiveJitterBuffer,
    Frame,
    FrameKind,
    alaw_is_quiet,
    ulaw_is_quiet,
)

PTIME_S = 0.02
SPF = 160  # samples per 20 ms frame at 8 kHz
QUIET = b"\xff" * SPF  # µ-law +0
LOUD = b"\x80" * SPF  # µ-law full scale


@dataclass
class Packet:
    seq: int
    ts: int
    arrival_s: float
    marker: bool = False
    payload: bytes = QUIET


def stream(
    first: int,
    count: int,
    *,
    seq0: int = 0,
    ts0: int = 0,
    t0: float = 0.0,
    marker_first: bool = False,
) -> list[Packet]:
    """Packets ``first .. first+count-1`` of a 20 ms stream, each arriving as it is sent."""
    return [
        Packet(
            seq=(seq0 + k) & 0xFFFF,
            ts=(ts0 + k * SPF) & 0xFFFFFFFF,
            arrival_s=t0 + k * PTIME_S,
            marker=marker_first and k == first,
        )
        for k in range(first, first + count)
    ]


def play(
    jb: AdaptiveJitterBuffer,
    packets: list[Packet],
    ticks: int,
    first_tick: int = 0,
    after_tick: Callable[[AdaptiveJitterBuffer], None] | None = None,
) -> list[Frame]:
    """Deliver ``packets`` in arrival order while ticking ``ticks`` times from ``first_tick``."""
    pending = sorted(packets, key=lambda p: p.arrival_s)
    frames = []
    i = 0
    for tick in range(first_tick, first_tick + ticks):
        now = tick * PTIME_S
        while i < len(pending) and pending[i].arrival_s <= now + 1e-9:
            p = pending[i]
            jb.put(p.seq, p.ts, p.payload, p.marker, p.arrival_s)
            i += 1
        frames.append(jb.get(now))
        if after_tick is not None:
            after_tick(jb)
    assert i == len(pending), "the script ended before every packet was delivered"
    return frames


def audio_seqs(frames: list[Frame]) -> list[int | None]:
    return [f.sequence_number for f in frames if f.kind is FrameKind.AUDIO]


def without_repeats(seqs: list[int | None]) -> list[int | None]:
    """The sequence with frames played twice in a row (inserted) counted once."""
    return [seq for i, seq in enumerate(seqs) if i == 0 or seqs[i - 1] != seq]


def kinds(frames: list[Frame]) -> str:
    """One letter per frame: A audio, L lost, D dtx, E empty."""
    return "".join(f.kind.value[0].upper() for f in frames)


# ------------------------------------------------------------ the basics


def test_get_before_any_packet_returns_the_shared_empty_frame():
    jb = AdaptiveJitterBuffer()
    assert jb.get(0.0) is EMPTY_FRAME
    assert jb.get(0.02).kind is FrameKind.EMPTY
    assert jb.delay_ms == 0.0
    assert not jb.talking


def test_an_in_order_stream_plays_every_payload_once_in_order_after_the_initial_delay():
    jb = AdaptiveJitterBuffer(initial_delay_ms=40)
    packets = stream(0, 100)
    for p in packets:
        p.payload = bytes([p.seq]) * SPF
    frames = play(jb, packets, 102)
    # Packet 0 arrives at t=0 and plays 40 ms later, at the third tick.
    assert kinds(frames[:3]) == "EEA"
    assert audio_seqs(frames) == list(range(100))
    assert [f.payload for f in frames[2:]] == [bytes([k]) * SPF for k in range(100)]
    assert [f.timestamp for f in frames[2:5]] == [0, 160, 320]
    assert jb.delay_ms == pytest.approx(40.0)
    assert jb.played == 100
    assert (jb.lost, jb.late, jb.duplicates, jb.concealed) == (0, 0, 0, 0)
    assert (jb.inserted, jb.dropped_for_drift, jb.dropped_overflow) == (0, 0, 0)


def test_packets_reordered_within_the_delay_play_in_sequence_order():
    jb = AdaptiveJitterBuffer()
    packets = stream(0, 60)
    # 10 arrives after 11, 20 after 22, 30 and 31 swap: all within the 40 ms delay.
    packets[10].arrival_s += 0.025
    packets[20].arrival_s += 0.035
    packets[30].arrival_s, packets[31].arrival_s = packets[31].arrival_s, packets[30].arrival_s
    frames = play(jb, packets, 62)
    assert audio_seqs(frames) == list(range(60))
    assert (jb.lost, jb.late, jb.concealed) == (0, 0, 0)


def test_duplicates_are_dropped_and_counted():
    jb = AdaptiveJitterBuffer()
    packets = stream(0, 30)
    packets += [Packet(5, 5 * SPF, 0.105), Packet(5, 5 * SPF, 0.5), Packet(29, 29 * SPF, 0.59)]
    frames = play(jb, packets, 32)
    assert audio_seqs(frames) == list(range(30))
    assert jb.duplicates == 3
    assert jb.played == 30


def test_a_burst_of_three_lost_packets_yields_three_lost_frames_then_resumes():
    jb = AdaptiveJitterBuffer()
    packets = [p for p in stream(0, 40) if p.seq not in (10, 11, 12)]
    frames = play(jb, packets, 42)
    played = frames[2:]
    assert kinds(played) == "A" * 10 + "LLL" + "A" * 27
    assert played[10] is LOST_FRAME
    assert audio_seqs(frames) == list(range(10)) + list(range(13, 40))
    assert jb.lost == 3
    assert jb.concealed == 3
    assert jb.late == 0
    assert jb.delay_ms == pytest.approx(40.0)


def test_a_single_lost_packet_is_one_lost_frame_when_the_next_is_already_buffered():
    jb = AdaptiveJitterBuffer(initial_delay_ms=60, min_delay_ms=60)
    packets = [p for p in stream(0, 20) if p.seq != 7]
    frames = play(jb, packets, 23)
    assert kinds(frames[3:]) == "A" * 7 + "L" + "A" * 12
    assert jb.lost == 1


def test_a_packet_arriving_after_its_slot_is_dropped_and_counted_late():
    # No frame is quiet and corrections are not forced, so the raised target
    # does not insert frames in this short talkspurt.
    jb = AdaptiveJitterBuffer(quiet_frame=lambda payload: False, force_correction_after_ms=60_000)
    packets = stream(0, 30)
    packets[10].arrival_s += 0.07  # 11 and 12 are buffered when 10's slot comes
    frames = play(jb, packets, 32)
    assert kinds(frames[2:]) == "A" * 10 + "L" + "A" * 19
    assert audio_seqs(frames) == [k for k in range(30) if k != 10]
    assert jb.late == 1
    assert jb.lost == 1
    # The late packet's 70 ms were measured all the same.
    assert jb.target_delay_ms == pytest.approx(80.0, abs=0.5)


# --------------------------------------------------- jitter and the target


def spiked_stream(count: int) -> list[Packet]:
    """A stream in which a queue forms: 50..54 are held until 55 is sent, then come together."""
    packets = stream(0, count)
    for p in packets[50:55]:
        p.arrival_s = 55 * PTIME_S
    return packets


def test_a_delay_spike_is_concealed_then_played_late_and_raises_the_target():
    jb = AdaptiveJitterBuffer()
    targets = []
    frames = play(
        jb, spiked_stream(100), 106, after_tick=lambda jb: targets.append(jb.target_delay_ms)
    )
    # Slots 50, 51, 52 come while nothing is buffered: concealed. Then the held
    # packets arrive and all play, 60 ms later than planned.
    assert kinds(frames[2:]) == "A" * 50 + "LLL" + "A" * 51
    # Packet 50 came 100 ms after its send time: from that tick on the target
    # covers it, plus half a frame.
    assert targets[54] == 40.0
    assert targets[55] == pytest.approx(110.0, abs=0.5)
    # 100 ms is below that target: packet 50 plays twice, which makes it 120 ms.
    assert audio_seqs(frames) == list(range(51)) + list(range(50, 100))
    assert jb.inserted == 3 + 1
    assert jb.delay_ms == pytest.approx(120.0)
    assert (jb.lost, jb.late) == (0, 0)


def test_the_target_decays_slowly_after_a_spike_and_the_delay_follows_it_down():
    jb = AdaptiveJitterBuffer()
    targets = []
    frames = play(
        jb, spiked_stream(3100), 3102, after_tick=lambda jb: targets.append(jb.target_delay_ms)
    )
    peak = max(targets)
    assert peak == pytest.approx(110.0, abs=0.5)
    after_peak = targets[targets.index(peak) :]
    # Never a step up again, and ten seconds later still well above the minimum...
    assert all(b <= a for a, b in zip(after_peak, after_peak[1:], strict=False))
    assert after_peak[500] > 40.0
    # ...but back near it after a minute of calm.
    assert jb.target_delay_ms < 22.0
    # The delay came down with it, a frame at a time.
    assert jb.delay_ms <= jb.target_delay_ms + 25.0
    assert jb.dropped_for_drift >= 3
    played = without_repeats(audio_seqs(frames))
    assert all(a < b for a, b in zip(played, played[1:], strict=False))
    # Every packet played, except those dropped to lower the delay and those still buffered.
    assert 3100 - len(played) == jb.dropped_for_drift + jb.buffered
    assert (jb.lost, jb.late) == (0, 0)


def test_steady_jitter_sets_a_target_that_keeps_late_packets_rare():
    rng = random.Random(5)
    jb = AdaptiveJitterBuffer()
    packets = stream(0, 3000)
    for p in packets:
        p.arrival_s += rng.uniform(0.0, 0.06)
    frames = play(jb, packets, 3010)
    assert 50.0 <= jb.target_delay_ms <= 90.0
    assert jb.late < 15  # of 3000, most while the target was still growing
    assert audio_seqs(frames) == sorted(audio_seqs(frames))


def test_a_packet_too_late_for_the_maximum_delay_is_never_played():
    jb = AdaptiveJitterBuffer(max_delay_ms=200)
    packets = stream(0, 60)
    for p in packets[20:45]:
        p.arrival_s = 45 * PTIME_S  # a queue: 25 packets held, the first for 500 ms
    frames = play(jb, packets, 80)
    assert jb.target_delay_ms == pytest.approx(200.0)
    assert jb.delay_ms <= 200.0 + 1e-6
    seqs = audio_seqs(frames)
    # The oldest held packets would need more than 200 ms: dropped as late.
    assert seqs[:20] == list(range(20))
    assert seqs[-1] == 59
    assert jb.late == seqs[20] - 20 > 0
    assert seqs[20:] == list(range(seqs[20], 60))


# --------------------------------------------------------- silence (DTX)


def test_a_silence_gap_without_packets_restarts_cleanly_at_the_marked_talkspurt():
    jb = AdaptiveJitterBuffer()
    first = stream(0, 50, marker_first=True)
    # One second without packets; sequence numbers continue, timestamps jump 50 frames.
    second = [
        Packet(50 + k, (100 + k) * SPF, (100 + k) * PTIME_S, marker=k == 0) for k in range(50)
    ]
    frames = play(jb, first + second, 160)
    spurt_a = kinds(frames).index("A")
    assert audio_seqs(frames) == list(range(100))
    gap = frames[spurt_a + 50 : spurt_a + 100]
    # An underrun first looks like loss: concealed for 60 ms, then silence.
    assert kinds(gap) == "LLL" + "D" * 47
    spurt_b = spurt_a + 100
    assert frames[spurt_b].sequence_number == 50
    assert frames[spurt_b].timestamp == 100 * SPF
    assert kinds(frames[spurt_b : spurt_b + 50]) == "A" * 50
    assert (jb.lost, jb.late) == (0, 0)
    assert (jb.inserted, jb.dropped_for_drift) == (0, 0)
    assert jb.delay_ms == pytest.approx(40.0)


def test_a_timestamp_jump_without_a_sequence_gap_is_silence_not_loss():
    jb = AdaptiveJitterBuffer(initial_delay_ms=60, min_delay_ms=60)
    first = stream(0, 20)
    # Two frames of silence; the next talkspurt is buffered before the gap begins.
    second = [Packet(20 + k, (22 + k) * SPF, (22 + k) * PTIME_S, marker=k == 0) for k in range(20)]
    frames = play(jb, first + second, 45)
    assert kinds(frames[3:]) == "A" * 20 + "DD" + "A" * 20
    assert frames[23] is DTX_FRAME
    assert (jb.lost, jb.concealed) == (0, 0)


def test_the_delay_is_lowered_at_a_talkspurt_start_by_cutting_silence():
    # Nothing is quiet and corrections are never forced: only a talkspurt start
    # may change the delay.
    jb = AdaptiveJitterBuffer(
        initial_delay_ms=100, quiet_frame=lambda payload: False, force_correction_after_ms=60_000
    )
    first = stream(0, 500)
    second = [
        Packet(500 + k, (550 + k) * SPF, (550 + k) * PTIME_S, marker=k == 0) for k in range(50)
    ]
    seen = []
    frames = play(
        jb,
        first + second,
        620,
        after_tick=lambda jb: seen.append((jb.delay_ms, jb.target_delay_ms)),
    )
    spurt_a_end = [i for i, f in enumerate(frames) if f.sequence_number == 499][0]
    spurt_b = [i for i, f in enumerate(frames) if f.sequence_number == 500][0]
    # During the first talkspurt the delay stayed at 100 ms while the target fell.
    assert {round(delay) for delay, _ in seen[5 : spurt_a_end + 1]} == {100}
    assert seen[spurt_a_end][1] < 50.0
    # The second talkspurt starts at the first tick at or above the target
    # (about 41 ms): 60 ms. The silence between them lost those 40 ms, 2 frames.
    delay_b, target_b = seen[spurt_b]
    assert target_b <= delay_b < target_b + 20.0
    assert delay_b == pytest.approx(60.0)
    assert spurt_b - spurt_a_end == 51 - 2
    assert jb.dropped_for_drift == 2
    assert jb.inserted == 0
    assert audio_seqs(frames) == list(range(550))


def test_a_raised_target_inserts_silence_before_a_marked_talkspurt_without_a_gap():
    jb = AdaptiveJitterBuffer(quiet_frame=lambda payload: False, force_correction_after_ms=60_000)
    packets = stream(0, 120)
    packets[50].arrival_s += 0.08  # a lone late packet raises the target to about 90 ms
    packets[100].marker = True  # a new talkspurt whose timestamps continue
    frames = play(jb, packets, 130)
    assert jb.late == 1
    marked = [i for i, f in enumerate(frames) if f.sequence_number == 100][0]
    held = frames[marked - jb.inserted : marked]
    assert jb.inserted >= 1
    assert all(f is DTX_FRAME for f in held)
    assert frames[marked - jb.inserted - 1].sequence_number == 99
    assert jb.delay_ms >= 40.0 + 20.0 * jb.inserted - 1e-6


# ----------------------------------------------------- sender clock drift


def drifting_stream(rate_error: float, seconds: float, jitter_ms: float = 0.0) -> list[Packet]:
    """A sender whose clock runs ``rate_error`` fast (positive) or slow (negative)."""
    rng = random.Random(11)
    interval_s = PTIME_S / (1.0 + rate_error)
    count = int(seconds / interval_s)
    return [
        Packet(
            k & 0xFFFF, (k * SPF) & 0xFFFFFFFF, k * interval_s + rng.uniform(0, jitter_ms / 1000)
        )
        for k in range(count)
    ]


@pytest.mark.parametrize("rate_error", [0.005, -0.005], ids=["fast", "slow"])
def test_sender_drift_of_half_a_percent_is_absorbed_frame_by_frame_for_ten_minutes(rate_error):
    # 0.5% of 10 minutes is 3 s of audio: 24,000 samples, 150 frames of 20 ms.
    seconds = 600.0
    expected_frames = round(abs(rate_error) * seconds / PTIME_S)
    assert expected_frames == 150
    jb = AdaptiveJitterBuffer(min_delay_ms=40)
    packets = drifting_stream(rate_error, seconds)
    pending = iter(packets)
    upcoming = next(pending)
    delays = []
    seqs = []
    for tick in range(int(seconds / PTIME_S)):
        now = tick * PTIME_S
        while upcoming is not None and upcoming.arrival_s <= now + 1e-9:
            jb.put(upcoming.seq, upcoming.ts, upcoming.payload, False, upcoming.arrival_s)
            upcoming = next(pending, None)
        frame = jb.get(now)
        if frame.kind is FrameKind.AUDIO:
            seqs.append(frame.sequence_number)
            delays.append(jb.delay_ms)
    assert min(delays) >= 40.0 - 0.5
    assert max(delays) <= 40.0 + 25.0 + 0.5
    assert (jb.lost, jb.late, jb.concealed, jb.dropped_overflow) == (0, 0, 0, 0)
    if rate_error > 0:
        assert expected_frames - 2 <= jb.dropped_for_drift <= expected_frames
        assert jb.inserted == 0
        # Every packet either played once or was dropped once.
        assert jb.played + jb.dropped_for_drift + jb.buffered == len(packets)
    else:
        assert expected_frames - 2 <= jb.inserted <= expected_frames
        assert jb.dropped_for_drift == 0
        assert jb.played + jb.buffered == len(packets)
        assert len(seqs) == jb.played + jb.inserted  # each inserted frame is a repeat


@pytest.mark.parametrize("rate_error", [0.005, -0.005], ids=["fast", "slow"])
def test_drift_with_jitter_keeps_the_delay_between_min_and_max(rate_error):
    jb = AdaptiveJitterBuffer()
    seen = []
    frames = play(
        jb,
        drifting_stream(rate_error, 120.0, jitter_ms=30.0),
        6010,
        after_tick=lambda jb: seen.append((jb.delay_ms, jb.target_delay_ms, jb.talking)),
    )
    during = seen[3:6000]  # the stream's two minutes, after the initial delay
    assert all(talking for _, _, talking in during)
    delays = [delay for delay, _, _ in during]
    assert 20.0 - 0.5 <= min(delays) and max(delays) <= 300.0
    # 30 ms of jitter sets a target around 40 ms, and the delay stays in its band
    # (a spike may lift the target a few ms at once; the delay follows a frame later).
    assert all(target - 5.0 <= delay <= target + 25.5 for delay, target, _ in during[600:])
    # 0.5% of two minutes is 12 frames; jitter adds pairs of corrections that cancel.
    corrections = jb.dropped_for_drift - jb.inserted
    assert corrections == pytest.approx(round(rate_error * 120.0 / PTIME_S), abs=3)
    assert jb.late < 10
    assert len(frames) == 6010


def test_drift_corrections_fall_on_quiet_frames_when_a_detector_is_given():
    jb = AdaptiveJitterBuffer(min_delay_ms=40, quiet_frame=ulaw_is_quiet)
    packets = drifting_stream(0.005, 120.0)
    for p in packets:
        p.payload = QUIET if p.seq % 10 == 0 else LOUD
    frames = play(jb, packets, 6000)
    played = set(audio_seqs(frames))
    dropped = {p.seq for p in packets[: max(played)]} - played
    assert len(dropped) == jb.dropped_for_drift == pytest.approx(30, abs=2)
    assert all(seq % 10 == 0 for seq in dropped)


# ----------------------------------------------- wrap-around and restarts


def test_sequence_numbers_and_timestamps_wrap_around_in_the_middle_of_a_stream():
    jb = AdaptiveJitterBuffer()
    packets = stream(0, 100, seq0=65500, ts0=2**32 - 50 * SPF)
    packets[35].arrival_s += 0.03  # 65535 arrives after 0
    packets[36].arrival_s -= 0.001
    frames = play(jb, packets, 102)
    assert audio_seqs(frames) == [(65500 + k) & 0xFFFF for k in range(100)]
    assert [f.timestamp for f in frames[2:][48:53]] == [
        2**32 - 2 * SPF,
        2**32 - SPF,
        0,
        SPF,
        2 * SPF,
    ]
    assert (jb.lost, jb.late, jb.concealed, jb.inserted) == (0, 0, 0, 0)
    assert jb.delay_ms == pytest.approx(40.0)


def test_a_renumbered_stream_is_followed_once_two_packets_confirm_it():
    jb = AdaptiveJitterBuffer()
    first = stream(0, 30)
    # RFC 3550 A.1: a jump of 3000 or more is believed only when the next packet follows it.
    renumbered = [Packet(40000 + k, (30 + k) * SPF, (30 + k) * PTIME_S) for k in range(30)]
    frames = play(jb, first + renumbered, 64)
    seqs = audio_seqs(frames)
    assert seqs[:29] == list(range(29))
    assert seqs[29:] == list(range(40001, 40030))
    assert jb.discarded == 2  # 40000, and 29 of the old numbering, still buffered


def test_reset_forgets_buffered_packets_and_waits_for_the_new_source():
    jb = AdaptiveJitterBuffer()
    play(jb, stream(0, 10), 10)
    assert jb.buffered == 2
    jb.reset()
    assert jb.buffered == 0
    assert jb.discarded == 2
    assert jb.get(0.2) is EMPTY_FRAME
    # The new source has other sequence numbers and timestamps.
    frames = play(jb, stream(0, 10, seq0=9000, ts0=777, t0=0.22), 14, first_tick=11)
    assert audio_seqs(frames) == list(range(9000, 9010))


def test_a_full_buffer_drops_its_oldest_packets():
    jb = AdaptiveJitterBuffer(max_delay_ms=100)  # room for 2 * 5 + 16 = 26 packets
    burst = [Packet(k, k * SPF, 0.0) for k in range(40)]  # all at once
    jb_frames = play(jb, burst, 1)
    assert jb.dropped_overflow == 14
    assert jb.buffered <= 26
    assert jb_frames[0].kind is FrameKind.AUDIO
    assert jb.delay_ms <= 100.0 + 1e-6


# ------------------------------------------------------------ quiet frames


@pytest.mark.parametrize(
    ("codec", "decode", "limit"),
    [("PCMU", g711.ulaw_decode, 900), ("PCMA", g711.alaw_decode, 1024)],
    ids=["PCMU", "PCMA"],
)
def test_the_quiet_frame_tests_agree_with_the_g711_decoders(codec, decode, limit):
    is_quiet = QUIET_DETECTORS[codec]
    for code in range(256):
        sample = int(decode(bytes([code]))[0])
        assert is_quiet(bytes([code]) * 4) == (abs(sample) < limit), (code, sample)
    quiet_code = bytes([0xFF if codec == "PCMU" else 0xD5])
    assert is_quiet(quiet_code * 159 + bytes([0x80])) is False  # one loud sample is enough


def test_quiet_frame_tests_are_the_codecs_own():
    silence_ulaw = g711.ulaw_encode(np.zeros(160, dtype=np.int16))
    silence_alaw = g711.alaw_encode(np.zeros(160, dtype=np.int16))
    assert ulaw_is_quiet(silence_ulaw) and alaw_is_quiet(silence_alaw)
    tone = (np.sin(np.arange(160) * 0.3) * 12000).astype(np.int16)
    assert not ulaw_is_quiet(g711.ulaw_encode(tone))
    assert not alaw_is_quiet(g711.alaw_encode(tone))


# ------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ptime_ms": 0},
        {"clock_rate_hz": 44100, "ptime_ms": 1},
        {"min_delay_ms": 50, "initial_delay_ms": 40},
        {"initial_delay_ms": 400, "max_delay_ms": 300},
    ],
)
def test_inconsistent_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        AdaptiveJitterBuffer(**kwargs)


# ----------------------------------------------------- timestamp jumps


def test_a_lone_packet_seconds_late_is_dropped_without_disturbing_the_stream():
    jb = AdaptiveJitterBuffer()
    packets = stream(0, 200)
    packets[30].arrival_s += 2.0  # long after its slot, and far off the timeline
    frames = play(jb, packets, 202)
    assert audio_seqs(frames) == [k for k in range(200) if k != 30]
    assert (jb.lost, jb.late, jb.discarded) == (1, 1, 0)
    assert jb.target_delay_ms < 40.0  # 2 s says nothing about the network's jitter
    assert jb.delay_ms == pytest.approx(40.0)


def test_a_jump_in_the_senders_timestamps_is_followed_once_the_next_packet_confirms_it():
    jb = AdaptiveJitterBuffer()
    first = stream(0, 50)
    # Sequence numbers continue; timestamps leap an hour ahead.
    leap = 3600 * 8000
    second = [Packet(50 + k, leap + (50 + k) * SPF, (50 + k) * PTIME_S) for k in range(50)]
    frames = play(jb, first + second, 104)
    seqs = audio_seqs(frames)
    # 49 was still buffered when 51 confirmed the new timeline; 50 was the unconfirmed stray.
    assert seqs == list(range(49)) + list(range(51, 100))
    assert jb.discarded == 2
    assert jb.lost == 0
    assert jb.target_delay_ms <= 40.0
    assert jb.delay_ms == pytest.approx(40.0)
