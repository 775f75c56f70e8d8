"""ITU-T G.711 µ-law and A-law in NumPy: the pure twin of the ``_g711`` kernel.

Both directions are table lookups. The tables are computed once at import, with
vectorised bit arithmetic straight from the G.711 segment definitions (Tables 1a
and 2a of the Recommendation), so they share nothing with the Cython kernel but
the standard; the tests hold the two to identical output for every input.

Linear PCM is 16-bit signed. G.711 itself is defined on 14-bit (µ-law) and
13-bit (A-law) linear samples: the encoders use the top bits of the 16-bit
sample and the decoders return the reconstruction value scaled back to 16 bits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "alaw_decode",
    "alaw_decode_into",
    "alaw_encode",
    "alaw_encode_into",
    "ulaw_decode",
    "ulaw_decode_into",
    "ulaw_encode",
    "ulaw_encode_into",
]

# µ-law adds this bias to the 14-bit magnitude so that every segment starts at a
# power of two; segment s then holds magnitudes [2**(s+5), 2**(s+6)) - 33.
_ULAW_BIAS = 33
_ULAW_MAX_MAGNITUDE = 0x1FFF - _ULAW_BIAS  # 8158: the top of segment 7


def _segment(value: NDArray[np.int32], first_bit: int) -> NDArray[np.int32]:
    """Index of the highest set bit of ``value`` above ``first_bit``, clamped to 0..7."""
    segment = np.zeros_like(value)
    for s in range(1, 8):
        segment[value >= (1 << (first_bit + s))] = s
    return segment


def _build_ulaw_decode() -> NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF  # G.711 transmits µ-law inverted
    segment = (code >> 4) & 0x7
    mantissa = code & 0xF
    # Reconstruction value: the middle of the mantissa's interval, in 14-bit units.
    magnitude = (((mantissa << 1) + _ULAW_BIAS) << segment) - _ULAW_BIAS
    linear = np.where(code & 0x80, -magnitude, magnitude) << 2
    return linear.astype(np.int16)


def _build_ulaw_encode() -> NDArray[np.uint8]:
    # Indexed by the int16 sample's bit pattern read as uint16.
    pcm = np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)
    sample14 = pcm >> 2  # arithmetic shift: the 14-bit sample is the floor
    negative = sample14 < 0
    # Negative samples mirror the positive ones: -1 is the first step below zero.
    magnitude = np.minimum(np.where(negative, ~sample14, sample14), _ULAW_MAX_MAGNITUDE)
    biased = magnitude + _ULAW_BIAS
    segment = _segment(biased, 5)
    mantissa = (biased >> (segment + 1)) & 0xF
    code = (negative.astype(np.int32) << 7) | (segment << 4) | mantissa
    return (~code & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55  # G.711 inverts A-law's even bits
    segment = (code >> 4) & 0x7
    mantissa = code & 0xF
    # Segment 0 has no implicit leading one; segments 1..7 double the step each.
    magnitude = np.where(
        segment == 0,
        (mantissa << 1) + 1,
        ((mantissa << 1) + 33) << np.maximum(segment - 1, 0),
    )
    # A-law's sign bit is 1 for positive samples.
    linear = np.where(code & 0x80, magnitude, -magnitude) << 3
    return linear.astype(np.int16)


def _build_alaw_encode() -> NDArray[np.uint8]:
    pcm = np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)
    sample13 = pcm >> 3
    positive = sample13 >= 0
    magnitude = np.where(positive, sample13, ~sample13)  # 0..4095, no clipping needed
    segment = _segment(magnitude, 4)
    mantissa = np.where(segment == 0, magnitude >> 1, magnitude >> segment) & 0xF
    code = (positive.astype(np.int32) << 7) | (segment << 4) | mantissa
    return (code ^ 0x55).astype(np.uint8)


_ULAW_DECODE = _build_ulaw_decode()
_ULAW_ENCODE = _build_ulaw_encode()
_ALAW_DECODE = _build_alaw_decode()
_ALAW_ENCODE = _build_alaw_encode()
for _table in (_ULAW_DECODE, _ULAW_ENCODE, _ALAW_DECODE, _ALAW_ENCODE):
    _table.setflags(write=False)


def _codes(data: bytes | bytearray | memoryview | NDArray[np.uint8]) -> NDArray[np.uint8]:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(
                f"G.711 codes must be a 1-D uint8 array, not {data.ndim}-D {data.dtype}"
            )
        return data
    return np.frombuffer(data, dtype=np.uint8)


def _samples(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise TypeError(f"PCM must be a 1-D int16 array, not {_describe(pcm)}")
    return pcm


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-D {value.dtype} array"
    return type(value).__name__


def _check_into(source_len: int, out: NDArray[np.generic], dtype: type[np.generic]) -> None:
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.ndim != 1:
        raise TypeError(f"out must be a 1-D {np.dtype(dtype)} array, not {_describe(out)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    if len(out) != source_len:
        raise ValueError(f"out has {len(out)} elements, the input has {source_len}")


def ulaw_decode(data: bytes | bytearray | memoryview | NDArray[np.uint8]) -> NDArray[np.int16]:
    """Decode µ-law codes to 16-bit linear PCM.

    Args:
        data: the codes, one per byte (an RTP PCMU payload).

    Returns:
        A new int16 array, one sample per code.
    """
    return _ULAW_DECODE[_codes(data)]


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear PCM to µ-law codes.

    Args:
        pcm: 1-D int16 samples.

    Returns:
        One code per sample (an RTP PCMU payload).
    """
    return bytes(_ULAW_ENCODE[_samples(pcm).view(np.uint16)].data)


def alaw_decode(data: bytes | bytearray | memoryview | NDArray[np.uint8]) -> NDArray[np.int16]:
    """Decode A-law codes to 16-bit linear PCM (see ``ulaw_decode``)."""
    return _ALAW_DECODE[_codes(data)]


def alaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear PCM to A-law codes (see ``ulaw_encode``)."""
    return bytes(_ALAW_ENCODE[_samples(pcm).view(np.uint16)].data)


def ulaw_decode_into(data: NDArray[np.uint8], out: NDArray[np.int16]) -> None:
    """Decode µ-law codes into ``out``, which must be as long as ``data``.

    Args:
        data: 1-D uint8 codes.
        out: 1-D C-contiguous int16 array receiving the samples.

    Raises:
        TypeError: wrong array types.
        ValueError: ``out`` is not contiguous or its length differs.
    """
    codes = _codes(data)
    _check_into(len(codes), out, np.int16)
    np.take(_ULAW_DECODE, codes, out=out)


def ulaw_encode_into(pcm: NDArray[np.int16], out: NDArray[np.uint8]) -> None:
    """Encode samples into ``out``, which must be as long as ``pcm``.

    Args:
        pcm: 1-D int16 samples.
        out: 1-D C-contiguous uint8 array receiving the codes.

    Raises:
        TypeError: wrong array types.
        ValueError: ``out`` is not contiguous or its length differs.
    """
    samples = _samples(pcm)
    _check_into(len(samples), out, np.uint8)
    np.take(_ULAW_ENCODE, samples.view(np.uint16), out=out)


def alaw_decode_into(data: NDArray[np.uint8], out: NDArray[np.int16]) -> None:
    """Decode A-law codes into ``out`` (see ``ulaw_decode_into``)."""
    codes = _codes(data)
    _check_into(len(codes), out, np.int16)
    np.take(_ALAW_DECODE, codes, out=out)


def alaw_encode_into(pcm: NDArray[np.int16], out: NDArray[np.uint8]) -> None:
    """Encode samples into ``out`` (see ``ulaw_encode_into``)."""
    samples = _samples(pcm)
    _check_into(len(samples), out, np.uint8)
    np.take(_ALAW_ENCODE, samples.view(np.uint16), out=out)
