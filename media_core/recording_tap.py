"""The recording tap: each tick's stereo frame of a call, batched for a writer thread.

The tick must not do disk I/O for hundreds of calls every 20 ms. So each
recorded stream collects its interleaved frames (caller left, what the caller
hears right) in memory, and every ``chunk_frames`` ticks hands one chunk to the
shell, which writes chunks in order on one worker thread. With the recorders'
own header flush every 500 ms, a killed process loses at most about a second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media_core.recording import Recorder, open_recorder

__all__ = ["LazyRecorder", "RecordingChunk", "RecordingTap"]


_made_folders: set[Path] = set()  # touched by the writer thread only


class LazyRecorder:
    """A recorder whose file is created by the writer thread, at its first write.

    Creating hundreds of files a second on the event loop stalled the media tick;
    this keeps even the ``open`` off it.
    """

    __slots__ = ("_recorder", "path", "rate_hz", "started_at")

    def __init__(self, path: str | os.PathLike[str], rate_hz: int, started_at: float) -> None:
        self.path, self.rate_hz, self.started_at = path, rate_hz, started_at
        self._recorder: Recorder | None = None

    def _open(self) -> Recorder:
        if self._recorder is None:
            folder = Path(self.path).parent
            if folder not in _made_folders:  # one mkdir per day's folder, not per call
                folder.mkdir(parents=True, exist_ok=True)
                _made_folders.add(folder)
            try:
                recorder = open_recorder(
                    self.path, rate_hz=self.rate_hz, started_at=self.started_at
                )
            except FileNotFoundError:  # the folder was removed since (retention, an operator)
                folder.mkdir(parents=True, exist_ok=True)
                recorder = open_recorder(
                    self.path, rate_hz=self.rate_hz, started_at=self.started_at
                )
            self._recorder = recorder
        return self._recorder

    def write_interleaved(self, stereo_pcm: NDArray[np.int16]) -> None:
        """Append interleaved stereo samples (opens the file the first time)."""
        self._open().write_interleaved(stereo_pcm)

    def close(self) -> None:
        """Finish the file (created now if the call never wrote a sample)."""
        self._open().close()


@dataclass(frozen=True, slots=True)
class RecordingChunk:
    """Stereo samples to append to ``recorder``; ``final`` closes it afterwards."""

    recorder: Recorder | LazyRecorder
    stereo_pcm: NDArray[np.int16]  # (frames * samples * 2,) interleaved L R
    final: bool = False


class RecordingTap:
    """One stream's pending audio for its recorder."""

    __slots__ = ("_buffer", "_frames", "_limit", "chunk_frames", "recorder", "samples")

    def __init__(
        self,
        recorder: Recorder | LazyRecorder,
        samples_per_frame: int,
        chunk_frames: int = 25,
        phase: int = 0,
    ) -> None:
        """Collect ``chunk_frames`` ticks (25 x 20 ms = 500 ms) per chunk.

        ``phase`` shortens the first chunk by that many frames (modulo
        ``chunk_frames``): taps started on the same tick with different phases
        hand in their chunks on different ticks, so the writer thread gets a
        steady trickle instead of every call's chunk at once.
        """
        self.recorder = recorder
        self.samples = samples_per_frame
        self.chunk_frames = chunk_frames
        self._buffer = np.zeros((chunk_frames, samples_per_frame, 2), dtype=np.int16)
        self._frames = 0
        self._limit = chunk_frames - phase % chunk_frames

    def add(self, caller: NDArray[np.int16], heard: NDArray[np.int16]) -> RecordingChunk | None:
        """Append one tick; return a chunk when one is full."""
        frame = self._buffer[self._frames]
        frame[:, 0] = caller
        frame[:, 1] = heard
        self._frames += 1
        if self._frames < self._limit:
            return None
        self._limit = self.chunk_frames
        return self._take(final=False)

    def close(self) -> RecordingChunk:
        """The last chunk (possibly empty), which also closes the recorder."""
        return self._take(final=True)

    def _take(self, final: bool) -> RecordingChunk:
        pcm = self._buffer[: self._frames].reshape(-1).copy()
        self._frames = 0
        return RecordingChunk(self.recorder, pcm, final)


def write_chunks(chunks: list[RecordingChunk]) -> None:
    """Write chunks in order (runs on the shell's writer thread)."""
    for chunk in chunks:
        if chunk.stereo_pcm.size:
            chunk.recorder.write_interleaved(chunk.stereo_pcm)
        if chunk.final:
            chunk.recorder.close()
