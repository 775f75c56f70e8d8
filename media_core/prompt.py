"""Prompts: audio files decoded once to call-rate PCM, and per-call playback.

``PromptCache`` decodes anything PyAV (FFmpeg) reads, WAV, MP3, Ogg/Opus,
FLAC and the rest, to mono int16 at the call rate (8 kHz) the first time it is
asked for, and hands out the same read-only array until the file changes (its
modification time or size). Downmixing is PyAV's; the rate conversion is
``media_core.resample``'s, the same filter the media path uses.

``PromptPlayer`` is one call's playback position in such an array: the tick
asks it for a frame at a time, ``stop`` is barge-in (the very next frame is
silence), and ``fill_frames`` serves every call's player into one
``(calls, samples)`` array per tick.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from media_core.resample import resample

__all__ = ["PromptCache", "PromptPlayer", "decode_prompt", "fill_frames"]


def decode_prompt(path: str | os.PathLike[str], rate_hz: int = 8000) -> NDArray[np.int16]:
    """Decode an audio file's first audio stream to mono int16 at ``rate_hz``.

    Args:
        path: any file FFmpeg can read.
        rate_hz: the wanted rate.

    Returns:
        A new, writable 1-D int16 array (empty for a file without samples).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not audio FFmpeg can decode, or no audio stream.
    """
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            native_hz = stream.rate
            # Same rate out: PyAV only converts the sample format and downmixes.
            downmix = av.AudioResampler(format="s16", layout="mono", rate=native_hz)
            chunks: list[NDArray[np.int16]] = []
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray()[0] for f in downmix.resample(frame))
            chunks.extend(f.to_ndarray()[0] for f in downmix.resample(None))
    except av.FFmpegError as exc:
        if isinstance(exc, OSError) and not isinstance(exc, av.InvalidDataError):
            raise
        raise ValueError(f"cannot decode {path} as audio: {exc}") from exc
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, dtype=np.int16)
    if native_hz != rate_hz:
        pcm = resample(pcm, native_hz, rate_hz)
    return pcm


class PromptCache:
    """Decoded prompts by file, each decoded once until the file changes."""

    __slots__ = ("_entries", "decodes", "max_entries", "rate_hz")

    def __init__(self, rate_hz: int = 8000, *, max_entries: int = 1024) -> None:
        """Create an empty cache.

        Args:
            rate_hz: the rate prompts are decoded to.
            max_entries: how many files to keep; the least recently loaded goes first.

        Raises:
            ValueError: a non-positive rate or size.
        """
        if rate_hz <= 0 or max_entries <= 0:
            raise ValueError("rate_hz and max_entries must be positive")
        self.rate_hz = rate_hz
        self.max_entries = max_entries
        self.decodes = 0  # how many files were actually decoded
        # resolved path -> (mtime_ns, size, pcm)
        self._entries: OrderedDict[str, tuple[int, int, NDArray[np.int16]]] = OrderedDict()

    def load(self, path: str | os.PathLike[str]) -> NDArray[np.int16]:
        """The prompt's samples, decoded now if the file is new or has changed.

        Returns:
            A read-only 1-D int16 array at ``rate_hz``, shared by every caller.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not decodable audio.
        """
        key = str(Path(path).resolve())
        status = os.stat(key)
        entry = self._entries.get(key)
        if entry is not None and entry[:2] == (status.st_mtime_ns, status.st_size):
            self._entries.move_to_end(key)
            return entry[2]
        pcm = decode_prompt(key, self.rate_hz)
        self.decodes += 1
        # Shared between calls: nobody may write into it.
        pcm.setflags(write=False)
        self._entries[key] = (status.st_mtime_ns, status.st_size, pcm)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return pcm

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop a file's entry, if there is one."""
        self._entries.pop(str(Path(path).resolve()), None)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str | os.PathLike):
            return False
        return str(Path(path).resolve()) in self._entries


class PromptPlayer:
    """One call's prompt playback: a position in a shared array."""

    __slots__ = ("_pcm", "_position", "completed", "rate_hz")

    def __init__(self, rate_hz: int = 8000) -> None:
        """Create an idle player.

        Raises:
            ValueError: a non-positive rate.
        """
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, not {rate_hz}")
        self.rate_hz = rate_hz
        self._pcm: NDArray[np.int16] | None = None
        self._position = 0
        # True once a prompt has played to its end (not stopped): "prompt done".
        self.completed = False

    @property
    def playing(self) -> bool:
        """Whether the next frame has prompt audio in it."""
        return self._pcm is not None

    @property
    def position_ms(self) -> float:
        """How far into the current (or last) prompt playback got."""
        return self._position * 1000.0 / self.rate_hz

    @property
    def duration_ms(self) -> float:
        """The current prompt's length; 0 when idle."""
        return 0.0 if self._pcm is None else len(self._pcm) * 1000.0 / self.rate_hz

    def start(self, prompt_pcm: NDArray[np.int16]) -> None:
        """Play ``prompt_pcm`` from its start, replacing whatever was playing.

        An empty prompt plays nothing and is ``completed`` at once. The array
        is not copied: it must not change while it plays (the cache's arrays
        are read-only).

        Raises:
            ValueError: not a 1-D int16 array.
        """
        if not isinstance(prompt_pcm, np.ndarray) or prompt_pcm.dtype != np.int16:
            raise ValueError("a prompt is a 1-D int16 array")
        if prompt_pcm.ndim != 1:
            raise ValueError(f"a prompt is a 1-D int16 array, not {prompt_pcm.ndim}-D")
        self._position = 0
        # An empty prompt has nothing to play: it is done at once.
        self._pcm = prompt_pcm if len(prompt_pcm) else None
        self.completed = self._pcm is None

    def stop(self) -> None:
        """Barge-in: stop now; the next frame has no prompt audio."""
        self._pcm = None

    def next_frame(self, samples: int) -> NDArray[np.int16] | None:
        """The next ``samples`` of the prompt, or None when not playing.

        The last frame is padded with silence to full length; the call after
        it returns None. A full frame may be a read-only view of the prompt.

        Raises:
            ValueError: ``samples`` is not positive.
        """
        if samples <= 0:
            raise ValueError(f"samples must be positive, not {samples}")
        pcm = self._pcm
        if pcm is None:
            return None
        start = self._position
        frame = pcm[start : start + samples]
        if len(frame) < samples:
            frame = np.concatenate((frame, np.zeros(samples - len(frame), dtype=np.int16)))
        self._advance(pcm, samples)
        return frame

    def read_into(self, out: NDArray[np.int16]) -> None:
        """Fill ``out`` with the next frame, silence when not playing.

        This makes a player a ``media_core.tick.PcmSource``.
        """
        self._fill(out)

    def _fill(self, out: NDArray[np.int16]) -> bool:
        """``read_into``, telling whether the prompt reached its end with this frame."""
        pcm = self._pcm
        if pcm is None:
            out[:] = 0
            return False
        start = self._position
        count = max(0, min(len(out), len(pcm) - start))
        out[:count] = pcm[start : start + count]
        out[count:] = 0
        return self._advance(pcm, len(out))

    def _advance(self, pcm: NDArray[np.int16], samples: int) -> bool:
        self._position += samples
        if self._position < len(pcm):
            return False
        self._position = len(pcm)
        self._pcm = None
        self.completed = True
        return True


def fill_frames(players: Sequence[PromptPlayer | None], out: NDArray[np.int16]) -> list[int]:
    """Fill one frame for every call: row ``i`` from ``players[i]``, silence if idle.

    The array is zeroed in one operation and only playing rows get a slice
    copied from their cached prompt.

    Args:
        players: one per row; None for a call without a player.
        out: ``(calls, samples)`` int16 to fill.

    Returns:
        The rows whose prompt reached its end on this frame (the IVR's "prompt done").

    Raises:
        ValueError: ``out`` is not a 2-D int16 array with a row per player.
    """
    if not isinstance(out, np.ndarray) or out.dtype != np.int16 or out.ndim != 2:
        raise ValueError("out must be a (calls, samples) int16 array")
    if out.shape[0] != len(players):
        raise ValueError(f"{out.shape[0]} rows for {len(players)} players")
    out[:] = 0
    finished: list[int] = []
    for row, player in enumerate(players):
        if player is not None and player._pcm is not None and player._fill(out[row]):
            finished.append(row)
    return finished
