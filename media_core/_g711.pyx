# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""ITU-T G.711 µ-law and A-law: the Cython kernel (twin: ``_g711_py``).

Same functions and signatures as the NumPy twin. The lookup tables are filled
once at import from the G.711 segment arithmetic written in C below; the loops
are table lookups without the GIL and without allocation (the output is
allocated once per call, or supplied by the caller in the ``*_into`` variants,
which the media tick uses to encode every call's frame in one call).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t

import numpy as np

# µ-law adds this bias to the 14-bit magnitude so that segment s starts at 2**(s+5) - 33.
cdef enum:
    ULAW_BIAS = 33
    ULAW_MAX_MAGNITUDE = 0x1FFF - 33

cdef int16_t ULAW_DECODE[256]
cdef int16_t ALAW_DECODE[256]
cdef uint8_t ULAW_ENCODE[65536]
cdef uint8_t ALAW_ENCODE[65536]


cdef inline int32_t highest_bit(int32_t value) noexcept nogil:
    """Position of the highest set bit of a positive value."""
    cdef int32_t position = 0
    while value > 1:
        value >>= 1
        position += 1
    return position


cdef int16_t ulaw_level(uint8_t code) noexcept nogil:
    cdef int32_t inverted = (~code) & 0xFF  # µ-law is transmitted inverted
    cdef int32_t segment = (inverted >> 4) & 0x7
    cdef int32_t mantissa = inverted & 0xF
    # The middle of the mantissa's interval, in 14-bit units, then scaled to 16 bits.
    cdef int32_t magnitude = (((mantissa << 1) + ULAW_BIAS) << segment) - ULAW_BIAS
    if inverted & 0x80:
        return <int16_t>(-magnitude * 4)
    return <int16_t>(magnitude * 4)


cdef uint8_t ulaw_code(int16_t sample) noexcept nogil:
    cdef int32_t sample14 = (<int32_t>sample) >> 2
    cdef int32_t negative = sample14 < 0
    # One's complement mirrors the negative range onto the positive one (G.191).
    cdef int32_t magnitude = ~sample14 if negative else sample14
    if magnitude > ULAW_MAX_MAGNITUDE:
        magnitude = ULAW_MAX_MAGNITUDE
    cdef int32_t biased = magnitude + ULAW_BIAS  # 33 .. 0x1FFF
    cdef int32_t segment = highest_bit(biased) - 5
    cdef int32_t mantissa = (biased >> (segment + 1)) & 0xF
    return <uint8_t>(~((negative << 7) | (segment << 4) | mantissa) & 0xFF)


cdef int16_t alaw_level(uint8_t code) noexcept nogil:
    cdef int32_t value = code ^ 0x55  # G.711 inverts A-law's even bits
    cdef int32_t segment = (value >> 4) & 0x7
    cdef int32_t mantissa = value & 0xF
    cdef int32_t magnitude
    if segment == 0:
        magnitude = (mantissa << 1) + 1
    else:
        magnitude = ((mantissa << 1) + 33) << (segment - 1)
    if value & 0x80:  # A-law's sign bit is 1 for positive samples
        return <int16_t>(magnitude * 8)
    return <int16_t>(-magnitude * 8)


cdef uint8_t alaw_code(int16_t sample) noexcept nogil:
    cdef int32_t sample13 = (<int32_t>sample) >> 3
    cdef int32_t positive = sample13 >= 0
    cdef int32_t magnitude = sample13 if positive else ~sample13  # 0 .. 4095
    cdef int32_t segment = 0
    cdef int32_t mantissa
    if magnitude >= 32:
        segment = highest_bit(magnitude) - 4
        mantissa = (magnitude >> segment) & 0xF
    else:
        mantissa = magnitude >> 1
    return <uint8_t>(((positive << 7) | (segment << 4) | mantissa) ^ 0x55)


cdef void fill_tables() noexcept nogil:
    cdef int32_t i
    for i in range(256):
        ULAW_DECODE[i] = ulaw_level(<uint8_t>i)
        ALAW_DECODE[i] = alaw_level(<uint8_t>i)
    # Indexed by the sample's bit pattern read as uint16.
    for i in range(65536):
        ULAW_ENCODE[i] = ulaw_code(<int16_t><uint16_t>i)
        ALAW_ENCODE[i] = alaw_code(<int16_t><uint16_t>i)


fill_tables()


cdef str describe(object value):
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-D {value.dtype} array"
    return type(value).__name__


cdef object as_codes(object data):
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(f"G.711 codes must be a 1-D uint8 array, not {data.ndim}-D {data.dtype}")
        return data
    return np.frombuffer(data, dtype=np.uint8)


cdef object as_samples(object pcm):
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise TypeError(f"PCM must be a 1-D int16 array, not {describe(pcm)}")
    return pcm


cdef check_out(Py_ssize_t source_len, object out, object dtype):
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.ndim != 1:
        raise TypeError(f"out must be a 1-D {np.dtype(dtype)} array, not {describe(out)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    if len(out) != source_len:
        raise ValueError(f"out has {len(out)} elements, the input has {source_len}")


cdef void decode_loop(const uint8_t[:] codes, int16_t[::1] out, const int16_t* table) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(codes.shape[0]):
        out[i] = table[codes[i]]


cdef void encode_loop(const int16_t[:] pcm, uint8_t* out, const uint8_t* table) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(pcm.shape[0]):
        out[i] = table[<uint16_t>pcm[i]]


cdef object decode(object data, const int16_t* table):
    cdef const uint8_t[:] codes = as_codes(data)
    result = np.empty(codes.shape[0], dtype=np.int16)
    cdef int16_t[::1] out = result
    with nogil:
        decode_loop(codes, out, table)
    return result


cdef bytes encode(object pcm, const uint8_t* table):
    cdef const int16_t[:] samples = as_samples(pcm)
    cdef bytes result = PyBytes_FromStringAndSize(NULL, samples.shape[0])
    # A bytes object nobody else has seen yet may be filled in place.
    cdef uint8_t* out = <uint8_t*>PyBytes_AS_STRING(result)
    with nogil:
        encode_loop(samples, out, table)
    return result


cdef void decode_into(object data, object out, const int16_t* table) except *:
    cdef const uint8_t[:] codes = as_codes(data)
    check_out(codes.shape[0], out, np.int16)
    cdef int16_t[::1] target = out
    with nogil:
        decode_loop(codes, target, table)


cdef void encode_into(object pcm, object out, const uint8_t* table) except *:
    cdef const int16_t[:] samples = as_samples(pcm)
    check_out(samples.shape[0], out, np.uint8)
    cdef uint8_t[::1] target = out
    if samples.shape[0] == 0:
        return
    with nogil:
        encode_loop(samples, &target[0], table)


def ulaw_decode(data):
    """Decode µ-law codes (bytes-like or 1-D uint8 array) to a new int16 array."""
    return decode(data, ULAW_DECODE)


def ulaw_encode(pcm):
    """Encode a 1-D int16 array to µ-law codes, returned as bytes."""
    return encode(pcm, ULAW_ENCODE)


def alaw_decode(data):
    """Decode A-law codes (bytes-like or 1-D uint8 array) to a new int16 array."""
    return decode(data, ALAW_DECODE)


def alaw_encode(pcm):
    """Encode a 1-D int16 array to A-law codes, returned as bytes."""
    return encode(pcm, ALAW_ENCODE)


def ulaw_decode_into(data, out):
    """Decode µ-law codes into ``out`` (1-D C-contiguous int16, same length)."""
    decode_into(data, out, ULAW_DECODE)


def ulaw_encode_into(pcm, out):
    """Encode 1-D int16 samples into ``out`` (1-D C-contiguous uint8, same length)."""
    encode_into(pcm, out, ULAW_ENCODE)


def alaw_decode_into(data, out):
    """Decode A-law codes into ``out`` (1-D C-contiguous int16, same length)."""
    decode_into(data, out, ALAW_DECODE)


def alaw_encode_into(pcm, out):
    """Encode 1-D int16 samples into ``out`` (1-D C-contiguous uint8, same length)."""
    encode_into(pcm, out, ALAW_ENCODE)
