"""PCM legs: call legs without RTP, whose audio the application pushes and takes (sans-IO).

A browser leg is one: aiortc terminates WebRTC and hands over decoded audio at
irregular times; the tick needs exactly one frame per leg per tick. ``PcmLegs``
keeps one small playout buffer per leg, all of them rows of ONE ring array
``(legs, depth, samples)``, so the tick takes this slot's frame of every PCM
leg with one fancy-indexed copy (``pull_into``), as it decodes all G.711 legs
with one kernel call.

Per leg: a push appends whole frames (a partial frame waits for the rest); at
most ``depth`` frames wait, and a push beyond that drops the oldest (latency
stays bounded when the pusher runs ahead of the tick's clock). A leg starts,
and restarts after running dry, only once ``prefill`` frames wait, so a pusher
a little late each time does not make every other frame silent. A tick that
finds a playing leg empty counts an underrun and hears silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["PcmLegStats", "PcmLegs"]


@dataclass(frozen=True, slots=True)
class PcmLegStats:
    """A snapshot of one PCM leg's playout buffer."""

    frames_pushed: int
    frames_dropped: int  # the oldest, when more than ``depth`` waited
    underruns: int  # ticks that found the playing leg empty
    frames_buffered: int


class PcmLegs:
    """The playout buffers of every PCM leg of a tick, as rows of one ring array."""

    __slots__ = (
        "_count",
        "_dropped",
        "_free_rows",
        "_partial",
        "_playing",
        "_pushed",
        "_read",
        "_ring",
        "_underruns",
        "depth",
        "frame_samples",
        "prefill",
    )

    def __init__(self, frame_samples: int, *, depth: int = 5, prefill: int = 2) -> None:
        """Create an empty set of legs.

        Args:
            frame_samples: samples of one tick's frame.
            depth: frames a leg may hold; a push beyond drops the oldest.
            prefill: frames a leg waits for before it starts (or restarts) playing.

        Raises:
            ValueError: ``depth`` < 1, or ``prefill`` not within 1..depth.
        """
        if frame_samples <= 0 or depth < 1 or not 1 <= prefill <= depth:
            raise ValueError(
                f"a PCM leg needs frame_samples > 0 and 1 <= prefill ({prefill}) <= depth ({depth})"
            )
        self.frame_samples = frame_samples
        self.depth = depth
        self.prefill = prefill
        self._ring = np.zeros((0, depth, frame_samples), dtype=np.int16)
        self._read = np.zeros(0, dtype=np.intp)
        self._count = np.zeros(0, dtype=np.intp)
        self._playing = np.zeros(0, dtype=bool)
        self._pushed = np.zeros(0, dtype=np.int64)
        self._dropped = np.zeros(0, dtype=np.int64)
        self._underruns = np.zeros(0, dtype=np.int64)
        self._partial: list[NDArray[np.int16]] = []
        self._free_rows: list[int] = []

    def add(self) -> int:
        """A new, empty leg; returns its row."""
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            row = len(self._partial)
            self._partial.append(np.zeros(0, dtype=np.int16))
            if row >= len(self._ring):
                self._grow(max(8, 2 * len(self._ring)))
        self._reset(row)
        return row

    def remove(self, row: int) -> None:
        """Free a leg's row (its buffered audio is dropped)."""
        self._reset(row)
        self._free_rows.append(row)

    def push(self, row: int, pcm: NDArray[np.int16]) -> None:
        """Append audio of any length to a leg; whole frames become playable.

        Raises:
            ValueError: ``pcm`` is not a 1-D int16 array.
        """
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("PCM pushed into a leg must be a 1-D int16 array")
        samples = self.frame_samples
        pending = self._partial[row]
        if len(pending):
            pcm = np.concatenate((pending, pcm))
        whole = len(pcm) // samples
        self._partial[row] = pcm[whole * samples :].copy()
        if not whole:
            return
        frames = pcm[: whole * samples].reshape(whole, samples)
        self._pushed[row] += whole
        depth = self.depth
        if whole > depth:
            self._dropped[row] += whole - depth
            frames = frames[-depth:]
            whole = depth
        overflow = max(0, int(self._count[row]) + whole - depth)
        if overflow:
            # Drop the oldest: the leg's delay stays at most ``depth`` frames.
            self._read[row] = (self._read[row] + overflow) % depth
            self._count[row] -= overflow
            self._dropped[row] += overflow
        write = (self._read[row] + self._count[row] + np.arange(whole)) % depth
        self._ring[row, write] = frames
        self._count[row] += whole

    def pull_into(self, rows: NDArray[np.intp], out: NDArray[np.int16]) -> None:
        """Take this tick's frame of each leg of ``rows`` into ``out`` (one row each).

        Vectorised over the legs: one gather from the ring, no loop per leg.
        """
        count = self._count[rows]
        playing = self._playing[rows] | (count >= self.prefill)
        take = playing & (count > 0)
        starved = playing & ~take
        read = self._read[rows]
        out[:] = self._ring[rows, read]
        out[~take] = 0
        taken = rows[take]
        self._read[taken] = (read[take] + 1) % self.depth
        self._count[taken] -= 1
        self._underruns[rows[starved]] += 1
        self._playing[rows] = take

    def stats(self, row: int) -> PcmLegStats:
        """A snapshot of a leg's counters."""
        return PcmLegStats(
            frames_pushed=int(self._pushed[row]),
            frames_dropped=int(self._dropped[row]),
            underruns=int(self._underruns[row]),
            frames_buffered=int(self._count[row]),
        )

    def _reset(self, row: int) -> None:
        self._read[row] = 0
        self._count[row] = 0
        self._playing[row] = False
        self._pushed[row] = 0
        self._dropped[row] = 0
        self._underruns[row] = 0
        self._partial[row] = np.zeros(0, dtype=np.int16)

    def _grow(self, size: int) -> None:
        ring = np.zeros((size, self.depth, self.frame_samples), dtype=np.int16)
        ring[: len(self._ring)] = self._ring
        self._ring = ring
        for name in ("_read", "_count", "_playing", "_pushed", "_dropped", "_underruns"):
            old = getattr(self, name)
            grown = np.zeros(size, dtype=old.dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)
