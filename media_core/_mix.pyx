# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Conference mixing: the Cython kernel (twin: ``_mix_py``).

Same functions, signatures, results and error messages as the NumPy twin;
``media_core.mix`` documents the arrays. The arguments are checked with the GIL
held (dtypes and shapes in Python, every index in a C pass), then the mixing
loops run without the GIL and without allocating: two int32 scratch rows of one
frame each (and a byte per leg for the duplicate check) are allocated once per
call, before the loops. A plain two-leg bridge skips the sums altogether and
unity or zero gains skip the multiply, since those are most of the load.
"""

from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t
from libc.string cimport memcpy, memset

import numpy as np

#: At most this many members per room, so that int32 accumulation cannot
#: overflow (see ``_mix_py.MAX_ROOM_MEMBERS`` for the arithmetic).
MAX_ROOM_MEMBERS = 32767

cdef enum:
    INT16_MIN = -32768
    INT16_MAX = 32767
    Q15_HALF = 1 << 14  # added before the shift: round half up instead of flooring
    Q15_SHIFT = 15
    UNITY_Q15 = 1 << 15
    C_MAX_ROOM_MEMBERS = 32767

# What the C validation pass found; the message is written with the GIL held.
cdef enum Fault:
    OK = 0
    ROOM_TOO_BIG
    LEG_OUT_OF_RANGE
    LEG_REPEATED
    WHISPER_OUTSIDE_ROOM
    WHISPER_ITSELF
    WHISPER_PUBLIC
    WHISPER_UNORDERED


cdef struct Finding:
    Fault fault
    Py_ssize_t at      # the offending index into the array the fault names
    Py_ssize_t value   # the offending value
    Py_ssize_t member  # the listener for whisper faults; the row count for LEG_OUT_OF_RANGE


cdef inline int32_t scaled(int16_t sample, int32_t gain_q15) noexcept nogil:
    # round(sample * gain / 32768), half up; >> on a negative int32 is an
    # arithmetic shift with GCC and Clang, i.e. floor, as NumPy's right_shift.
    return (<int32_t>sample * gain_q15 + Q15_HALF) >> Q15_SHIFT


cdef inline int16_t saturate(int32_t value) noexcept nogil:
    if value > INT16_MAX:
        return INT16_MAX
    if value < INT16_MIN:
        return INT16_MIN
    return <int16_t>value


# ------------------------------------------------------------ checks


cdef str describe(object value):
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-D {value.dtype} array"
    return type(value).__name__


cdef object check_frames(str name, object frames):
    if not isinstance(frames, np.ndarray) or frames.dtype != np.int16 or frames.ndim != 2:
        raise TypeError(f"{name} must be a 2-D int16 array, not {describe(frames)}")
    if not frames.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return frames


cdef check_out(object out, tuple shape, object source, str source_name):
    check_frames("out", out)
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, needs {shape}")
    if np.may_share_memory(out, source):
        raise ValueError(f"out must not overlap {source_name}")


cdef check_vector(str name, object value, object dtype):
    if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != 1:
        raise TypeError(f"{name} must be a 1-D {np.dtype(dtype)} array, not {describe(value)}")


cdef bint offsets_ok(const int32_t[:] offsets, Py_ssize_t total) noexcept nogil:
    cdef Py_ssize_t i, n = offsets.shape[0]
    if n == 0 or offsets[0] != 0 or offsets[n - 1] != total:
        return False
    for i in range(1, n):
        if offsets[i] < offsets[i - 1]:
            return False
    return True


cdef check_offsets(str name, const int32_t[:] offsets, Py_ssize_t total, str total_name):
    if not offsets_ok(offsets, total):
        raise ValueError(
            f"{name} must start at 0, never decrease and end at {total} "
            f"(the length of {total_name})"
        )


cdef check_same_length(str name, Py_ssize_t length, str other, Py_ssize_t other_length):
    if length != other_length:
        raise ValueError(f"{name} has {length} elements, {other} has {other_length}")


cdef Py_ssize_t first_bad_row(const int32_t[:] rows, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(rows.shape[0]):
        if rows[i] < 0 or rows[i] >= count:
            return i
    return -1


cdef check_rows(str name, const int32_t[:] rows, Py_ssize_t count):
    cdef Py_ssize_t i = first_bad_row(rows, count)
    if i >= 0:
        raise ValueError(f"{name}[{i}] = {rows[i]} is not a row of frames_in (it has {count})")


cdef Finding find_room_fault(
    Py_ssize_t legs,
    const int32_t[:] room_offsets,
    const int32_t[:] member_legs,
    const uint8_t[:] member_public,
    const int32_t[:] whisper_offsets,
    const int32_t[:] whisper_sources,
    uint8_t[:] seen,
) noexcept nogil:
    """The first fault in the index arrays, in the twin's order; offsets are already sound."""
    cdef Finding found
    found.fault = OK
    found.at = found.value = found.member = 0
    cdef Py_ssize_t r, p, j, leg, source, start, end
    for r in range(room_offsets.shape[0] - 1):
        if room_offsets[r + 1] - room_offsets[r] > C_MAX_ROOM_MEMBERS:
            found.fault, found.at, found.value = ROOM_TOO_BIG, r, room_offsets[r + 1] - room_offsets[r]
            return found
    for p in range(member_legs.shape[0]):
        leg = member_legs[p]
        if leg < 0 or leg >= legs:
            found.fault, found.at, found.value = LEG_OUT_OF_RANGE, p, leg
            found.member = legs  # the row count, for the message
            return found
        if seen[leg]:
            found.fault, found.at, found.value = LEG_REPEATED, p, leg
            return found
        seen[leg] = 1
    for r in range(room_offsets.shape[0] - 1):
        start, end = room_offsets[r], room_offsets[r + 1]
        for p in range(start, end):
            for j in range(whisper_offsets[p], whisper_offsets[p + 1]):
                source = whisper_sources[j]
                found.at, found.value, found.member = j, source, p
                if source < start or source >= end:
                    found.fault = WHISPER_OUTSIDE_ROOM
                    return found
                if source == p:
                    found.fault = WHISPER_ITSELF
                    return found
                if member_public[source]:
                    found.fault = WHISPER_PUBLIC
                    return found
                if j > whisper_offsets[p] and source <= whisper_sources[j - 1]:
                    found.fault = WHISPER_UNORDERED
                    return found
    return found


cdef raise_room_fault(Finding found):
    if found.fault == ROOM_TOO_BIG:
        raise ValueError(
            f"room {found.at} has {found.value} members, more than {MAX_ROOM_MEMBERS}"
        )
    if found.fault == LEG_OUT_OF_RANGE:
        raise ValueError(
            f"member_legs[{found.at}] = {found.value} is not a row of frames_in "
            f"(it has {found.member})"
        )
    if found.fault == LEG_REPEATED:
        raise ValueError(
            f"member_legs[{found.at}] = {found.value} repeats a leg already in a room"
        )
    if found.fault == WHISPER_OUTSIDE_ROOM:
        raise ValueError(
            f"whisper_sources[{found.at}] = {found.value} is not in member {found.member}'s room"
        )
    if found.fault == WHISPER_ITSELF:
        raise ValueError(
            f"whisper_sources[{found.at}] = {found.value}: member {found.member} cannot hear itself"
        )
    if found.fault == WHISPER_PUBLIC:
        raise ValueError(
            f"whisper_sources[{found.at}] = {found.value} is a public member: "
            f"member {found.member} hears it already"
        )
    if found.fault == WHISPER_UNORDERED:
        raise ValueError(
            f"whisper_sources of member {found.member} must be strictly increasing "
            f"(at {found.at})"
        )


# ------------------------------------------------------------- loops


cdef inline void add_scaled(
    int32_t* acc, const int16_t* row, int32_t gain_q15, Py_ssize_t samples
) noexcept nogil:
    cdef Py_ssize_t s
    # Unity and mute skip the multiply: most legs are one or the other, and
    # without SSE4.1 a vectorised 32-bit multiply is slow.
    if gain_q15 == UNITY_Q15:
        for s in range(samples):
            acc[s] += row[s]
    elif gain_q15 != 0:
        for s in range(samples):
            acc[s] += scaled(row[s], gain_q15)


cdef inline void sub_scaled(
    int32_t* acc, const int16_t* row, int32_t gain_q15, Py_ssize_t samples
) noexcept nogil:
    cdef Py_ssize_t s
    if gain_q15 == UNITY_Q15:
        for s in range(samples):
            acc[s] -= row[s]
    elif gain_q15 != 0:
        for s in range(samples):
            acc[s] -= scaled(row[s], gain_q15)


cdef inline void store_scaled(
    int16_t* target, const int16_t* row, int32_t gain_q15, Py_ssize_t samples
) noexcept nogil:
    """target = saturate(scaled(row)): what one leg hears from the only other one."""
    cdef Py_ssize_t s
    if gain_q15 == UNITY_Q15:
        memcpy(target, row, samples * sizeof(int16_t))
    elif gain_q15 == 0:
        memset(target, 0, samples * sizeof(int16_t))
    else:
        for s in range(samples):
            target[s] = saturate(scaled(row[s], gain_q15))


cdef inline void store_minus(
    int16_t* target, const int32_t* room_sum, const int16_t* own, int32_t gain_q15,
    Py_ssize_t samples,
) noexcept nogil:
    """target = saturate(room_sum - scaled(own)): mix-minus, fused into one pass."""
    cdef Py_ssize_t s
    if gain_q15 == UNITY_Q15:
        for s in range(samples):
            target[s] = saturate(room_sum[s] - own[s])
    elif gain_q15 == 0:
        for s in range(samples):
            target[s] = saturate(room_sum[s])
    else:
        for s in range(samples):
            target[s] = saturate(room_sum[s] - scaled(own[s], gain_q15))


cdef void mix_loop(
    const int16_t[:, ::1] frames,
    const int32_t[:] room_offsets,
    const int32_t[:] member_legs,
    const uint16_t[:] member_gain_q15,
    const uint8_t[:] member_public,
    const int32_t[:] whisper_offsets,
    const int32_t[:] whisper_sources,
    int16_t[:, ::1] out,
    int32_t* room_sum,
    int32_t* heard,
) noexcept nogil:
    cdef Py_ssize_t samples = frames.shape[1]
    cdef Py_ssize_t r, p, j, s, start, end, source
    for r in range(room_offsets.shape[0] - 1):
        start, end = room_offsets[r], room_offsets[r + 1]
        if start == end:
            continue
        if (
            end - start == 2
            and member_public[start] and member_public[start + 1]
            and whisper_offsets[start] == whisper_offsets[start + 2]
        ):
            # A plain two-leg bridge: (a + b) - a is b exactly in int32, so
            # each leg hears the other's contribution, with no sum at all.
            store_scaled(
                &out[member_legs[start], 0], &frames[member_legs[start + 1], 0],
                member_gain_q15[start + 1], samples,
            )
            store_scaled(
                &out[member_legs[start + 1], 0], &frames[member_legs[start], 0],
                member_gain_q15[start], samples,
            )
            continue
        memset(room_sum, 0, samples * sizeof(int32_t))
        for p in range(start, end):
            if member_public[p]:
                add_scaled(room_sum, &frames[member_legs[p], 0], member_gain_q15[p], samples)
        for p in range(start, end):
            if whisper_offsets[p] == whisper_offsets[p + 1]:
                store_minus(
                    &out[member_legs[p], 0], room_sum, &frames[member_legs[p], 0],
                    member_gain_q15[p] if member_public[p] else 0, samples,
                )
                continue
            memcpy(heard, room_sum, samples * sizeof(int32_t))
            if member_public[p]:
                sub_scaled(heard, &frames[member_legs[p], 0], member_gain_q15[p], samples)
            for j in range(whisper_offsets[p], whisper_offsets[p + 1]):
                source = whisper_sources[j]
                add_scaled(
                    heard, &frames[member_legs[source], 0], member_gain_q15[source], samples
                )
            store_minus(&out[member_legs[p], 0], heard, NULL, 0, samples)


cdef void gain_loop(
    const int16_t* frames, const uint16_t[:] gain_q15, int16_t* out, Py_ssize_t samples
) noexcept nogil:
    # Raw pointers: out may be frames itself; each sample is read before it is
    # written, and memcpy is never asked to copy a row onto itself.
    cdef Py_ssize_t leg, base
    for leg in range(gain_q15.shape[0]):
        base = leg * samples
        if gain_q15[leg] == UNITY_Q15 and out == frames:
            continue
        store_scaled(out + base, frames + base, gain_q15[leg], samples)


cdef void pairs_loop(
    const int16_t[:, ::1] frames,
    const int32_t[:] legs_a,
    const int32_t[:] legs_b,
    int16_t[:, ::1] out,
) noexcept nogil:
    cdef Py_ssize_t i, s, samples = frames.shape[1]
    cdef const int16_t* a
    cdef const int16_t* b
    cdef int16_t* target
    for i in range(legs_a.shape[0]):
        a = &frames[legs_a[i], 0]
        b = &frames[legs_b[i], 0]
        target = &out[i, 0]
        for s in range(samples):
            target[s] = saturate(<int32_t>a[s] + <int32_t>b[s])


# ------------------------------------------------------------ public


def mix_rooms(
    frames_in,
    room_offsets,
    member_legs,
    member_gain_q15,
    member_public,
    whisper_offsets,
    whisper_sources,
    out,
):
    """Write what every room member hears into its row of ``out`` (see ``media_core.mix``)."""
    check_frames("frames_in", frames_in)
    check_out(out, frames_in.shape, frames_in, "frames_in")
    check_vector("room_offsets", room_offsets, np.int32)
    check_vector("member_legs", member_legs, np.int32)
    check_vector("member_gain_q15", member_gain_q15, np.uint16)
    check_vector("member_public", member_public, np.bool_)
    check_vector("whisper_offsets", whisper_offsets, np.int32)
    check_vector("whisper_sources", whisper_sources, np.int32)
    cdef Py_ssize_t members = member_legs.shape[0]
    check_offsets("room_offsets", room_offsets, members, "member_legs")
    check_same_length("member_gain_q15", member_gain_q15.shape[0], "member_legs", members)
    check_same_length("member_public", member_public.shape[0], "member_legs", members)
    if whisper_offsets.shape[0] != members + 1:
        raise ValueError(
            f"whisper_offsets has {whisper_offsets.shape[0]} elements, needs {members + 1} "
            "(one more than member_legs)"
        )
    check_offsets("whisper_offsets", whisper_offsets, whisper_sources.shape[0], "whisper_sources")

    cdef const int16_t[:, ::1] frames = frames_in
    cdef int16_t[:, ::1] target = out
    cdef const int32_t[:] offsets = room_offsets
    cdef const int32_t[:] legs = member_legs
    cdef const uint16_t[:] gains = member_gain_q15
    cdef const uint8_t[:] public = member_public.view(np.uint8)
    cdef const int32_t[:] w_offsets = whisper_offsets
    cdef const int32_t[:] w_sources = whisper_sources
    cdef uint8_t[:] seen = np.zeros(frames.shape[0], dtype=np.uint8)
    cdef Finding found
    with nogil:
        found = find_room_fault(frames.shape[0], offsets, legs, public, w_offsets, w_sources, seen)
    if found.fault != OK:
        raise_room_fault(found)

    if members == 0 or frames.shape[1] == 0:
        return
    scratch = np.empty(2 * frames.shape[1], dtype=np.int32)
    cdef int32_t[::1] rows = scratch
    with nogil:
        mix_loop(
            frames, offsets, legs, gains, public, w_offsets, w_sources, target,
            &rows[0], &rows[frames.shape[1]],
        )


def apply_gain(frames, gain_q15, out):
    """Scale each row by its Q15 gain (32768 = unity, 0 = mute), saturating; ``out`` may be ``frames``."""
    check_frames("frames", frames)
    check_frames("out", out)
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if out.shape != frames.shape:
        raise ValueError(f"out has shape {out.shape}, needs {frames.shape}")
    if np.may_share_memory(out, frames) and out.ctypes.data != frames.ctypes.data:
        raise ValueError("out must be frames itself or not overlap it")
    check_vector("gain_q15", gain_q15, np.uint16)
    check_same_length("gain_q15", gain_q15.shape[0], "frames' first axis", frames.shape[0])
    cdef const int16_t[:, ::1] source = frames
    cdef int16_t[:, ::1] target = out
    cdef const uint16_t[:] gains = gain_q15
    if source.shape[0] == 0 or source.shape[1] == 0:
        return
    with nogil:
        gain_loop(&source[0, 0], gains, &target[0, 0], source.shape[1])


def mix_pairs(frames_in, legs_a, legs_b, out):
    """``out[i] = frames_in[legs_a[i]] + frames_in[legs_b[i]]``, saturated: a mono tap."""
    check_frames("frames_in", frames_in)
    check_vector("legs_a", legs_a, np.int32)
    check_vector("legs_b", legs_b, np.int32)
    check_same_length("legs_b", legs_b.shape[0], "legs_a", legs_a.shape[0])
    check_out(out, (legs_a.shape[0], frames_in.shape[1]), frames_in, "frames_in")
    cdef const int16_t[:, ::1] frames = frames_in
    cdef const int32_t[:] a = legs_a
    cdef const int32_t[:] b = legs_b
    cdef int16_t[:, ::1] target = out
    check_rows("legs_a", a, frames.shape[0])
    check_rows("legs_b", b, frames.shape[0])
    if frames.shape[1] == 0:
        return
    with nogil:
        pairs_loop(frames, a, b, target)
