"""Mixer: rooms, roles and whispers as bookkeeping, and the arrays it hands the kernel.

The arrays are checked element by element where the layout is the point, and
by what each leg hears (through both kernels, "py" and "c") where the meaning is.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from media_core import _mix_py, mix
from media_core.mixer import Mixer, MixPlan

UNITY = mix.UNITY_GAIN_Q15
CUSTOMER, AGENT, SUPERVISOR, OTHER = 0, 1, 2, 3


@pytest.fixture(params=["py", "c"], ids=["py", "c"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "py":
        return _mix_py
    if mix.extensions_disabled():
        pytest.skip("HOTLINE_NO_EXTENSIONS is set: the Cython kernel is not in use")
    module, why = mix.load_extension()
    if module is None:
        pytest.skip(str(why))
    return module


def hear(impl: ModuleType, plan: MixPlan, said: list[int], fill: int = -1) -> list[int]:
    """What each leg hears when leg i says ``said[i]`` (one sample per leg)."""
    frames_in = np.array(said, dtype=np.int16).reshape(-1, 1)
    out = np.full_like(frames_in, fill)
    impl.mix_rooms(
        frames_in,
        plan.room_offsets,
        plan.member_legs,
        plan.member_gain_q15,
        plan.member_public,
        plan.whisper_offsets,
        plan.whisper_sources,
        out,
    )
    return out[:, 0].tolist()


def arrays(plan: MixPlan) -> dict[str, list[int] | list[bool]]:
    return {
        "room_offsets": plan.room_offsets.tolist(),
        "member_legs": plan.member_legs.tolist(),
        "member_gain_q15": plan.member_gain_q15.tolist(),
        "member_public": plan.member_public.tolist(),
        "whisper_offsets": plan.whisper_offsets.tolist(),
        "whisper_sources": plan.whisper_sources.tolist(),
    }


# ------------------------------------------------------------------ bridges


def test_a_bridge_is_a_room_of_two_members_the_kernel_swaps(impl: ModuleType) -> None:
    mixer = Mixer()
    room = mixer.bridge(CUSTOMER, AGENT)
    assert room == "bridge-0-1"
    assert mixer.members(room) == (CUSTOMER, AGENT)
    assert mixer.room_of(AGENT) == room
    plan = mixer.plan
    assert arrays(plan) == {
        "room_offsets": [0, 2],
        "member_legs": [0, 1],
        "member_gain_q15": [UNITY, UNITY],
        "member_public": [True, True],
        "whisper_offsets": [0, 0, 0],
        "whisper_sources": [],
    }
    assert plan.rooms == (room,)
    assert hear(impl, plan, [100, 7]) == [7, 100]


def test_a_bridge_can_be_named(impl: ModuleType) -> None:
    mixer = Mixer()
    assert mixer.bridge(4, 2, room="call-17") == "call-17"
    assert mixer.rooms == ("call-17",)
    assert hear(impl, mixer.plan, [0, 0, 5, 0, 9]) == [-1, -1, 9, -1, 5]


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (1, 1, "cannot bridge leg 1 to itself"),
        (-1, 2, "leg -1 is negative"),
        (0, 5, "leg 0 is in room 'bridge-0-1' already; remove it first"),
    ],
)
def test_bridging_refuses_a_leg_twice_a_negative_leg_or_a_busy_leg(
    a: int, b: int, message: str
) -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    with pytest.raises(ValueError, match=message):
        mixer.bridge(a, b)
    assert mixer.rooms == ("bridge-0-1",)
    assert 5 not in mixer


def test_bridging_into_an_existing_room_name_is_refused() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1, room="r")
    with pytest.raises(ValueError, match="room 'r' exists already"):
        mixer.bridge(2, 3, room="r")
    assert 2 not in mixer and 3 not in mixer


# -------------------------------------------------------------- conferences


def test_conference_add_creates_the_room_and_everyone_hears_the_others(impl: ModuleType) -> None:
    mixer = Mixer()
    for leg in (3, 0, 5):
        mixer.conference_add("conf", leg)
    assert mixer.members("conf") == (3, 0, 5)
    assert len(mixer) == 3
    assert hear(impl, mixer.plan, [1, 0, 0, 10, 0, 100]) == [110, -1, -1, 101, -1, 11]


def test_rooms_keep_creation_order_and_members_join_order() -> None:
    mixer = Mixer()
    mixer.conference_add("b", 4)
    mixer.bridge(0, 1)
    mixer.conference_add("b", 2)
    plan = mixer.plan
    assert plan.rooms == ("b", "bridge-0-1")
    assert plan.member_legs.tolist() == [4, 2, 0, 1]
    assert plan.room_offsets.tolist() == [0, 2, 4]
    assert plan.rows_needed == 5


def test_a_supervisor_whispering_on_a_bridged_call_is_heard_by_the_agent_only(
    impl: ModuleType,
) -> None:
    mixer = Mixer()
    room = mixer.bridge(CUSTOMER, AGENT)
    mixer.conference_add(room, SUPERVISOR, role="whisper", whisper_to=[AGENT])
    plan = mixer.plan
    assert arrays(plan) == {
        "room_offsets": [0, 3],
        "member_legs": [0, 1, 2],
        "member_gain_q15": [UNITY] * 3,
        "member_public": [True, True, False],
        "whisper_offsets": [0, 0, 1, 1],
        "whisper_sources": [2],
    }
    assert mixer.role(SUPERVISOR) == "whisper"
    assert mixer.whisper_targets(SUPERVISOR) == (AGENT,)
    heard = hear(impl, plan, [1000, 20, 3])
    assert heard[CUSTOMER] == 20  # never the supervisor
    assert heard[AGENT] == 1003
    assert heard[SUPERVISOR] == 1020


def test_a_whisperer_without_targets_is_a_silent_monitor(impl: ModuleType) -> None:
    mixer = Mixer()
    room = mixer.bridge(CUSTOMER, AGENT)
    mixer.conference_add(room, SUPERVISOR, role="whisper")
    assert hear(impl, mixer.plan, [1000, 20, 3]) == [20, 1000, 1020]


def test_re_adding_a_whisperer_as_a_member_is_a_barge_in(impl: ModuleType) -> None:
    mixer = Mixer()
    room = mixer.bridge(CUSTOMER, AGENT)
    mixer.conference_add(room, SUPERVISOR, role="whisper", whisper_to=[AGENT])
    mixer.conference_add(room, SUPERVISOR)
    assert mixer.role(SUPERVISOR) == "member"
    assert mixer.whisper_targets(SUPERVISOR) == ()
    assert mixer.members(room) == (CUSTOMER, AGENT, SUPERVISOR)
    assert hear(impl, mixer.plan, [1000, 20, 3]) == [23, 1003, 1020]


def test_several_whisperers_each_reach_only_their_own_targets(impl: ModuleType) -> None:
    mixer = Mixer()
    for leg in (0, 1, 2):
        mixer.conference_add("conf", leg)
    mixer.conference_add("conf", 4, role="whisper", whisper_to=[2, 0, 2])
    mixer.conference_add("conf", 3, role="whisper", whisper_to=[0])
    plan = mixer.plan
    assert mixer.whisper_targets(4) == (2, 0)  # duplicates dropped, order kept
    # Listener 0 hears positions 3 (leg 4) and 4 (leg 3), in increasing order.
    assert plan.whisper_offsets.tolist() == [0, 2, 2, 3, 3, 3]
    assert plan.whisper_sources.tolist() == [3, 4, 3]
    assert hear(impl, plan, [1, 10, 100, 1000, 10000]) == [11110, 101, 10011, 111, 111]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "boss"}, "role 'boss' is not one of member, whisper"),
        ({"whisper_to": [AGENT]}, "only a whisperer has whisper_to targets"),
        ({"role": "whisper", "whisper_to": [OTHER]}, "whisper target 3 is not in room 'call'"),
        ({"role": "whisper", "whisper_to": [SUPERVISOR]}, "leg 2 cannot whisper to itself"),
    ],
)
def test_conference_add_refuses_bad_roles_and_targets(
    kwargs: dict[str, object], message: str
) -> None:
    mixer = Mixer()
    mixer.bridge(CUSTOMER, AGENT, room="call")
    mixer.bridge(OTHER, 9)
    generation = mixer.plan.generation
    with pytest.raises(ValueError, match=message):
        mixer.conference_add("call", SUPERVISOR, **kwargs)  # type: ignore[arg-type]
    assert SUPERVISOR not in mixer
    assert mixer.plan.generation == generation


def test_conference_add_refuses_a_leg_of_another_room_and_a_new_room_stays_unmade() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    with pytest.raises(ValueError, match="leg 1 is in room 'bridge-0-1' already"):
        mixer.conference_add("conf", 1)
    with pytest.raises(ValueError, match="whisper target 0 is not in room 'new'"):
        mixer.conference_add("new", 7, role="whisper", whisper_to=[0])
    assert mixer.rooms == ("bridge-0-1",)


def test_a_full_room_takes_no_more_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mix, "MAX_ROOM_MEMBERS", 3)
    mixer = Mixer()
    for leg in range(3):
        mixer.conference_add("conf", leg)
    with pytest.raises(ValueError, match=r"room 'conf' is full \(3 members\)"):
        mixer.conference_add("conf", 3)
    mixer.conference_add("conf", 2, role="whisper", whisper_to=[0])  # a role change still works


# ----------------------------------------------------------------- removal


def test_removing_a_bridged_leg_leaves_the_other_hearing_silence(impl: ModuleType) -> None:
    mixer = Mixer()
    room = mixer.bridge(CUSTOMER, AGENT)
    assert mixer.remove(AGENT) is True
    assert mixer.members(room) == (CUSTOMER,)
    assert mixer.room_of(AGENT) is None
    assert hear(impl, mixer.plan, [5, 7]) == [0, -1]


def test_the_last_leg_out_closes_the_room_and_removing_twice_is_harmless() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    assert mixer.remove(0) and mixer.remove(1)
    assert mixer.rooms == ()
    assert mixer.remove(1) is False
    plan = mixer.plan
    assert arrays(plan)["room_offsets"] == [0]
    assert arrays(plan)["whisper_offsets"] == [0]
    assert plan.rows_needed == 0


def test_removing_a_whisper_target_keeps_the_whisperers_other_targets(impl: ModuleType) -> None:
    mixer = Mixer()
    for leg in (0, 1, 2):
        mixer.conference_add("conf", leg)
    mixer.conference_add("conf", 3, role="whisper", whisper_to=[1, 2])
    mixer.remove(1)
    assert mixer.whisper_targets(3) == (2,)
    assert hear(impl, mixer.plan, [1, 10, 100, 1000]) == [100, -1, 1001, 101]


def test_close_removes_every_leg_of_a_room() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1, room="a")
    mixer.bridge(2, 3, room="b")
    assert mixer.close("a") == (0, 1)
    assert mixer.rooms == ("b",)
    assert 0 not in mixer and 1 not in mixer
    with pytest.raises(KeyError, match="no room 'a'"):
        mixer.close("a")
    with pytest.raises(KeyError, match="no room 'a'"):
        mixer.members("a")


# -------------------------------------------------------------- gain, mute


def test_mute_silences_a_leg_for_the_room_but_it_keeps_hearing_and_its_gain(
    impl: ModuleType,
) -> None:
    mixer = Mixer()
    for leg in (0, 1, 2):
        mixer.conference_add("conf", leg)
    mixer.set_gain(0, UNITY // 2)
    mixer.set_muted(0, True)
    assert mixer.plan.member_gain_q15.tolist() == [0, UNITY, UNITY]
    assert hear(impl, mixer.plan, [1000, 20, 3]) == [23, 3, 20]
    mixer.set_muted(0, False)
    assert mixer.plan.member_gain_q15.tolist() == [UNITY // 2, UNITY, UNITY]
    assert hear(impl, mixer.plan, [1000, 20, 3]) == [23, 503, 520]


def test_gain_and_mute_need_a_leg_in_a_room_and_a_gain_in_range() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    with pytest.raises(KeyError, match="leg 5 is in no room"):
        mixer.set_gain(5, UNITY)
    with pytest.raises(KeyError, match="leg 5 is in no room"):
        mixer.set_muted(5, True)
    with pytest.raises(KeyError, match="leg 5 is in no room"):
        mixer.role(5)
    with pytest.raises(ValueError, match="gain_q15 65536 is outside 0..65535"):
        mixer.set_gain(0, 65536)


def test_a_leg_removed_and_added_again_starts_at_unity_unmuted() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    mixer.set_gain(0, 123)
    mixer.set_muted(1, True)
    mixer.remove(0)
    mixer.remove(1)
    mixer.bridge(0, 1)
    assert mixer.plan.member_gain_q15.tolist() == [UNITY, UNITY]


# -------------------------------------------------------------------- plan


def test_the_plan_is_rebuilt_only_after_a_change() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    first = mixer.plan
    assert first.generation == 1
    assert mixer.plan is first  # every tick without a change: the same arrays
    mixer.set_gain(0, UNITY)  # no change in effect
    mixer.set_muted(0, False)
    assert mixer.plan is first
    mixer.conference_add("bridge-0-1", 2)
    second = mixer.plan
    assert second is not first and second.generation == 2
    assert first.member_legs.tolist() == [0, 1]  # the old plan is left as it was


def test_rebuild_builds_a_fresh_plan_on_demand() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    plan = mixer.rebuild()
    assert mixer.plan is plan
    assert mixer.rebuild() is not plan


def test_the_plans_arrays_are_read_only_and_typed_for_the_kernel() -> None:
    mixer = Mixer()
    mixer.bridge(0, 1)
    plan = mixer.plan
    dtypes = {
        "room_offsets": np.int32,
        "member_legs": np.int32,
        "member_gain_q15": np.uint16,
        "member_public": np.bool_,
        "whisper_offsets": np.int32,
        "whisper_sources": np.int32,
    }
    for name, dtype in dtypes.items():
        array = getattr(plan, name)
        assert array.dtype == dtype, name
        assert not array.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0


def test_mixer_mix_runs_the_selected_kernel_and_leaves_other_legs_alone() -> None:
    mixer = Mixer()
    mixer.bridge(0, 2)
    frames_in = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int16)
    out = np.full_like(frames_in, 9)
    mixer.mix(frames_in, out)
    assert out.tolist() == [[5, 6], [9, 9], [1, 2]]


def test_a_frame_array_too_small_for_the_plan_is_refused() -> None:
    mixer = Mixer()
    mixer.bridge(0, 4)
    frames_in = np.zeros((mixer.plan.rows_needed - 1, 160), dtype=np.int16)
    with pytest.raises(ValueError, match=r"member_legs\[1\] = 4 is not a row of frames_in"):
        mixer.mix(frames_in, np.zeros_like(frames_in))


def test_a_call_centre_tick_matches_mixing_each_call_by_hand(impl: ModuleType) -> None:
    mixer = Mixer()
    rng = np.random.default_rng(11)
    # 200 bridged calls on legs 0..399, a supervisor whispering on every tenth.
    for call in range(200):
        mixer.bridge(2 * call, 2 * call + 1)
    for call in range(0, 200, 10):
        mixer.conference_add(
            f"bridge-{2 * call}-{2 * call + 1}", 400 + call // 10, "whisper", [2 * call + 1]
        )
    frames_in = rng.integers(-20000, 20000, (420, 160), dtype=np.int16)
    out = np.zeros_like(frames_in)
    plan = mixer.plan
    impl.mix_rooms(
        frames_in,
        plan.room_offsets,
        plan.member_legs,
        plan.member_gain_q15,
        plan.member_public,
        plan.whisper_offsets,
        plan.whisper_sources,
        out,
    )
    wide = frames_in.astype(np.int32)
    for call in range(200):
        customer, agent = 2 * call, 2 * call + 1
        assert np.array_equal(out[customer], frames_in[agent])
        if call % 10:
            assert np.array_equal(out[agent], frames_in[customer])
        else:
            supervisor = 400 + call // 10
            assert np.array_equal(
                out[agent], np.clip(wide[customer] + wide[supervisor], -32768, 32767)
            )
            assert np.array_equal(
                out[supervisor], np.clip(wide[customer] + wide[agent], -32768, 32767)
            )
