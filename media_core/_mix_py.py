"""Conference mixing in NumPy: the pure twin of the ``_mix`` kernel.

Same functions, signatures, results and error messages as the Cython kernel;
``media_core.mix`` documents the arrays and picks one of the two at import.
Every sum is taken in int32 and saturated to int16 once, at the end, so a loud
room clips instead of wrapping around.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_ROOM_MEMBERS", "apply_gain", "mix_pairs", "mix_rooms"]

#: At most this many members per room. With a Q15 gain of at most 65535, one
#: contribution is at most 2**16 in magnitude, and no sum the mix takes has more
#: terms than the room has members (a listener hears the public members but
#: itself plus its whisper sources, which are distinct non-public members), so
#: 32767 members keep every int32 sum below 2**31: accumulation cannot overflow.
MAX_ROOM_MEMBERS = 32767

_INT16_MIN = -32768
_INT16_MAX = 32767
_Q15_HALF = 1 << 14  # added before the shift: round half up instead of flooring
_Q15_SHIFT = 15
_UNITY_Q15 = 1 << 15
_BLOCK_MEMBERS = 512  # rooms are mixed this many members at a time (at least one room)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-D {value.dtype} array"
    return type(value).__name__


def _frames(name: str, frames: object) -> NDArray[np.int16]:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.int16 or frames.ndim != 2:
        raise TypeError(f"{name} must be a 2-D int16 array, not {_describe(frames)}")
    if not frames.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return frames


def _out(out: object, shape: tuple[int, int], source: NDArray[np.int16], source_name: str) -> None:
    frames = _frames("out", out)
    if not frames.flags.writeable:
        raise ValueError("out must be writeable")
    if frames.shape != shape:
        raise ValueError(f"out has shape {frames.shape}, needs {shape}")
    if np.may_share_memory(frames, source):
        raise ValueError(f"out must not overlap {source_name}")


def _vector(name: str, value: object, dtype: type[np.generic]) -> NDArray[np.generic]:
    if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != 1:
        raise TypeError(f"{name} must be a 1-D {np.dtype(dtype)} array, not {_describe(value)}")
    return value


def _offsets(name: str, offsets: NDArray[np.int32], total: int, total_name: str) -> None:
    if (
        len(offsets) == 0
        or offsets[0] != 0
        or offsets[-1] != total
        or bool(np.any(offsets[1:] < offsets[:-1]))
    ):
        raise ValueError(
            f"{name} must start at 0, never decrease and end at {total} "
            f"(the length of {total_name})"
        )


def _same_length(name: str, value: NDArray[np.generic], other: str, length: int) -> None:
    if len(value) != length:
        raise ValueError(f"{name} has {len(value)} elements, {other} has {length}")


def _rows(name: str, rows: NDArray[np.int32], count: int) -> None:
    bad = (rows < 0) | (rows >= count)
    if bool(bad.any()):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {rows[i]} is not a row of frames_in (it has {count})")


def _scale_in_place(samples: NDArray[np.int32], gain_q15: NDArray[np.uint16]) -> None:
    """``round(sample * gain / 32768)``, half up, row by row (at most 2**16 in magnitude)."""
    samples *= gain_q15.astype(np.int32)[:, np.newaxis]
    samples += _Q15_HALF
    samples >>= _Q15_SHIFT  # arithmetic shift: floor, as C's >> on int32 does


def _check_rooms(
    frames_in: NDArray[np.int16],
    room_offsets: NDArray[np.int32],
    member_legs: NDArray[np.int32],
    member_gain_q15: NDArray[np.uint16],
    member_public: NDArray[np.bool_],
    whisper_offsets: NDArray[np.int32],
    whisper_sources: NDArray[np.int32],
    out: NDArray[np.int16],
) -> None:
    """Raise on anything ``mix_rooms`` cannot mix, in the kernel's order and words."""
    _frames("frames_in", frames_in)
    _out(out, frames_in.shape, frames_in, "frames_in")
    _vector("room_offsets", room_offsets, np.int32)
    _vector("member_legs", member_legs, np.int32)
    _vector("member_gain_q15", member_gain_q15, np.uint16)
    _vector("member_public", member_public, np.bool_)
    _vector("whisper_offsets", whisper_offsets, np.int32)
    _vector("whisper_sources", whisper_sources, np.int32)
    members = len(member_legs)
    _offsets("room_offsets", room_offsets, members, "member_legs")
    _same_length("member_gain_q15", member_gain_q15, "member_legs", members)
    _same_length("member_public", member_public, "member_legs", members)
    if len(whisper_offsets) != members + 1:
        raise ValueError(
            f"whisper_offsets has {len(whisper_offsets)} elements, needs {members + 1} "
            "(one more than member_legs)"
        )
    _offsets("whisper_offsets", whisper_offsets, len(whisper_sources), "whisper_sources")

    sizes = np.diff(room_offsets)
    too_big = sizes > MAX_ROOM_MEMBERS
    if bool(too_big.any()):
        r = int(np.flatnonzero(too_big)[0])
        raise ValueError(f"room {r} has {sizes[r]} members, more than {MAX_ROOM_MEMBERS}")

    legs = frames_in.shape[0]
    out_of_range = (member_legs < 0) | (member_legs >= legs)
    # A stable sort keeps equal legs in their original order, so every occurrence
    # but the first of a leg follows an equal neighbour.
    order = np.argsort(member_legs, kind="stable")
    ordered = member_legs[order]
    repeated = np.zeros(members, dtype=np.bool_)
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True
    bad = out_of_range | repeated
    if bool(bad.any()):
        i = int(np.flatnonzero(bad)[0])
        if out_of_range[i]:
            raise ValueError(
                f"member_legs[{i}] = {member_legs[i]} is not a row of frames_in (it has {legs})"
            )
        raise ValueError(f"member_legs[{i}] = {member_legs[i]} repeats a leg already in a room")

    if len(whisper_sources) == 0:
        return
    listener = np.repeat(np.arange(members), np.diff(whisper_offsets))
    room_of_member = np.repeat(np.arange(len(sizes)), sizes)
    room = room_of_member[listener]
    start = room_offsets[:-1][room]
    end = room_offsets[1:][room]
    src = whisper_sources
    outside = (src < start) | (src >= end)
    itself = src == listener
    public = np.zeros(len(src), dtype=np.bool_)
    public[~outside] = member_public[src[~outside]]
    first_of_listener = np.zeros(len(src), dtype=np.bool_)
    first_of_listener[whisper_offsets[:-1][np.diff(whisper_offsets) > 0]] = True
    previous = np.concatenate(([np.int32(-1)], src[:-1]))
    unordered = ~first_of_listener & (src <= previous)
    bad = outside | itself | public | unordered
    if not bool(bad.any()):
        return
    j = int(np.flatnonzero(bad)[0])
    p = int(listener[j])
    if outside[j]:
        raise ValueError(f"whisper_sources[{j}] = {src[j]} is not in member {p}'s room")
    if itself[j]:
        raise ValueError(f"whisper_sources[{j}] = {src[j]}: member {p} cannot hear itself")
    if public[j]:
        raise ValueError(
            f"whisper_sources[{j}] = {src[j]} is a public member: member {p} hears it already"
        )
    raise ValueError(f"whisper_sources of member {p} must be strictly increasing (at {j})")


def mix_rooms(
    frames_in: NDArray[np.int16],
    room_offsets: NDArray[np.int32],
    member_legs: NDArray[np.int32],
    member_gain_q15: NDArray[np.uint16],
    member_public: NDArray[np.bool_],
    whisper_offsets: NDArray[np.int32],
    whisper_sources: NDArray[np.int32],
    out: NDArray[np.int16],
) -> None:
    """Write what every room member hears into its row of ``out``.

    See ``media_core.mix`` for the meaning of the arrays and an example.

    Raises:
        TypeError: an argument of the wrong dtype or dimension.
        ValueError: inconsistent lengths or offsets, a leg out of range or in two
            rooms, a whisper source outside its listener's room, public, the
            listener itself or out of order, or an unusable ``out``.
    """
    _check_rooms(
        frames_in,
        room_offsets,
        member_legs,
        member_gain_q15,
        member_public,
        whisper_offsets,
        whisper_sources,
        out,
    )
    # Mixed a block of whole rooms at a time: temporaries of a few hundred KB are
    # reused from the heap and stay in cache, where megabytes per tick would be
    # mapped afresh and faulted in on every call.
    rooms = len(room_offsets) - 1
    r = 0
    while r < rooms:
        limit = int(room_offsets[r]) + _BLOCK_MEMBERS
        end = int(np.searchsorted(room_offsets, limit, side="right")) - 1
        end = min(max(end, r + 1), rooms)  # a room larger than a block goes alone
        _mix_block(
            frames_in,
            room_offsets[r : end + 1],
            member_legs,
            member_gain_q15,
            member_public,
            whisper_offsets,
            whisper_sources,
            out,
        )
        r = end


def _mix_block(
    frames_in: NDArray[np.int16],
    room_offsets: NDArray[np.int32],
    member_legs: NDArray[np.int32],
    member_gain_q15: NDArray[np.uint16],
    member_public: NDArray[np.bool_],
    whisper_offsets: NDArray[np.int32],
    whisper_sources: NDArray[np.int32],
    out: NDArray[np.int16],
) -> None:
    """Mix the rooms whose (absolute) offsets are ``room_offsets``: a run of whole rooms."""
    first, last = int(room_offsets[0]), int(room_offsets[-1])
    if first == last:
        return
    legs = member_legs[first:last]
    gains = member_gain_q15[first:last]
    in_public = member_public[first:last]
    contribution = frames_in[legs].astype(np.int32)
    # The common cases (every gain unity, nobody whispering) skip a pass each.
    if not bool(np.all(gains == _UNITY_Q15)):
        _scale_in_place(contribution, gains)
    if bool(in_public.all()):
        public = contribution
    else:
        public = contribution.copy()
        public[~in_public] = 0  # whisperers are left out of the room's sum
    sizes = np.diff(room_offsets)
    room_sums = _room_sums(public, room_offsets[:-1] - first, sizes)
    # Mix-minus: everyone hears the room's public sum less its own contribution.
    heard = room_sums[np.repeat(np.arange(len(sizes)), sizes)]
    heard -= public
    w_first, w_last = int(whisper_offsets[first]), int(whisper_offsets[last])
    if w_last > w_first:
        listener = np.repeat(np.arange(last - first), np.diff(whisper_offsets[first : last + 1]))
        # Whisper sources are positions in the listener's room, so in this block.
        np.add.at(heard, listener, contribution[whisper_sources[w_first:w_last] - first])
    np.clip(heard, _INT16_MIN, _INT16_MAX, out=heard)
    out[legs] = heard  # within int16 now: the cast loses nothing


def _room_sums(
    rows: NDArray[np.int32], starts: NDArray[np.int32], sizes: NDArray[np.int32]
) -> NDArray[np.int32]:
    """The sum of each room's rows, one row per room (zeros for an empty room).

    Rooms of equal size are summed together, one strided add per member slot:
    along axis 0, ``np.add.reduceat`` is an order of magnitude slower.
    """
    sums = np.zeros((len(starts), rows.shape[1]), dtype=np.int32)
    for size in np.unique(sizes[sizes > 0]).tolist():
        rooms = np.flatnonzero(sizes == size)
        first = starts[rooms]
        total = rows[first]
        for slot in range(1, size):
            total += rows[first + slot]
        sums[rooms] = total
    return sums


def apply_gain(
    frames: NDArray[np.int16], gain_q15: NDArray[np.uint16], out: NDArray[np.int16]
) -> None:
    """Scale each row by its Q15 gain (32768 = unity, 0 = mute), saturating.

    ``out`` may be ``frames`` itself (in place), or an array that does not overlap it.

    Raises:
        TypeError: an argument of the wrong dtype or dimension.
        ValueError: a length or shape mismatch, or an unusable ``out``.
    """
    _frames("frames", frames)
    _frames("out", out)
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if out.shape != frames.shape:
        raise ValueError(f"out has shape {out.shape}, needs {frames.shape}")
    if np.may_share_memory(out, frames) and out.ctypes.data != frames.ctypes.data:
        raise ValueError("out must be frames itself or not overlap it")
    _vector("gain_q15", gain_q15, np.uint16)
    _same_length("gain_q15", gain_q15, "frames' first axis", frames.shape[0])
    scaled = frames.astype(np.int32)
    _scale_in_place(scaled, gain_q15)
    np.clip(scaled, _INT16_MIN, _INT16_MAX, out=scaled)
    out[...] = scaled  # within int16 now: the cast loses nothing


def mix_pairs(
    frames_in: NDArray[np.int16],
    legs_a: NDArray[np.int32],
    legs_b: NDArray[np.int32],
    out: NDArray[np.int16],
) -> None:
    """``out[i] = frames_in[legs_a[i]] + frames_in[legs_b[i]]``, saturated: a mono tap.

    Raises:
        TypeError: an argument of the wrong dtype or dimension.
        ValueError: a length or shape mismatch, a leg out of range, or an unusable ``out``.
    """
    _frames("frames_in", frames_in)
    _vector("legs_a", legs_a, np.int32)
    _vector("legs_b", legs_b, np.int32)
    _same_length("legs_b", legs_b, "legs_a", len(legs_a))
    _out(out, (len(legs_a), frames_in.shape[1]), frames_in, "frames_in")
    _rows("legs_a", legs_a, frames_in.shape[0])
    _rows("legs_b", legs_b, frames_in.shape[0])
    total = frames_in[legs_a].astype(np.int32)
    total += frames_in[legs_b]
    np.clip(total, _INT16_MIN, _INT16_MAX, out=total)
    out[...] = total  # within int16 now: the cast loses nothing
