"""G.711 µ-law and A-law: the Cython kernel and its NumPy twin, held to the ITU tables.

Every test runs on both implementations ("py" is the twin, "c" the kernel). The
reference is built here from the segment structure of G.711 Tables 1a and 2a
(decision values and their midpoints), not from the bit arithmetic the modules use;
PyAV (FFmpeg) cross-checks the decoders bit for bit, and the encoders everywhere
but where FFmpeg rounds to the nearest level instead of using G.711's decision values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from media_core import _g711_py, g711

REPO = Path(__file__).resolve().parents[3]
ALL_CODES = np.arange(256, dtype=np.uint8)
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


@pytest.fixture(params=["py", "c"], ids=["py", "c"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "py":
        return _g711_py
    if g711.extensions_disabled():
        pytest.skip("HOTLINE_NO_EXTENSIONS is set: the Cython kernel is not in use")
    module, why = g711.load_extension()
    if module is None:
        pytest.skip(str(why))
    return module


# ---------------------------------------------------------------- ITU reference

# G.711 Table 2a: µ-law segment end points on the 14-bit magnitude scale (max 8159);
# segment 0 holds one interval of width 1 around 0, then steps of 2.
ULAW_SEGMENT_ENDS = [0, 31, 95, 223, 479, 991, 2015, 4063, 8159]
# G.711 Table 1a: A-law segment end points on the 13-bit magnitude scale (max 4096).
ALAW_SEGMENT_ENDS = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096]


def _decision_values(segment_ends: list[int], ulaw: bool) -> np.ndarray:
    """The lower decision value of each of the 128 magnitude intervals, plus the top."""
    lower: list[int] = []
    for segment in range(8):
        start, end = segment_ends[segment], segment_ends[segment + 1]
        step = (end - start) // 16
        lower += [start + i * step for i in range(16)]
    if ulaw:
        lower[1:16] = [2 * i - 1 for i in range(1, 16)]  # 0 | 1..3 | 3..5 | ... | 29..31
    return np.array([*lower, segment_ends[-1]])


ULAW_DECISIONS = _decision_values(ULAW_SEGMENT_ENDS, ulaw=True)
ALAW_DECISIONS = _decision_values(ALAW_SEGMENT_ENDS, ulaw=False)


def _levels(decisions: np.ndarray, ulaw: bool) -> np.ndarray:
    """Reconstruction value of each interval: its middle (µ-law's first is exactly 0)."""
    middle = (decisions[:-1] + decisions[1:]) / 2
    if ulaw:
        middle[0] = 0
    return middle.astype(np.int64)


def itu_ulaw_encode(pcm: np.ndarray) -> bytes:
    x = pcm.astype(np.int64)
    negative = x < 0
    magnitude = np.where(negative, ~x, x) >> 2  # G.191: one's complement for negatives
    index = np.searchsorted(ULAW_DECISIONS[:-1], magnitude, side="right") - 1
    return ((~((negative << 7) | index)) & 0xFF).astype(np.uint8).tobytes()


def itu_ulaw_decode(codes: np.ndarray) -> np.ndarray:
    inverted = ~codes.astype(np.int64) & 0xFF
    level = _levels(ULAW_DECISIONS, ulaw=True)[inverted & 0x7F] * 4
    return np.where(inverted & 0x80, -level, level)


def itu_alaw_encode(pcm: np.ndarray) -> bytes:
    x = pcm.astype(np.int64)
    positive = x >= 0
    magnitude = np.where(positive, x, ~x) >> 3
    index = np.searchsorted(ALAW_DECISIONS[:-1], magnitude, side="right") - 1
    return (((positive << 7) | index) ^ 0x55).astype(np.uint8).tobytes()


def itu_alaw_decode(codes: np.ndarray) -> np.ndarray:
    value = codes.astype(np.int64) ^ 0x55
    level = _levels(ALAW_DECISIONS, ulaw=False)[value & 0x7F] * 8
    return np.where(value & 0x80, level, -level)


# ------------------------------------------------------------- against the ITU


def test_ulaw_decodes_every_code_to_its_itu_reconstruction_value(impl: ModuleType) -> None:
    decoded = impl.ulaw_decode(ALL_CODES.tobytes())
    assert decoded.dtype == np.int16
    assert decoded.tolist() == itu_ulaw_decode(ALL_CODES).tolist()
    # Landmarks: 0xFF and 0x7F are the two zeros, 0x80 the positive peak.
    assert (decoded[0xFF], decoded[0x7F], decoded[0x80], decoded[0x00]) == (0, 0, 32124, -32124)


def test_alaw_decodes_every_code_to_its_itu_reconstruction_value(impl: ModuleType) -> None:
    decoded = impl.alaw_decode(ALL_CODES.tobytes())
    assert decoded.dtype == np.int16
    assert decoded.tolist() == itu_alaw_decode(ALL_CODES).tolist()
    assert (decoded[0xD5], decoded[0x55], decoded[0xAA], decoded[0x2A]) == (8, -8, 32256, -32256)


def test_ulaw_encodes_every_16_bit_sample_per_the_itu_decision_values(impl: ModuleType) -> None:
    assert impl.ulaw_encode(ALL_SAMPLES) == itu_ulaw_encode(ALL_SAMPLES)


def test_alaw_encodes_every_16_bit_sample_per_the_itu_decision_values(impl: ModuleType) -> None:
    assert impl.alaw_encode(ALL_SAMPLES) == itu_alaw_encode(ALL_SAMPLES)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encoding_a_decoded_code_gives_the_same_code_back(impl: ModuleType, law: str) -> None:
    decode, encode = getattr(impl, f"{law}_decode"), getattr(impl, f"{law}_encode")
    codes = np.frombuffer(encode(decode(ALL_CODES)), dtype=np.uint8)
    if law == "ulaw":
        # 0x7F is "negative zero": it decodes to 0, which encodes as 0xFF.
        expected = np.where(ALL_CODES == 0x7F, 0xFF, ALL_CODES)
    else:
        expected = ALL_CODES
    assert codes.tolist() == expected.tolist()


# ------------------------------------------------------- kernel against twin


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_kernel_and_twin_agree_on_every_code_and_every_sample(law: str) -> None:
    if g711.extensions_disabled():
        pytest.skip("HOTLINE_NO_EXTENSIONS is set: the Cython kernel is not in use")
    kernel, why = g711.load_extension()
    if kernel is None:
        pytest.skip(str(why))
    twin = _g711_py
    assert getattr(kernel, f"{law}_encode")(ALL_SAMPLES) == getattr(twin, f"{law}_encode")(
        ALL_SAMPLES
    )
    assert np.array_equal(
        getattr(kernel, f"{law}_decode")(ALL_CODES), getattr(twin, f"{law}_decode")(ALL_CODES)
    )


# ------------------------------------------------------------------ PyAV


def _av_encode(codec: str, pcm: np.ndarray) -> bytes:
    av = pytest.importorskip("av", reason="PyAV is not installed: no FFmpeg cross-check")
    context = av.CodecContext.create(codec, "w")
    context.sample_rate = 8000
    context.layout = "mono"
    context.format = "s16"
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    packets = [*context.encode(frame), *context.encode(None)]
    return b"".join(bytes(packet) for packet in packets)


def _av_decode(codec: str, data: bytes) -> np.ndarray:
    av = pytest.importorskip("av", reason="PyAV is not installed: no FFmpeg cross-check")
    context = av.CodecContext.create(codec, "r")
    context.sample_rate = 8000
    context.layout = "mono"
    frames = context.decode(av.Packet(data))
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


@pytest.mark.parametrize(("law", "codec"), [("ulaw", "pcm_mulaw"), ("alaw", "pcm_alaw")])
def test_decoding_all_256_codes_matches_pyav_bit_for_bit(
    impl: ModuleType, law: str, codec: str
) -> None:
    ours = getattr(impl, f"{law}_decode")(ALL_CODES.tobytes())
    theirs = _av_decode(codec, ALL_CODES.tobytes())
    assert theirs.dtype == np.int16
    assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize(("law", "codec"), [("ulaw", "pcm_mulaw"), ("alaw", "pcm_alaw")])
def test_encoding_the_int16_ramp_matches_pyav_except_where_ffmpeg_rounds_to_nearest(
    impl: ModuleType, law: str, codec: str
) -> None:
    decode = getattr(impl, f"{law}_decode")
    ours = np.frombuffer(getattr(impl, f"{law}_encode")(ALL_SAMPLES), dtype=np.uint8)
    theirs = np.frombuffer(_av_encode(codec, ALL_SAMPLES), dtype=np.uint8)
    assert len(theirs) == len(ours) == 65536
    differ = ours != theirs
    # FFmpeg quantises floor(x / 4) to the nearest level (ties away from zero);
    # G.711 puts segment-edge decisions at the edge and G.191 mirrors negatives
    # by one's complement. That moves 964 samples of 65536 by exactly one level.
    assert int(differ.sum()) == 964
    x = ALL_SAMPLES[differ].astype(np.int64)
    our_level = decode(ours[differ].copy()).astype(np.int64)
    their_level = decode(theirs[differ].copy()).astype(np.int64)
    levels = np.unique(decode(ALL_CODES))
    steps_apart = np.abs(np.searchsorted(levels, our_level) - np.searchsorted(levels, their_level))
    assert set(steps_apart.tolist()) == {1}
    assert np.all(
        (np.minimum(our_level, their_level) <= x) & (x <= np.maximum(our_level, their_level))
    )
    on_ffmpeg_grid = (x // 4) * 4
    assert np.all(np.abs(their_level - on_ffmpeg_grid) <= np.abs(our_level - on_ffmpeg_grid))


# --------------------------------------------------------- API and errors


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decoders_accept_bytes_bytearray_memoryview_and_uint8_arrays_alike(
    impl: ModuleType, law: str
) -> None:
    decode = getattr(impl, f"{law}_decode")
    payload = bytes([0x00, 0x13, 0x7F, 0x80, 0xD5, 0xFF])
    expected = decode(payload).tolist()
    assert decode(bytearray(payload)).tolist() == expected
    assert decode(memoryview(payload)).tolist() == expected
    assert decode(np.frombuffer(payload, dtype=np.uint8)).tolist() == expected
    strided = np.frombuffer(payload * 2, dtype=np.uint8).reshape(2, -1).T.copy().reshape(-1)[::2]
    assert decode(strided).tolist() == expected
    assert decode(b"").tolist() == []


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encoders_return_bytes_and_accept_strided_int16(impl: ModuleType, law: str) -> None:
    encode = getattr(impl, f"{law}_encode")
    pcm = np.array([0, 1000, -1000, 32767, -32768, 7], dtype=np.int16)
    encoded = encode(pcm)
    assert isinstance(encoded, bytes) and len(encoded) == 6
    assert encode(np.repeat(pcm, 2)[::2]) == encoded
    assert encode(np.zeros(0, dtype=np.int16)) == b""


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encoders_reject_samples_that_are_not_1d_int16(impl: ModuleType, law: str) -> None:
    encode = getattr(impl, f"{law}_encode")
    with pytest.raises(TypeError, match="1-D int16"):
        encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="1-D int16"):
        encode(np.zeros((2, 2), dtype=np.int16))
    with pytest.raises(TypeError, match="1-D int16"):
        encode(b"\x00\x00")


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decoders_reject_arrays_that_are_not_1d_uint8(impl: ModuleType, law: str) -> None:
    with pytest.raises(TypeError, match="1-D uint8"):
        getattr(impl, f"{law}_decode")(np.zeros(4, dtype=np.int16))


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_into_variants_fill_the_callers_buffer_like_the_allocating_ones(
    impl: ModuleType, law: str
) -> None:
    codes = np.empty(len(ALL_SAMPLES), dtype=np.uint8)
    assert getattr(impl, f"{law}_encode_into")(ALL_SAMPLES, codes) is None
    assert codes.tobytes() == getattr(impl, f"{law}_encode")(ALL_SAMPLES)
    pcm = np.empty(256, dtype=np.int16)
    assert getattr(impl, f"{law}_decode_into")(ALL_CODES, pcm) is None
    assert pcm.tolist() == getattr(impl, f"{law}_decode")(ALL_CODES).tolist()


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_into_variants_write_a_2d_frame_block_through_its_flat_view(
    impl: ModuleType, law: str
) -> None:
    frames = ALL_SAMPLES[:1600].reshape(10, 160)
    out = np.zeros((10, 160), dtype=np.uint8)
    getattr(impl, f"{law}_encode_into")(frames.reshape(-1), out.reshape(-1))
    assert out[3].tobytes() == getattr(impl, f"{law}_encode")(frames[3])


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_into_variants_reject_wrong_length_type_or_layout(impl: ModuleType, law: str) -> None:
    encode_into = getattr(impl, f"{law}_encode_into")
    decode_into = getattr(impl, f"{law}_decode_into")
    pcm = np.zeros(160, dtype=np.int16)
    with pytest.raises(ValueError, match="out has 159 elements, the input has 160"):
        encode_into(pcm, np.zeros(159, dtype=np.uint8))
    with pytest.raises(TypeError, match="out must be a 1-D uint8 array"):
        encode_into(pcm, np.zeros(160, dtype=np.int16))
    with pytest.raises(ValueError, match="C-contiguous"):
        encode_into(pcm, np.zeros(320, dtype=np.uint8)[::2])
    read_only = np.zeros(160, dtype=np.int16)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        decode_into(bytes(160), read_only)
    with pytest.raises(TypeError, match="out must be a 1-D int16 array"):
        decode_into(bytes(160), np.zeros(160, dtype=np.uint8))


# ------------------------------------------------------------- selection


def _import_in_subprocess(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_NO_EXTENSIONS"}
    if env_value is not None:
        env["HOTLINE_NO_EXTENSIONS"] = env_value
    code = "from media_core import g711; print(g711.USING_EXTENSION, g711.ulaw_encode.__module__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_hotline_no_extensions_selects_the_twin_at_import() -> None:
    assert _import_in_subprocess("1") == "False media_core._g711_py"


def test_without_the_variable_the_kernel_is_selected_when_built() -> None:
    module, why = g711.load_extension()
    if module is None:
        pytest.skip(str(why))
    assert _import_in_subprocess(None) == "True media_core._g711"
    assert _import_in_subprocess("0") == "True media_core._g711"


def test_public_module_exposes_the_selected_implementation_consistently() -> None:
    selected = g711.ulaw_encode.__module__
    assert g711.USING_EXTENSION == (selected == "media_core._g711")
    assert (g711.FALLBACK_REASON is None) == g711.USING_EXTENSION
    for name in ("ulaw_decode", "alaw_encode", "ulaw_encode_into", "alaw_decode_into"):
        assert getattr(g711, name).__module__ == selected
