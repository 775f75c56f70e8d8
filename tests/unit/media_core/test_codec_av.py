"""G.722 and Opus through PyAV: one 20 ms payload per 8 kHz frame, and back, faithfully."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from media_core.codec_av import (
    WIDEBAND_CODECS,
    AvDecoder,
    AvEncoder,
    decoder_for,
    encoder_for,
    opus_packet_samples,
)
from media_core.resample import Resampler, resample
from media_core.tone import tone_pcm

CODECS = ["G722", "opus"]
FRAME = 160  # 20 ms at 8 kHz


def chirp(seconds: float, rate_hz: int = 8000, start_hz: float = 300.0, end_hz: float = 3000.0):
    """A linear sweep: unlike a tone, it matches itself at one lag only."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    phase = 2 * np.pi * (start_hz * t + (end_hz - start_hz) * t * t / (2 * seconds))
    return np.rint(0.3 * 32767 * np.sin(phase)).astype(np.int16)


def round_trip(codec: str, pcm: np.ndarray, **timing: int) -> np.ndarray:
    encoder, decoder = encoder_for(codec, **timing), decoder_for(codec, **timing)
    n = encoder.frame_samples
    return np.concatenate(
        [decoder.decode(encoder.encode(pcm[i : i + n])) for i in range(0, len(pcm), n)]
    )


def align(sent: np.ndarray, received: np.ndarray, start: int, stop: int, rate_hz: int = 8000):
    """(delay in ms, SNR in dB) of ``received`` against ``sent[start:stop]``.

    Both are upsampled 6x first: codec and resampler delays are not whole 8 kHz
    samples, and half a sample off would hold a 1 kHz tone to an SNR of 8 dB.
    """
    up = 6
    high_hz = rate_hz * up
    x = resample(sent, rate_hz, high_hz).astype(np.float64)
    y = resample(received, rate_hz, high_hz).astype(np.float64)
    ref = x[start * up : stop * up]
    lags = range(0, 15 * high_hz // 1000)  # up to 15 ms
    scores = [np.dot(ref, y[start * up + lag : stop * up + lag]) for lag in lags]
    lag = int(np.argmax(scores))
    out = y[start * up + lag : stop * up + lag]
    snr_db = 10 * math.log10(np.sum(ref**2) / np.sum((out - ref) ** 2))
    return lag * 1000 / high_hz, snr_db


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


# ------------------------------------------------------------------ SDP facts


def test_g722_runs_an_8000_hz_rtp_clock_though_it_is_sampled_at_16000_hz():
    g722 = WIDEBAND_CODECS["G722"]
    assert g722.rtpmap == "G722/8000"
    assert (g722.clock_rate_hz, g722.sample_rate_hz) == (8000, 16000)
    assert g722.timestamp_step(20) == 160


def test_opus_is_always_opus_48000_2_with_a_48_khz_rtp_clock():
    opus = WIDEBAND_CODECS["OPUS"]
    assert opus.rtpmap == "opus/48000/2"
    assert (opus.clock_rate_hz, opus.sample_rate_hz) == (48000, 48000)
    assert opus.timestamp_step(20) == 960
    assert opus.timestamp_step(10) == 480


# ------------------------------------------------------------------ factories


@pytest.mark.parametrize(
    ("name", "key"),
    [("g722", "G722"), ("G722", "G722"), ("opus", "OPUS"), ("OPUS", "OPUS"), ("Opus", "OPUS")],
)
def test_factories_take_the_sdp_encoding_name_in_any_case(name: str, key: str):
    decoder, encoder = decoder_for(name), encoder_for(name)
    assert isinstance(decoder, AvDecoder) and isinstance(encoder, AvEncoder)
    assert decoder.codec is encoder.codec is WIDEBAND_CODECS[key]
    assert (decoder.frame_samples, encoder.frame_samples) == (FRAME, FRAME)


@pytest.mark.parametrize("factory", [decoder_for, encoder_for])
@pytest.mark.parametrize("name", ["AMR-WB", "PCMU", ""])
def test_factories_name_the_unknown_codec_they_refuse(factory, name: str):
    with pytest.raises(ValueError, match=f"codec '{name}' is not a wideband codec"):
        factory(name)


@pytest.mark.parametrize("factory", [decoder_for, encoder_for])
def test_unsupported_packet_times_and_pcm_rates_are_refused(factory):
    with pytest.raises(ValueError, match="ptime_ms"):
        factory("opus", ptime_ms=30)
    with pytest.raises(ValueError, match="pcm_rate_hz"):
        factory("G722", pcm_rate_hz=44100)


# ------------------------------------------------------------------ encoding


def test_g722_payloads_are_160_bytes_per_20_ms_from_the_first_frame():
    encoder = encoder_for("G722")
    tone = tone_pcm(1000.0, 1000)
    sizes = {len(encoder.encode(tone[i : i + FRAME])) for i in range(0, len(tone), FRAME)}
    assert sizes == {160}


def test_every_opus_encode_is_one_20_ms_packet_from_the_first_frame():
    encoder = encoder_for("opus")
    tone = tone_pcm(1000.0, 1000)
    payloads = [encoder.encode(tone[i : i + FRAME]) for i in range(0, len(tone), FRAME)]
    assert all(opus_packet_samples(payload) == 960 for payload in payloads)
    # A voice bitrate: VBR around 24 kbit/s at most (60 bytes per 20 ms on average).
    assert min(len(payload) for payload in payloads) > 3  # 1-3 bytes: silence/DTX
    assert sum(len(payload) for payload in payloads) <= 50 * 60


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(FRAME, dtype=np.float64),
        np.zeros(FRAME - 1, dtype=np.int16),
        np.zeros(FRAME + 1, dtype=np.int16),
        np.zeros((1, FRAME), dtype=np.int16),
        np.zeros(FRAME, dtype=np.int32),
        [0] * FRAME,
    ],
    ids=["float64", "159", "161", "2-D", "int32", "list"],
)
def test_encoders_refuse_anything_but_one_1d_int16_frame(codec: str, bad):
    with pytest.raises(ValueError, match="expected 1-D int16 of 160 samples"):
        encoder_for(codec).encode(bad)


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize(("codec", "min_snr_db"), [("G722", 40.0), ("opus", 18.0)])
def test_a_1khz_tone_comes_back_through_50_frames(codec: str, min_snr_db: float):
    # Measured: G.722 48 dB (64 kbit/s ADPCM); Opus 24.5 dB (a perceptual
    # codec at ~12 kbit/s keeps the sound, not every sample).
    tone = tone_pcm(1000.0, 1000)
    back = round_trip(codec, tone)
    assert back.dtype == np.int16 and back.shape == tone.shape
    _, snr_db = align(tone, back, 800, 7000)
    assert snr_db > min_snr_db
    middle = slice(800, 7000)
    assert abs(rms(back[middle]) / rms(tone[middle]) - 1.0) < 0.05


@pytest.mark.parametrize(
    ("codec", "rate_pairs", "codec_delay_s"),
    [
        # Up to 16 kHz and back down; the QMF filter pair (FFmpeg's initial padding).
        ("G722", [(8000, 16000), (16000, 8000)], 22 / 16000),
        # libopus takes 8 kHz itself; its VoIP-mode lookahead (its pre-skip).
        ("opus", [(48000, 8000)], 312 / 48000),
    ],
)
def test_the_round_trip_adds_only_the_resamplers_and_the_codecs_own_delay(
    codec: str, rate_pairs: list[tuple[int, int]], codec_delay_s: float
):
    sweep = chirp(1.0)
    back = round_trip(codec, sweep)
    early_ms, early_snr = align(sweep, back, 800, 4000)
    late_ms, late_snr = align(sweep, back, 4000, 7600)
    # No frame is held back anywhere: the delay is the filters' alone, and it stays put.
    resamplers_s = sum(Resampler(a, b).delay_samples / b for a, b in rate_pairs)
    assert abs(early_ms - 1000 * (resamplers_s + codec_delay_s)) < 0.1
    assert abs(late_ms - early_ms) < 1.5 * 1000 / 48000  # within one 48 kHz sample
    assert early_ms < 10.0
    # Measured: G.722 48 and 50 dB; Opus 23 and 14 dB (2-3 kHz costs SILK more).
    assert min(early_snr, late_snr) > (40.0 if codec == "G722" else 10.0)


@pytest.mark.parametrize("codec", CODECS)
def test_silence_in_is_near_silence_out(codec: str):
    back = round_trip(codec, np.zeros(50 * FRAME, dtype=np.int16))
    assert np.max(np.abs(back)) <= 8  # -72 dBFS


@pytest.mark.parametrize(
    ("codec", "ptime_ms", "pcm_rate_hz", "min_snr_db"),
    [
        ("G722", 10, 8000, 40.0),
        ("G722", 30, 8000, 40.0),
        ("G722", 20, 16000, 40.0),
        # Measured: G.722 47-48 dB; Opus 27, 24.5, 17.6 and 16 dB.
        ("opus", 10, 8000, 20.0),
        ("opus", 60, 8000, 20.0),
        ("opus", 20, 16000, 12.0),
        ("opus", 20, 48000, 12.0),
    ],
)
def test_other_packet_times_and_pcm_rates_also_give_one_packet_per_frame(
    codec: str, ptime_ms: int, pcm_rate_hz: int, min_snr_db: float
):
    encoder = encoder_for(codec, ptime_ms=ptime_ms, pcm_rate_hz=pcm_rate_hz)
    decoder = decoder_for(codec, ptime_ms=ptime_ms, pcm_rate_hz=pcm_rate_hz)
    n = pcm_rate_hz * ptime_ms // 1000
    assert encoder.frame_samples == decoder.frame_samples == n
    tone = tone_pcm(1000.0, 1200, rate_hz=pcm_rate_hz)
    back = []
    for i in range(0, len(tone), n):
        payload = encoder.encode(tone[i : i + n])
        if codec == "G722":
            assert len(payload) == 8 * ptime_ms
        else:
            assert opus_packet_samples(payload) == 48 * ptime_ms
        frame = decoder.decode(payload)
        assert frame.shape == (n,)
        back.append(frame)
    _, snr_db = align(tone, np.concatenate(back), len(tone) // 10, len(tone) * 8 // 10, pcm_rate_hz)
    assert snr_db > min_snr_db


# ------------------------------------------------------------------ bad payloads


@pytest.mark.parametrize(
    ("codec", "payload", "message"),
    [
        ("G722", b"", "G722 payload of 0 bytes, expected 160"),
        ("G722", bytes(159), "G722 payload of 159 bytes, expected 160"),
        ("G722", bytes(320), "G722 payload of 320 bytes, expected 160"),
        ("opus", b"", "empty Opus payload"),
        ("opus", b"\x03", "without its frame count"),  # code 3 needs a count byte
        ("opus", b"\xfb\x00", "zero frames"),
        ("opus", b"\xff\xff\xff", "longer than 120 ms"),  # 63 frames of 20 ms
        ("opus", b"\x10" + bytes(40), "payload of 40 ms, expected 20 ms"),  # SILK 40 ms
        # Durations are right; FFmpeg finds the rest broken (RFC 6716 §3.4).
        ("opus", bytes([0x71, 1, 2, 3]), "opus payload of 4 bytes is corrupt"),  # code 1, odd
        ("opus", bytes([0xFB, 0x41, 0xFF]), "opus payload of 3 bytes is corrupt"),  # padding
    ],
    ids=[
        "g722-empty",
        "g722-short",
        "g722-40ms",
        "opus-empty",
        "opus-code3-no-count",
        "opus-code3-zero-frames",
        "opus-over-120ms",
        "opus-40ms",
        "opus-code1-odd-length",
        "opus-padding-past-end",
    ],
)
def test_a_bad_payload_raises_value_error_and_the_stream_decodes_on(codec, payload, message):
    tone = tone_pcm(440.0, 400)
    encoder = encoder_for(codec)
    good = [encoder.encode(tone[i : i + FRAME]) for i in range(0, len(tone), FRAME)]
    decoder, untouched = decoder_for(codec), decoder_for(codec)
    for payload_before in good[:5]:
        decoder.decode(payload_before)
        untouched.decode(payload_before)
    with pytest.raises(ValueError, match=message) as raised:
        decoder.decode(payload)
    assert not isinstance(raised.value, av.error.FFmpegError)  # ours, not PyAV's
    # Nothing of the bad payload stayed in the decoder: it goes on as if never sent.
    for payload_after in good[5:]:
        np.testing.assert_array_equal(
            decoder.decode(payload_after), untouched.decode(payload_after)
        )


# ------------------------------------------------------------------ loss


@pytest.mark.parametrize("codec", CODECS)
def test_conceal_before_any_packet_is_one_frame_of_silence(codec: str):
    frame = decoder_for(codec).conceal()
    assert frame.dtype == np.int16 and frame.shape == (FRAME,)
    assert not frame.any()


@pytest.mark.parametrize("codec", CODECS)
def test_a_lost_frame_continues_a_steady_tone(codec: str):
    tone = tone_pcm(1000.0, 1000)
    encoder = encoder_for(codec)
    payloads = [encoder.encode(tone[i : i + FRAME]) for i in range(0, len(tone), FRAME)]
    lossy, reference = decoder_for(codec), decoder_for(codec)
    for payload in payloads[:20]:
        lossy.decode(payload)
        reference.decode(payload)
    concealed = lossy.conceal().astype(np.float64)
    heard = reference.decode(payloads[20]).astype(np.float64)
    assert concealed.shape == (FRAME,)
    correlation = np.dot(concealed, heard) / np.sqrt(
        np.dot(concealed, concealed) * np.dot(heard, heard)
    )
    assert correlation > 0.95  # measured 0.997 for both
    assert rms(concealed) > 0.8 * rms(heard)


@pytest.mark.parametrize("codec", CODECS)
def test_a_long_loss_fades_to_silence_and_the_stream_recovers(codec: str):
    tone = tone_pcm(1000.0, 1500)
    encoder = encoder_for(codec)
    payloads = [encoder.encode(tone[i : i + FRAME]) for i in range(0, len(tone), FRAME)]
    lossy, reference = decoder_for(codec), decoder_for(codec)
    for payload in payloads[:20]:
        lossy.decode(payload)
        reference.decode(payload)
    concealed = [lossy.conceal() for _ in range(10)]  # 200 ms lost
    assert rms(concealed[0]) > 0.5 * rms(tone)
    assert all(np.max(np.abs(frame)) <= 64 for frame in concealed[5:])  # silent after 100 ms
    for payload in payloads[20:30]:
        reference.decode(payload)
    after = [lossy.decode(payload) for payload in payloads[30:]]
    expected = [reference.decode(payload) for payload in payloads[30:]]
    # The first frame back fades in rather than bursting in.
    assert rms(after[0]) < 1.1 * rms(expected[0])
    # SILK predicts from the frames it lost, so libopus takes about 250 ms to
    # match the stream again (its own behaviour, concealed or not); G.722 at once.
    settled = after[15:] if codec == "opus" else after[1:]
    reached = expected[15:] if codec == "opus" else expected[1:]
    assert abs(rms(np.concatenate(settled)) / rms(np.concatenate(reached)) - 1.0) < 0.05


# ------------------------------------------------------------------ interworking


@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_opus_from_an_independent_48khz_encoder_decodes(layout: str):
    # A peer's encoder as browsers run it: 48 kHz, "audio" application, maybe stereo.
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = layout
    encoder.format = "s16"
    encoder.bit_rate = 64000
    encoder.open()
    assert encoder.frame_size == 960
    channels = 1 if layout == "mono" else 2
    tone_48k = tone_pcm(1000.0, 1000, rate_hz=48000)
    interleaved = np.repeat(tone_48k, channels).reshape(1, -1)  # s16 is packed
    decoder = decoder_for("OPUS")
    back = []
    for i in range(0, len(tone_48k), 960):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(interleaved[:, i * channels : (i + 960) * channels]),
            format="s16",
            layout=layout,
        )
        frame.sample_rate = 48000
        frame.pts = i
        for packet in encoder.encode(frame):
            back.append(decoder.decode(bytes(packet)))
    assert len(back) == 50 and all(frame.shape == (FRAME,) for frame in back)
    tone_8k = tone_pcm(1000.0, 1000)
    _, snr_db = align(tone_8k, np.concatenate(back), 800, 7000)
    assert snr_db > 30.0  # measured 44 dB mono, 43 dB stereo (64 kbit/s)


def test_our_opus_decodes_in_ffmpegs_own_opus_decoder():
    # FFmpeg's native decoder shares no code with libopus, which we encode with.
    native = av.CodecContext.create("opus", "r")
    native.sample_rate = 48000
    native.layout = "mono"
    encoder = encoder_for("opus")
    tone = tone_pcm(1000.0, 1000)
    decoded = []
    for i in range(0, len(tone), FRAME):
        (frame,) = native.decode(av.Packet(encoder.encode(tone[i : i + FRAME])))
        decoded.append(frame.to_ndarray().reshape(-1))
    pcm_48k = np.concatenate(decoded)
    assert abs(len(pcm_48k) - 48000) <= 48  # it trims its first half millisecond
    back = resample(np.rint(np.clip(pcm_48k, -1, 1) * 32767).astype(np.int16), 48000, 8000)
    _, snr_db = align(tone, back, 800, 7000)
    assert snr_db > 18.0


# ------------------------------------------------------------------ TOC


@pytest.mark.parametrize(
    ("payload", "samples"),
    [
        (bytes([0x08]), 960),  # config 1: SILK narrowband 20 ms, one frame
        (bytes([0x48, 0xAA]), 960),  # config 9: SILK wideband 20 ms
        (bytes([0x18]), 2880),  # config 3: SILK narrowband 60 ms
        (bytes([0x79, 1, 2]), 1920),  # config 15: Hybrid fullband 20 ms, two equal frames
        (bytes([0xF8]), 960),  # config 31: CELT fullband 20 ms
        (bytes([0xF5, 1, 2]), 960),  # config 30: CELT 10 ms, stereo, code 1
        (bytes([0x83, 0x08]), 960),  # config 16: CELT 2.5 ms, code 3, eight frames
        (bytes([0x1B, 0x02]), 5760),  # config 3, code 3, two 60 ms frames: the 120 ms limit
    ],
)
def test_opus_packet_duration_is_read_from_its_toc(payload: bytes, samples: int):
    assert opus_packet_samples(payload) == samples
