"""Mixing kernels: bridges, mix-minus conferences and whisper, on every call at once.

Every behaviour is checked on both implementations ("py" is the NumPy twin, "c"
the Cython kernel). Random rooms are checked against a per-listener reference
written here as plainly as possible (Python loops, int64, clip at the end), and
the two implementations are held to identical output and identical errors.
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_core import _mix_py, mix

REPO = Path(__file__).resolve().parents[3]
UNITY = mix.UNITY_GAIN_Q15


def _kernel() -> ModuleType:
    if mix.extensions_disabled():
        pytest.skip("HOTLINE_NO_EXTENSIONS is set: the Cython kernel is not in use")
    module, why = mix.load_extension()
    if module is None:
        pytest.skip(str(why))
    return module


@pytest.fixture(params=["py", "c"], ids=["py", "c"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return _mix_py if request.param == "py" else _kernel()


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Rooms:
    """The kernel's index arrays, spelled out."""

    room_offsets: np.ndarray
    member_legs: np.ndarray
    member_gain_q15: np.ndarray
    member_public: np.ndarray
    whisper_offsets: np.ndarray
    whisper_sources: np.ndarray

    def args(self) -> tuple[np.ndarray, ...]:
        return (
            self.room_offsets,
            self.member_legs,
            self.member_gain_q15,
            self.member_public,
            self.whisper_offsets,
            self.whisper_sources,
        )


def rooms(
    legs_per_room: Sequence[Sequence[int]],
    *,
    gains: Mapping[int, int] | None = None,
    whispers: Mapping[int, Sequence[int]] | None = None,
) -> Rooms:
    """Rooms of legs; ``whispers`` maps a whispering leg to the legs that hear it."""
    gains = gains or {}
    whispers = whispers or {}
    offsets, legs = [0], list[int]()
    for members in legs_per_room:
        legs += members
        offsets.append(len(legs))
    position = {leg: p for p, leg in enumerate(legs)}
    heard: dict[int, list[int]] = {leg: [] for leg in legs}
    for whisperer, targets in whispers.items():
        for target in targets:
            heard[target].append(position[whisperer])
    w_offsets, sources = [0], []
    for leg in legs:
        sources += sorted(heard[leg])
        w_offsets.append(len(sources))
    return Rooms(
        np.array(offsets, dtype=np.int32),
        np.array(legs, dtype=np.int32),
        np.array([gains.get(leg, UNITY) for leg in legs], dtype=np.uint16),
        np.array([leg not in whispers for leg in legs], dtype=np.bool_),
        np.array(w_offsets, dtype=np.int32),
        np.array(sources, dtype=np.int32),
    )


def frames(*rows: Sequence[int]) -> np.ndarray:
    return np.array(rows, dtype=np.int16)


def run(impl: ModuleType, frames_in: np.ndarray, plan: Rooms, fill: int = 0) -> np.ndarray:
    out = np.full_like(frames_in, fill)
    impl.mix_rooms(frames_in, *plan.args(), out)
    return out


def reference(frames_in: np.ndarray, plan: Rooms, out: np.ndarray) -> np.ndarray:
    """What each member hears, listener by listener, straight from the definition."""
    expected = out.astype(np.int64)
    x = frames_in.astype(np.int64)
    gain = plan.member_gain_q15.astype(np.int64)
    legs = plan.member_legs.tolist()

    def said(q: int) -> np.ndarray:
        return (x[legs[q]] * gain[q] + 16384) // 32768  # round half up

    for r in range(len(plan.room_offsets) - 1):
        members = range(plan.room_offsets[r], plan.room_offsets[r + 1])
        for p in members:
            total = np.zeros(x.shape[1], dtype=np.int64)
            for q in members:
                if q != p and plan.member_public[q]:
                    total += said(q)
            for j in range(plan.whisper_offsets[p], plan.whisper_offsets[p + 1]):
                total += said(int(plan.whisper_sources[j]))
            expected[legs[p]] = np.clip(total, -32768, 32767)
    return expected.astype(np.int16)


# ---------------------------------------------------------------- semantics


def test_a_two_leg_bridge_swaps_the_legs_audio(impl: ModuleType) -> None:
    frames_in = frames([100, -200, 300], [7, 8, -9])
    out = run(impl, frames_in, rooms([[0, 1]]))
    assert out.tolist() == [[7, 8, -9], [100, -200, 300]]


def test_each_party_of_a_three_way_conference_hears_the_other_two(impl: ModuleType) -> None:
    frames_in = frames([1000, 1000], [200, -200], [30, 3])
    out = run(impl, frames_in, rooms([[0, 1, 2]]))
    assert out.tolist() == [[230, -197], [1030, 1003], [1200, 800]]


def test_nobody_hears_themselves_and_a_lone_member_hears_silence(impl: ModuleType) -> None:
    frames_in = frames([500, -500], [123, 456])
    out = run(impl, frames_in, rooms([[0], [1]]), fill=77)
    assert out.tolist() == [[0, 0], [0, 0]]


def test_a_loud_room_clips_to_int16_instead_of_wrapping(impl: ModuleType) -> None:
    frames_in = frames([30000, -30000, 20000], [30000, -30000, -20000], [30000, -30000, 1])
    out = run(impl, frames_in, rooms([[0, 1, 2]]))
    # 60000 would wrap to -5536 in int16; it must stop at full scale instead.
    assert out.tolist() == [[32767, -32768, -19999], [32767, -32768, 20001], [32767, -32768, 0]]


def test_mix_minus_subtracts_before_clipping_so_a_member_loses_no_headroom(
    impl: ModuleType,
) -> None:
    # Room sum 32767 + 32767 - 32768 overflows int16 but not int32: each
    # listener's sum of the others is exact before the one final clip.
    frames_in = frames([32767], [32767], [-32768])
    out = run(impl, frames_in, rooms([[0, 1, 2]]))
    assert out.tolist() == [[-1], [-1], [32767]]


def test_a_whisper_is_heard_by_the_agent_only_and_the_whisperer_hears_everybody(
    impl: ModuleType,
) -> None:
    customer, agent, supervisor = 0, 1, 2
    frames_in = frames([1000, 1000], [20, 20], [3, -3])
    plan = rooms([[customer, agent, supervisor]], whispers={supervisor: [agent]})
    out = run(impl, frames_in, plan)
    assert out[customer].tolist() == [20, 20]  # the agent, and no supervisor
    assert out[agent].tolist() == [1003, 997]  # the customer and the supervisor
    assert out[supervisor].tolist() == [1020, 1020]  # the customer and the agent


def test_whisperers_hear_each_other_only_when_one_whispers_to_the_other(
    impl: ModuleType,
) -> None:
    frames_in = frames([1], [10], [100], [1000])
    plan = rooms([[0, 1, 2, 3]], whispers={2: [1], 3: [1, 2]})
    out = run(impl, frames_in, plan)
    assert out.tolist() == [[10], [1101], [1011], [11]]


def test_a_whisperer_with_no_target_is_a_silent_monitor(impl: ModuleType) -> None:
    frames_in = frames([1000], [20], [3])
    out = run(impl, frames_in, rooms([[0, 1, 2]], whispers={2: []}))
    assert out.tolist() == [[20], [1000], [1020]]


def test_a_leg_in_no_room_is_left_exactly_as_the_caller_wrote_it(impl: ModuleType) -> None:
    frames_in = frames([1, 1], [2, 2], [3, 3], [4, 4])
    out = np.array([[-5, -5], [9, 9], [-7, 123], [-5, -5]], dtype=np.int16)
    impl.mix_rooms(frames_in, *rooms([[0, 3]]).args(), out)
    assert out.tolist() == [[4, 4], [9, 9], [-7, 123], [1, 1]]


def test_rooms_are_independent_and_may_be_empty(impl: ModuleType) -> None:
    frames_in = frames([1], [2], [30], [40], [500])
    plan = rooms([[], [1, 0], [], [4, 2, 3], []])
    out = run(impl, frames_in, plan)
    assert out.tolist() == [[2], [1], [540], [530], [70]]


def test_gains_scale_what_a_member_says_with_q15_rounding_half_up(impl: ModuleType) -> None:
    frames_in = frames([1000, 1, -1, -3], [0, 0, 0, 0], [0, 0, 0, 0])
    plan = rooms([[0, 1], [2]], gains={0: UNITY // 2, 2: 0})
    out = run(impl, frames_in, plan)
    # 1000/2 = 500; 1/2 = 0.5 rounds up to 1; -1/2 = -0.5 up to 0; -3/2 = -1.5 up to -1.
    assert out[1].tolist() == [500, 1, 0, -1]


def test_a_gain_of_zero_mutes_the_member_but_it_still_hears_the_room(impl: ModuleType) -> None:
    frames_in = frames([1000], [20], [3])
    out = run(impl, frames_in, rooms([[0, 1, 2]], gains={0: mix.MUTE_GAIN_Q15}))
    assert out.tolist() == [[23], [3], [20]]


def test_unity_gain_passes_every_int16_value_through_unchanged(impl: ModuleType) -> None:
    every = np.arange(-32768, 32768, dtype=np.int16).reshape(-1, 256)
    frames_in = np.concatenate([every, np.zeros_like(every)])
    half = len(every)
    plan = rooms([[i, i + half] for i in range(half)])
    out = run(impl, frames_in, plan)
    assert np.array_equal(out[half:], every)


def test_the_largest_gain_saturates(impl: ModuleType) -> None:
    frames_in = frames([32767, -32768, 16384, -16384], [0, 0, 0, 0])
    out = run(impl, frames_in, rooms([[0, 1]], gains={0: mix.MAX_GAIN_Q15}))
    assert out[1].tolist() == [32767, -32768, 32767, -32767]


def test_zero_samples_and_zero_rooms_are_fine(impl: ModuleType) -> None:
    assert run(impl, np.zeros((2, 0), dtype=np.int16), rooms([[0, 1]])).shape == (2, 0)
    untouched = run(impl, frames([5, 5]), rooms([]), fill=9)
    assert untouched.tolist() == [[9, 9]]


def test_read_only_inputs_are_accepted(impl: ModuleType) -> None:
    frames_in = frames([1, 2], [3, 4])
    plan = rooms([[0, 1]])
    for array in (frames_in, *plan.args()):
        array.setflags(write=False)
    assert run(impl, frames_in, plan).tolist() == [[3, 4], [1, 2]]


# ------------------------------------------------------ against the reference


@st.composite
def random_mixes(draw: st.DrawFn) -> tuple[np.ndarray, Rooms, np.ndarray]:
    """Any valid rooms over up to 10 legs, with loud audio and odd gains."""
    leg_count = draw(st.integers(1, 10))
    samples = draw(st.integers(0, 6))
    legs = draw(st.permutations(range(leg_count)))
    in_rooms = legs[: draw(st.integers(0, leg_count))]
    cuts = sorted(draw(st.lists(st.integers(0, len(in_rooms)), max_size=4)))
    bounds = [0, *cuts, len(in_rooms)]
    groups = [in_rooms[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    gain = st.one_of(
        st.sampled_from([0, 1, 16384, 32767, UNITY, 32769, 65535]), st.integers(0, 65535)
    )
    gains = {leg: draw(gain) for leg in in_rooms}
    whispers: dict[int, list[int]] = {}
    for group in groups:
        for leg in group:
            if draw(st.booleans()) and draw(st.booleans()):
                others = [other for other in group if other != leg]
                whispers[leg] = (
                    draw(st.lists(st.sampled_from(others), unique=True)) if others else []
                )
    plan = rooms(groups, gains=gains, whispers=whispers)
    sample = st.one_of(
        st.sampled_from([-32768, -32767, -1, 0, 1, 32767]), st.integers(-32768, 32767)
    )
    frames_in = np.array(
        draw(
            st.lists(
                st.lists(sample, min_size=samples, max_size=samples),
                min_size=leg_count,
                max_size=leg_count,
            )
        ),
        dtype=np.int16,
    ).reshape(leg_count, samples)
    fill = np.array(
        draw(
            st.lists(
                st.integers(-32768, 32767),
                min_size=leg_count * samples,
                max_size=leg_count * samples,
            )
        ),
        dtype=np.int16,
    ).reshape(leg_count, samples)
    return frames_in, plan, fill


@settings(max_examples=300, deadline=None)
@given(random_mixes())
def test_the_twin_matches_the_reference_on_any_rooms(
    case: tuple[np.ndarray, Rooms, np.ndarray],
) -> None:
    frames_in, plan, fill = case
    out = fill.copy()
    _mix_py.mix_rooms(frames_in, *plan.args(), out)
    assert np.array_equal(out, reference(frames_in, plan, fill))


@settings(max_examples=300, deadline=None)
@given(random_mixes())
def test_the_kernel_and_the_twin_agree_on_any_rooms(
    case: tuple[np.ndarray, Rooms, np.ndarray],
) -> None:
    kernel = _kernel()
    frames_in, plan, fill = case
    ours, twins = fill.copy(), fill.copy()
    kernel.mix_rooms(frames_in, *plan.args(), ours)
    _mix_py.mix_rooms(frames_in, *plan.args(), twins)
    assert np.array_equal(ours, twins)


def test_kernel_and_twin_agree_on_a_thousand_random_calls_of_160_samples() -> None:
    kernel = _kernel()
    rng = np.random.default_rng(20)
    legs = 3000
    frames_in = rng.integers(-32768, 32768, (legs, 160), dtype=np.int16)
    order = rng.permutation(legs).tolist()
    # 700 bridges, 150 three-way calls with a whispering supervisor, 50 conferences of 6.
    groups = [order[2 * i : 2 * i + 2] for i in range(700)]
    groups += [order[1400 + 3 * i : 1403 + 3 * i] for i in range(150)]
    groups += [order[1850 + 6 * i : 1856 + 6 * i] for i in range(50)]
    whispers = {group[2]: [group[1]] for group in groups[700:850]}
    for at in (0, 350, 351, 800, len(groups)):
        groups.insert(at, [])  # empty rooms, some where the twin's blocks meet
    gains = {leg: int(rng.choice([0, UNITY, rng.integers(0, 65536)])) for leg in order[:2150]}
    plan = rooms(groups, gains=gains, whispers=whispers)
    fill = rng.integers(-32768, 32768, frames_in.shape, dtype=np.int16)
    ours, twins = fill.copy(), fill.copy()
    kernel.mix_rooms(frames_in, *plan.args(), ours)
    _mix_py.mix_rooms(frames_in, *plan.args(), twins)
    assert np.array_equal(ours, twins)
    assert np.array_equal(ours, reference(frames_in, plan, fill))
    assert np.array_equal(ours[order[2150:]], fill[order[2150:]])  # legs in no room


# ------------------------------------------------------------------- errors


def _good() -> tuple[np.ndarray, Rooms, np.ndarray]:
    frames_in = np.zeros((4, 3), dtype=np.int16)
    return frames_in, rooms([[0, 1, 2], [3]], whispers={2: [0]}), np.zeros((4, 3), np.int16)


def _i32(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


Bad = Callable[[np.ndarray, Rooms, np.ndarray], tuple[np.ndarray, Rooms, np.ndarray]]
BAD_CALLS: list[tuple[str, Bad, type[Exception], str]] = [
    (
        "frames_float",
        lambda f, p, o: (f.astype(np.float32), p, o),
        TypeError,
        "frames_in must be a 2-D int16 array, not 2-D float32 array",
    ),
    (
        "frames_1d",
        lambda f, p, o: (f.reshape(-1), p, o),
        TypeError,
        "frames_in must be a 2-D int16 array, not 1-D int16 array",
    ),
    (
        "frames_list",
        lambda f, p, o: ([[0]], p, o),
        TypeError,  # type: ignore[return-value]
        "frames_in must be a 2-D int16 array, not list",
    ),
    (
        "frames_strided",
        lambda f, p, o: (np.zeros((4, 6), np.int16)[:, ::2], p, o),
        ValueError,
        "frames_in must be C-contiguous",
    ),
    (
        "out_wrong_shape",
        lambda f, p, o: (f, p, np.zeros((4, 2), np.int16)),
        ValueError,
        r"out has shape \(4, 2\), needs \(4, 3\)",
    ),
    ("out_read_only", lambda f, p, o: (f, p, _read_only(o)), ValueError, "out must be writeable"),
    ("out_is_frames", lambda f, p, o: (f, p, f), ValueError, "out must not overlap frames_in"),
    (
        "offsets_int64",
        lambda f, p, o: (f, replace(p, room_offsets=p.room_offsets.astype(np.int64)), o),
        TypeError,
        "room_offsets must be a 1-D int32 array, not 1-D int64 array",
    ),
    (
        "gain_int16",
        lambda f, p, o: (f, replace(p, member_gain_q15=p.member_gain_q15.astype(np.int16)), o),
        TypeError,
        "member_gain_q15 must be a 1-D uint16 array",
    ),
    (
        "public_uint8",
        lambda f, p, o: (f, replace(p, member_public=p.member_public.astype(np.uint8)), o),
        TypeError,
        "member_public must be a 1-D bool array",
    ),
    (
        "offsets_short",
        lambda f, p, o: (f, replace(p, room_offsets=_i32(0, 3)), o),
        ValueError,
        r"room_offsets must start at 0, never decrease and end at 4 \(the length of member_legs\)",
    ),
    (
        "offsets_decrease",
        lambda f, p, o: (f, replace(p, room_offsets=_i32(0, 3, 2, 4)), o),
        ValueError,
        "room_offsets must start at 0, never decrease",
    ),
    (
        "offsets_empty",
        lambda f, p, o: (f, replace(p, room_offsets=_i32()), o),
        ValueError,
        "room_offsets must start at 0",
    ),
    (
        "gains_short",
        lambda f, p, o: (f, replace(p, member_gain_q15=p.member_gain_q15[:3]), o),
        ValueError,
        "member_gain_q15 has 3 elements, member_legs has 4",
    ),
    (
        "public_long",
        lambda f, p, o: (f, replace(p, member_public=np.ones(5, np.bool_)), o),
        ValueError,
        "member_public has 5 elements, member_legs has 4",
    ),
    (
        "whisper_offsets_short",
        lambda f, p, o: (f, replace(p, whisper_offsets=_i32(0, 0, 0, 1)), o),
        ValueError,
        r"whisper_offsets has 4 elements, needs 5 \(one more than member_legs\)",
    ),
    (
        "whisper_offsets_end",
        lambda f, p, o: (f, replace(p, whisper_offsets=_i32(0, 1, 1, 1, 2)), o),
        ValueError,
        r"whisper_offsets must start at 0, never decrease and end at 1 "
        r"\(the length of whisper_sources\)",
    ),
    (
        "leg_too_big",
        lambda f, p, o: (f, replace(p, member_legs=_i32(0, 1, 4, 3)), o),
        ValueError,
        r"member_legs\[2\] = 4 is not a row of frames_in \(it has 4\)",
    ),
    (
        "leg_negative",
        lambda f, p, o: (f, replace(p, member_legs=_i32(0, -1, 2, 3)), o),
        ValueError,
        r"member_legs\[1\] = -1 is not a row of frames_in \(it has 4\)",
    ),
    (
        "leg_twice",
        lambda f, p, o: (f, replace(p, member_legs=_i32(0, 1, 2, 1)), o),
        ValueError,
        r"member_legs\[3\] = 1 repeats a leg already in a room",
    ),
    (
        "whisper_other_room",
        lambda f, p, o: (f, replace(p, whisper_sources=_i32(3)), o),
        ValueError,
        r"whisper_sources\[0\] = 3 is not in member 0's room",
    ),
    (
        "whisper_out_of_range",
        lambda f, p, o: (f, replace(p, whisper_sources=_i32(-7)), o),
        ValueError,
        r"whisper_sources\[0\] = -7 is not in member 0's room",
    ),
    (
        "whisper_itself",
        lambda f, p, o: (f, replace(p, whisper_offsets=_i32(0, 0, 0, 1, 1)), o),
        ValueError,
        r"whisper_sources\[0\] = 2: member 2 cannot hear itself",
    ),
    (
        "whisper_public",
        lambda f, p, o: (f, replace(p, whisper_sources=_i32(1)), o),
        ValueError,
        r"whisper_sources\[0\] = 1 is a public member: member 0 hears it already",
    ),
    (
        "whisper_twice",
        lambda f, p, o: (f, _whispered_twice(p), o),
        ValueError,
        r"whisper_sources of member 0 must be strictly increasing \(at 1\)",
    ),
]


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _whispered_twice(plan: Rooms) -> Rooms:
    return replace(plan, whisper_offsets=_i32(0, 2, 2, 2, 2), whisper_sources=_i32(2, 2))


@pytest.mark.parametrize(
    ("mutate", "error", "message"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_arguments_raise_precisely_instead_of_reading_out_of_bounds(
    impl: ModuleType, mutate: Bad, error: type[Exception], message: str
) -> None:
    frames_in, plan, out = mutate(*_good())
    with pytest.raises(error, match=message):
        impl.mix_rooms(frames_in, *plan.args(), out)


@pytest.mark.parametrize("mutate", [c[1] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_kernel_and_twin_raise_the_same_error_word_for_word(mutate: Bad) -> None:
    kernel = _kernel()
    messages = []
    for module in (kernel, _mix_py):
        frames_in, plan, out = mutate(*_good())
        with pytest.raises((TypeError, ValueError)) as caught:
            module.mix_rooms(frames_in, *plan.args(), out)
        messages.append((caught.type, str(caught.value)))
    assert messages[0] == messages[1]


def test_a_room_larger_than_int32_accumulation_allows_is_refused(impl: ModuleType) -> None:
    members = mix.MAX_ROOM_MEMBERS + 1
    frames_in = np.zeros((members, 1), dtype=np.int16)
    plan = rooms([list(range(members))])
    with pytest.raises(ValueError, match=f"room 0 has {members} members, more than 32767"):
        run(impl, frames_in, plan)


def test_the_largest_room_cannot_overflow_int32(impl: ModuleType) -> None:
    # Every member at full scale and maximum gain, half of them whispering to
    # member 0: the worst sum any listener can have still clips correctly.
    members = mix.MAX_ROOM_MEMBERS
    frames_in = np.full((members, 1), -32768, dtype=np.int16)
    half = members // 2
    plan = rooms(
        [list(range(members))],
        gains=dict.fromkeys(range(members), mix.MAX_GAIN_Q15),
        whispers={leg: [0] for leg in range(half, members)},
    )
    out = run(impl, frames_in, plan)
    assert set(out[:, 0].tolist()) == {-32768}


# --------------------------------------------------------- gain and pairs


def test_apply_gain_scales_each_row_saturating(impl: ModuleType) -> None:
    source = frames([1000, -1000, 3], [32767, -32768, 1], [5, 6, 7])
    gains = np.array([UNITY // 2, mix.MAX_GAIN_Q15, mix.MUTE_GAIN_Q15], dtype=np.uint16)
    out = np.full_like(source, 42)
    impl.apply_gain(source, gains, out)
    assert out.tolist() == [[500, -500, 2], [32767, -32768, 2], [0, 0, 0]]


def test_apply_gain_works_in_place_and_unity_changes_nothing(impl: ModuleType) -> None:
    rng = np.random.default_rng(3)
    source = rng.integers(-32768, 32768, (5, 160), dtype=np.int16)
    gains = np.array([UNITY, 0, 12345, 65535, UNITY], dtype=np.uint16)
    expected = np.empty_like(source)
    impl.apply_gain(source, gains, expected)
    in_place = source.copy()
    impl.apply_gain(in_place, gains, in_place)
    assert np.array_equal(in_place, expected)
    assert np.array_equal(expected[[0, 4]], source[[0, 4]])


def test_apply_gain_refuses_a_partly_overlapping_out_and_a_wrong_length(impl: ModuleType) -> None:
    block = np.zeros((3, 4), dtype=np.int16)
    with pytest.raises(ValueError, match="out must be frames itself or not overlap it"):
        impl.apply_gain(block[:2], np.full(2, UNITY, np.uint16), block[1:])
    with pytest.raises(ValueError, match="gain_q15 has 2 elements, frames' first axis has 3"):
        impl.apply_gain(block, np.full(2, UNITY, np.uint16), np.zeros_like(block))
    with pytest.raises(TypeError, match="gain_q15 must be a 1-D uint16 array"):
        impl.apply_gain(block, np.full(3, 1.0), np.zeros_like(block))


def test_mix_pairs_sums_two_legs_per_row_saturating(impl: ModuleType) -> None:
    frames_in = frames([1, 2], [10, 20], [30000, -30000], [30000, -30000])
    out = np.zeros((3, 2), dtype=np.int16)
    impl.mix_pairs(frames_in, _i32(0, 2, 1), _i32(1, 3, 1), out)
    assert out.tolist() == [[11, 22], [32767, -32768], [20, 40]]


def test_mix_pairs_rejects_legs_out_of_range_and_mismatched_lengths(impl: ModuleType) -> None:
    frames_in = np.zeros((2, 4), dtype=np.int16)
    out = np.zeros((1, 4), dtype=np.int16)
    with pytest.raises(ValueError, match=r"legs_b\[0\] = 2 is not a row of frames_in \(it has 2\)"):
        impl.mix_pairs(frames_in, _i32(0), _i32(2), out)
    with pytest.raises(ValueError, match="legs_b has 2 elements, legs_a has 1"):
        impl.mix_pairs(frames_in, _i32(0), _i32(0, 1), out)
    with pytest.raises(ValueError, match=r"out has shape \(1, 4\), needs \(2, 4\)"):
        impl.mix_pairs(frames_in, _i32(0, 1), _i32(1, 0), out)
    with pytest.raises(ValueError, match="out must not overlap frames_in"):
        impl.mix_pairs(frames_in, _i32(0, 1), _i32(1, 0), frames_in)


def test_kernel_and_twin_agree_on_gains_and_pairs() -> None:
    kernel = _kernel()
    rng = np.random.default_rng(7)
    source = rng.integers(-32768, 32768, (400, 160), dtype=np.int16)
    source[:5] = [[32767], [-32768], [-1], [1], [0]]
    gains = rng.integers(0, 65536, 400).astype(np.uint16)
    gains[:100] = rng.choice([0, UNITY, 65535, 16384], 100)
    ours, twins = np.empty_like(source), np.empty_like(source)
    kernel.apply_gain(source, gains, ours)
    _mix_py.apply_gain(source, gains, twins)
    assert np.array_equal(ours, twins)
    legs_a = rng.integers(0, 400, 250).astype(np.int32)
    legs_b = rng.integers(0, 400, 250).astype(np.int32)
    ours, twins = np.empty((250, 160), np.int16), np.empty((250, 160), np.int16)
    kernel.mix_pairs(source, legs_a, legs_b, ours)
    _mix_py.mix_pairs(source, legs_a, legs_b, twins)
    assert np.array_equal(ours, twins)
    assert np.array_equal(
        ours, np.clip(source[legs_a].astype(np.int32) + source[legs_b], -32768, 32767)
    )


# ---------------------------------------------------------- public module


def test_the_module_docstring_example_runs_as_written() -> None:
    result = doctest.testmod(mix, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3
    assert result.failed == 0


@pytest.mark.parametrize(
    ("gain_db", "gain_q15"),
    [(0.0, 32768), (-6.0, 16423), (-20.0, 3277), (6.0, 65381), (12.0, 65535), (float("-inf"), 0)],
)
def test_gain_q15_from_db(gain_db: float, gain_q15: int) -> None:
    assert mix.gain_q15_from_db(gain_db) == gain_q15


def test_gain_q15_from_db_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        mix.gain_q15_from_db(float("nan"))


def _import_in_subprocess(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_NO_EXTENSIONS"}
    if env_value is not None:
        env["HOTLINE_NO_EXTENSIONS"] = env_value
    code = "from media_core import mix; print(mix.USING_EXTENSION, mix.mix_rooms.__module__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_hotline_no_extensions_selects_the_twin_at_import() -> None:
    assert _import_in_subprocess("1") == "False media_core._mix_py"


def test_without_the_variable_the_kernel_is_selected_when_built() -> None:
    module, why = mix.load_extension()
    if module is None:
        pytest.skip(str(why))
    assert _import_in_subprocess(None) == "True media_core._mix"
    assert _import_in_subprocess("0") == "True media_core._mix"


def test_public_module_exposes_the_selected_implementation_consistently() -> None:
    selected = mix.mix_rooms.__module__
    assert mix.USING_EXTENSION == (selected == "media_core._mix")
    assert (mix.FALLBACK_REASON is None) == mix.USING_EXTENSION
    for name in ("apply_gain", "mix_pairs"):
        assert getattr(mix, name).__module__ == selected
