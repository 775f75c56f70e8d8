"""Who hears whom: rooms, their members and whispers, as arrays for the mix kernel (sans-IO).

A *leg* is a row of the tick's ``frames_in``/``frames_out`` arrays: the caller
owns the numbering and tells the mixer which rows share a room. A *room* is a
two-leg bridge or an N-party conference; both are the same thing to the
kernel, so a supervisor can be added to a bridged call with ``conference_add``.

A member's role is ``"member"`` (the whole room hears it, mix-minus) or
``"whisper"`` (a supervisor: it hears every member, and only the legs named in
``whisper_to`` hear it; with no targets it is a silent monitor). Changing role
in place (``conference_add`` again for the same room) turns a whisper into a
barge-in and back.

Membership changes mark the plan stale; ``plan`` rebuilds it on first use
after a change, so a tick with no change reuses the same arrays::

    mixer = Mixer()
    room = mixer.bridge(0, 1)                      # customer row 0, agent row 1
    mixer.conference_add(room, 2, role="whisper", whisper_to=[1])
    mixer.mix(frames_in, frames_out)               # every tick

The arrays are those ``media_core.mix.mix_rooms`` documents; they are read-only
and replaced, never changed in place, so a caller may hold a plan across ticks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

from media_core import mix

__all__ = ["MixPlan", "Mixer", "Role"]

Role: TypeAlias = Literal["member", "whisper"]
_ROLES: tuple[Role, ...] = ("member", "whisper")


_Array = TypeVar("_Array", bound=NDArray[Any])


def _frozen(array: _Array) -> _Array:
    """Make ``array`` read-only: a plan is shared and must not change under its users."""
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True)
class MixPlan:
    """One rebuild's arrays for ``mix_rooms``, and which room is which.

    ``rooms[r]`` is the name of room ``r``; ``rows_needed`` is one more than
    the highest leg of any room (0 with no rooms): ``frames_in`` needs at
    least that many rows. ``generation`` counts rebuilds, from 1.
    """

    generation: int
    rooms: tuple[str, ...]
    room_offsets: NDArray[np.int32]
    member_legs: NDArray[np.int32]
    member_gain_q15: NDArray[np.uint16]
    member_public: NDArray[np.bool_]
    whisper_offsets: NDArray[np.int32]
    whisper_sources: NDArray[np.int32]
    rows_needed: int

    def mix(self, frames_in: NDArray[np.int16], out: NDArray[np.int16]) -> None:
        """Write what every member hears into its row of ``out``; other rows stay as they are.

        Args:
            frames_in: ``(legs, samples)`` int16, what each leg said this tick.
            out: same shape, not overlapping ``frames_in``.

        Raises:
            TypeError: wrong array types.
            ValueError: a leg of this plan is not a row of ``frames_in``, or bad ``out``.
        """
        mix.mix_rooms(
            frames_in,
            self.room_offsets,
            self.member_legs,
            self.member_gain_q15,
            self.member_public,
            self.whisper_offsets,
            self.whisper_sources,
            out,
        )


@dataclass(slots=True)
class _Member:
    role: Role
    whisper_to: list[int] = field(default_factory=list)  # legs, in the order given
    gain_q15: int = mix.UNITY_GAIN_Q15
    muted: bool = False


class Mixer:
    """Rooms and their members, and the cached ``MixPlan`` the kernel consumes."""

    __slots__ = ("_generation", "_plan", "_room_of", "_rooms")

    def __init__(self) -> None:
        """Start with no rooms."""
        # Insertion order is the plan's order: rooms, and members within a room.
        self._rooms: dict[str, dict[int, _Member]] = {}
        self._room_of: dict[int, str] = {}
        self._plan: MixPlan | None = None
        self._generation = 0

    # ------------------------------------------------------------ queries

    @property
    def rooms(self) -> tuple[str, ...]:
        """The rooms' names, oldest first."""
        return tuple(self._rooms)

    def members(self, room: str) -> tuple[int, ...]:
        """A room's legs, in the order they joined.

        Raises:
            KeyError: no such room.
        """
        return tuple(self._room(room))

    def room_of(self, leg: int) -> str | None:
        """The room ``leg`` is in, or None."""
        return self._room_of.get(leg)

    def role(self, leg: int) -> Role:
        """``leg``'s role in its room.

        Raises:
            KeyError: ``leg`` is in no room.
        """
        return self._member(leg).role

    def whisper_targets(self, leg: int) -> tuple[int, ...]:
        """The legs that hear ``leg``'s whisper (empty for a member or a silent monitor).

        Raises:
            KeyError: ``leg`` is in no room.
        """
        return tuple(self._member(leg).whisper_to)

    def __len__(self) -> int:
        """The number of legs in rooms."""
        return len(self._room_of)

    def __contains__(self, leg: object) -> bool:
        """Whether ``leg`` is in a room."""
        return leg in self._room_of

    # ---------------------------------------------------------- changes

    def bridge(self, a: int, b: int, room: str | None = None) -> str:
        """Put two legs, both in no room, in a new room: each hears the other.

        Args:
            a: one leg.
            b: the other leg.
            room: the new room's name; ``"bridge-{a}-{b}"`` when None.

        Returns:
            The room's name.

        Raises:
            ValueError: ``a == b``, a leg is negative or already in a room, or
                the room exists.
        """
        if a == b:
            raise ValueError(f"cannot bridge leg {a} to itself")
        name = f"bridge-{a}-{b}" if room is None else room
        for leg in (a, b):
            self._check_free(leg)
        if name in self._rooms:
            raise ValueError(f"room {name!r} exists already")
        self._rooms[name] = {a: _Member("member"), b: _Member("member")}
        self._room_of[a] = self._room_of[b] = name
        self._changed()
        return name

    def conference_add(
        self, room: str, leg: int, role: Role = "member", whisper_to: Iterable[int] = ()
    ) -> None:
        """Add a leg to a room, creating the room if needed, or change its role there.

        Args:
            room: the room's name.
            leg: the leg; in no room, or in ``room`` already (its role then changes
                and its gain and mute are kept).
            role: ``"member"``, heard by everyone; ``"whisper"``, heard only by
                ``whisper_to``. Either way it hears every ``"member"`` of the room.
            whisper_to: for a whisperer, the legs of ``room`` that hear it.

        Raises:
            ValueError: unknown role, targets for a member, a target not in
                ``room`` or the leg itself, a negative leg, a leg in another
                room, or a full room.
        """
        if role not in _ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(_ROLES)}")
        targets = list(dict.fromkeys(whisper_to))  # unique, in the order given
        if role == "member" and targets:
            raise ValueError("only a whisperer has whisper_to targets")
        members = self._rooms.get(room, {})
        current = self._room_of.get(leg)
        if current != room:
            self._check_free(leg)
            if len(members) >= mix.MAX_ROOM_MEMBERS:
                raise ValueError(f"room {room!r} is full ({mix.MAX_ROOM_MEMBERS} members)")
        for target in targets:
            if target == leg:
                raise ValueError(f"leg {leg} cannot whisper to itself")
            if target not in members:
                raise ValueError(f"whisper target {target} is not in room {room!r}")
        member = members.get(leg)
        if member is None:
            self._rooms.setdefault(room, members)[leg] = _Member(role, targets)
            self._room_of[leg] = room
        else:
            member.role, member.whisper_to = role, targets
        self._changed()

    def remove(self, leg: int) -> bool:
        """Take a leg out of its room; the room goes when its last leg does.

        Whisperers that whispered to ``leg`` keep their other targets. Its gain
        and mute are forgotten.

        Returns:
            Whether ``leg`` was in a room (removing a leg in none does nothing).
        """
        room = self._room_of.pop(leg, None)
        if room is None:
            return False
        members = self._rooms[room]
        del members[leg]
        for member in members.values():
            if leg in member.whisper_to:
                member.whisper_to.remove(leg)
        if not members:
            del self._rooms[room]
        self._changed()
        return True

    def close(self, room: str) -> tuple[int, ...]:
        """Remove a room and all its legs.

        Returns:
            The legs that were in it.

        Raises:
            KeyError: no such room.
        """
        legs = tuple(self._room(room))
        for leg in legs:
            del self._room_of[leg]
        del self._rooms[room]
        self._changed()
        return legs

    def set_gain(self, leg: int, gain_q15: int) -> None:
        """Set how loud the room hears ``leg`` (Q15: 32768 is unity, see ``mix.gain_q15_from_db``).

        Raises:
            KeyError: ``leg`` is in no room.
            ValueError: the gain is outside 0..65535.
        """
        if not mix.MUTE_GAIN_Q15 <= gain_q15 <= mix.MAX_GAIN_Q15:
            raise ValueError(f"gain_q15 {gain_q15} is outside 0..{mix.MAX_GAIN_Q15}")
        member = self._member(leg)
        if member.gain_q15 != gain_q15:
            member.gain_q15 = gain_q15
            self._changed()

    def set_muted(self, leg: int, muted: bool) -> None:
        """Mute or unmute what ``leg`` says; it keeps hearing the room, and its gain.

        Raises:
            KeyError: ``leg`` is in no room.
        """
        member = self._member(leg)
        if member.muted != muted:
            member.muted = muted
            self._changed()

    # ------------------------------------------------------------ plan

    @property
    def plan(self) -> MixPlan:
        """The current arrays, rebuilt only if membership changed since the last ones."""
        if self._plan is None:
            return self.rebuild()
        return self._plan

    def rebuild(self) -> MixPlan:
        """Build the arrays from the rooms now (``plan`` calls this when needed).

        Returns:
            The new plan, which ``plan`` returns from now until the next change.
        """
        room_offsets = [0]
        member_legs: list[int] = []
        gains: list[int] = []
        public: list[bool] = []
        whisper_offsets = [0]
        whisper_sources: list[int] = []
        for members in self._rooms.values():
            first = len(member_legs)
            position = {leg: first + i for i, leg in enumerate(members)}
            heard_by: dict[int, list[int]] = {leg: [] for leg in members}
            for leg, member in members.items():
                member_legs.append(leg)
                gains.append(mix.MUTE_GAIN_Q15 if member.muted else member.gain_q15)
                public.append(member.role == "member")
                if member.role == "whisper":
                    for target in member.whisper_to:
                        heard_by[target].append(position[leg])
            for leg in members:
                # The kernel takes each listener's sources in increasing order.
                whisper_sources.extend(sorted(heard_by[leg]))
                whisper_offsets.append(len(whisper_sources))
            room_offsets.append(len(member_legs))
        self._generation += 1
        self._plan = MixPlan(
            generation=self._generation,
            rooms=tuple(self._rooms),
            room_offsets=_frozen(np.array(room_offsets, dtype=np.int32)),
            member_legs=_frozen(np.array(member_legs, dtype=np.int32)),
            member_gain_q15=_frozen(np.array(gains, dtype=np.uint16)),
            member_public=_frozen(np.array(public, dtype=np.bool_)),
            whisper_offsets=_frozen(np.array(whisper_offsets, dtype=np.int32)),
            whisper_sources=_frozen(np.array(whisper_sources, dtype=np.int32)),
            rows_needed=max(member_legs, default=-1) + 1,
        )
        return self._plan

    def mix(self, frames_in: NDArray[np.int16], out: NDArray[np.int16]) -> None:
        """Mix this tick with the current plan (see ``MixPlan.mix``).

        Raises:
            TypeError: wrong array types.
            ValueError: a leg in a room is not a row of ``frames_in``, or bad ``out``.
        """
        self.plan.mix(frames_in, out)

    # --------------------------------------------------------- helpers

    def _changed(self) -> None:
        self._plan = None

    def _check_free(self, leg: int) -> None:
        if leg < 0:
            raise ValueError(f"leg {leg} is negative: legs are rows of the frame arrays")
        room = self._room_of.get(leg)
        if room is not None:
            raise ValueError(f"leg {leg} is in room {room!r} already; remove it first")

    def _room(self, room: str) -> dict[int, _Member]:
        try:
            return self._rooms[room]
        except KeyError:
            raise KeyError(f"no room {room!r}") from None

    def _member(self, leg: int) -> _Member:
        room = self._room_of.get(leg)
        if room is None:
            raise KeyError(f"leg {leg} is in no room")
        return self._rooms[room][leg]
