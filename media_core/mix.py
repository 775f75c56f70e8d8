"""Conference mixing for every call at once: bridges, mix-minus and whisper.

The implementation is chosen once, at import: the Cython kernel ``_mix`` unless
``HOTLINE_NO_EXTENSIONS`` is set (to anything but empty or ``0``) or the kernel
is not built, else the NumPy twin ``_mix_py``. Both stay importable by name so
tests can hold them to identical output and identical errors.

The tick decodes every leg's audio into one C-contiguous int16 array
``frames_in`` of shape ``(legs, samples)`` (zeros for a leg that sent nothing)
and wants ``out`` of the same shape: what each leg hears. ``mix_rooms`` writes
the rows of room members only; every other row of ``out`` is left as it was,
so the caller may put prompt audio or silence there before or after.

A *room* (a two-leg bridge, an N-party conference) is a run of *member
positions*; the arrays, which ``media_core.mixer.Mixer`` builds, are:

- ``room_offsets`` int32 ``(rooms + 1,)``: room ``r`` holds member positions
  ``room_offsets[r]:room_offsets[r + 1]`` (CSR; 0 first, ``members`` last).
- ``member_legs`` int32 ``(members,)``: the row of ``frames_in``/``out`` of each
  member; a leg is in at most one room.
- ``member_gain_q15`` uint16 ``(members,)``: gain on what the member says, in
  Q15: 32768 is unity, 0 mutes, 65535 is just under +6 dB.
- ``member_public`` bool ``(members,)``: True for a member the whole room
  hears; False for a whisperer (a supervisor), whom only its targets hear.
- ``whisper_offsets`` int32 ``(members + 1,)`` and ``whisper_sources`` int32:
  listener ``p`` also hears the member positions
  ``whisper_sources[whisper_offsets[p]:whisper_offsets[p + 1]]``, which must be
  whisperers of its own room, other than ``p``, in strictly increasing order.

Each member's contribution is ``round(sample * gain / 32768)`` (half up). A
member hears, sample by sample and in int32, the room's public sum minus its
own contribution (mix-minus: nobody hears themselves) plus its whisper
sources, saturated to int16 once at the end: a loud room clips, never wraps.
A whisperer hears every public member (so the customer and the agent) but not
other whisperers unless they whisper to it; a room's only member hears silence.

Example: legs 0 (customer) and 1 (agent) are bridged, leg 2 (a supervisor)
whispers to the agent, leg 3 hears a prompt and is in no room:

>>> import numpy as np
>>> from media_core import mix
>>> frames_in = np.array([[1000, -1000], [20, 20], [3, 3], [7, 7]], dtype=np.int16)
>>> out = np.full((4, 2), 99, dtype=np.int16)  # row 3: the prompt, put there earlier
>>> mix.mix_rooms(
...     frames_in,
...     room_offsets=np.array([0, 3], dtype=np.int32),
...     member_legs=np.array([0, 1, 2], dtype=np.int32),
...     member_gain_q15=np.full(3, mix.UNITY_GAIN_Q15, dtype=np.uint16),
...     member_public=np.array([True, True, False]),
...     whisper_offsets=np.array([0, 0, 1, 1], dtype=np.int32),  # member 1 hears ...
...     whisper_sources=np.array([2], dtype=np.int32),  # ... member 2
...     out=out,
... )
>>> out.tolist()  # customer: agent; agent: customer + supervisor; supervisor: both
[[20, 20], [1003, -997], [1020, -980], [99, 99]]

Two helpers share the arithmetic: ``apply_gain`` scales each row by its own
Q15 gain (per-leg volume or mute, in place if wanted) and ``mix_pairs`` sums
two legs per row into a mono recording tap. All three check their arguments
(dtypes, lengths, every index) and raise ``TypeError`` or ``ValueError``
rather than read out of bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from media_core import _mix_py, extensions
from media_core.extensions import extensions_disabled

__all__ = [
    "FALLBACK_REASON",
    "MAX_ROOM_MEMBERS",
    "MUTE_GAIN_Q15",
    "UNITY_GAIN_Q15",
    "USING_EXTENSION",
    "apply_gain",
    "extensions_disabled",
    "gain_q15_from_db",
    "load_extension",
    "mix_pairs",
    "mix_rooms",
]

MixRooms = Callable[
    [
        NDArray[np.int16],
        NDArray[np.int32],
        NDArray[np.int32],
        NDArray[np.uint16],
        NDArray[np.bool_],
        NDArray[np.int32],
        NDArray[np.int32],
        NDArray[np.int16],
    ],
    None,
]
ApplyGain = Callable[[NDArray[np.int16], NDArray[np.uint16], NDArray[np.int16]], None]
MixPairs = Callable[
    [NDArray[np.int16], NDArray[np.int32], NDArray[np.int32], NDArray[np.int16]], None
]

#: Q15 gain that leaves a sample as it is.
UNITY_GAIN_Q15 = 1 << 15
#: Q15 gain that silences a leg.
MUTE_GAIN_Q15 = 0
#: The largest Q15 gain the uint16 arrays hold (about +6.02 dB).
MAX_GAIN_Q15 = 0xFFFF
#: At most this many members per room (int32 accumulation cannot overflow).
MAX_ROOM_MEMBERS = _mix_py.MAX_ROOM_MEMBERS


def gain_q15_from_db(gain_db: float) -> int:
    """The Q15 gain for a level change in decibels, clamped to what uint16 holds.

    Args:
        gain_db: 0 for unity, negative to attenuate; ``-inf`` mutes.

    Returns:
        ``round(32768 * 10 ** (gain_db / 20))`` within 0..65535.

    Raises:
        ValueError: ``gain_db`` is NaN.
    """
    if math.isnan(gain_db):
        raise ValueError("gain_db is NaN")
    if gain_db == -math.inf:
        return MUTE_GAIN_Q15
    # Clamped first: 10 ** (huge / 20) overflows a float, and +7 dB is past 65535 anyway.
    linear = UNITY_GAIN_Q15 * math.pow(10.0, min(gain_db, 7.0) / 20.0)
    return max(MUTE_GAIN_Q15, min(MAX_GAIN_Q15, round(linear)))


def load_extension() -> tuple[ModuleType | None, str | None]:
    """Import the Cython kernel, whatever the environment says."""
    return extensions.load_extension("media_core._mix")


# FALLBACK_REASON says why the twin serves, if it does.
_implementation, FALLBACK_REASON = extensions.select("media_core._mix", _mix_py)
#: True when the Cython kernel serves this process.
USING_EXTENSION: bool = _implementation is not _mix_py

mix_rooms: MixRooms = _implementation.mix_rooms
apply_gain: ApplyGain = _implementation.apply_gain
mix_pairs: MixPairs = _implementation.mix_pairs
