"""Reading a call's recording back: its facts (format, length, size) and its two channels.

The media core writes stereo files, caller on the left and what the caller
heard on the right (``media_core.recording``): 16-bit PCM WAV at the call rate
(8 kHz), or Ogg Opus at 48 kHz. ``probe`` reads only what it needs (a WAV's
header, an Ogg's stream duration); ``read_stereo`` decodes the whole file to
``(2, samples)`` int16 at 8 kHz, the rate the recognizers take. Blocking file
I/O: call from worker threads or processes.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from media_core.resample import resample

__all__ = ["FORMATS", "RATE_HZ", "RecordingInfo", "format_of", "probe", "read_stereo"]

RATE_HZ = 8000  # what transcription works at (the call rate)
FORMATS = {".wav": "wav", ".ogg": "ogg", ".opus": "ogg"}


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What the store keeps about a recording file."""

    fmt: str  # "wav" | "ogg"
    duration_s: float
    size_bytes: int


def format_of(path: str | os.PathLike[str]) -> str:
    """``wav`` or ``ogg``, from the file name.

    Raises:
        ValueError: a suffix that is neither.
    """
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{os.fspath(path)!r} is not a .wav or .ogg recording")
    return fmt


def probe(path: str | os.PathLike[str]) -> RecordingInfo:
    """Format, duration and size of a closed recording.

    A WAV's duration comes from its data size (the recorder patched it at close);
    an Ogg's from FFmpeg's reading of the last page's granule position.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a recording this module reads.
    """
    fmt = format_of(path)
    size = os.stat(path).st_size
    if fmt == "wav":
        try:
            with wave.open(os.fspath(path)) as reader:
                duration_s = reader.getnframes() / reader.getframerate()
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"{os.fspath(path)}: not a PCM WAV file: {exc}") from None
        return RecordingInfo(fmt, duration_s, size)
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                duration_s = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration_s = container.duration / av.time_base
            else:  # no length in the headers: count the samples
                duration_s = sum(f.samples for f in container.decode(stream)) / stream.rate
    except (av.FFmpegError, IndexError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{os.fspath(path)}: not an Ogg audio file: {exc}") from None
    return RecordingInfo(fmt, duration_s, size)


def read_stereo(path: str | os.PathLike[str]) -> NDArray[np.int16]:
    """The recording as ``(2, samples)`` int16 at 8 kHz: row 0 the caller, row 1 the agent.

    A mono file (not one of ours) is read as both rows.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file this module cannot decode.
    """
    if format_of(path) == "wav":
        try:
            with wave.open(os.fspath(path)) as reader:
                channels, width = reader.getnchannels(), reader.getsampwidth()
                rate_hz = reader.getframerate()
                raw = reader.readframes(reader.getnframes())
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"{os.fspath(path)}: not a PCM WAV file: {exc}") from None
        if width != 2:
            raise ValueError(f"{os.fspath(path)}: {8 * width}-bit samples; 16-bit expected")
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int16).reshape(-1, channels).T
    else:
        samples, rate_hz = _decode_av(path)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    samples = np.ascontiguousarray(samples[:2])
    if rate_hz != RATE_HZ:
        samples = resample(samples, rate_hz, RATE_HZ)
    return samples


def _decode_av(path: str | os.PathLike[str]) -> tuple[NDArray[np.int16], int]:
    """Every sample of the first audio stream as ``(channels, samples)`` int16, and its rate."""
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{os.fspath(path)} has no audio stream")
            stream = container.streams.audio[0]
            rate_hz = stream.rate
            layout = "stereo" if stream.channels >= 2 else "mono"
            # Planar s16 at the native rate: PyAV converts the sample format only.
            convert = av.AudioResampler(format="s16p", layout=layout, rate=rate_hz)
            blocks: list[NDArray[Any]] = []
            for frame in container.decode(stream):
                blocks.extend(f.to_ndarray() for f in convert.resample(frame))
            blocks.extend(f.to_ndarray() for f in convert.resample(None))
    except av.FFmpegError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"cannot decode {os.fspath(path)}: {exc}") from None
    rows = 2 if layout == "stereo" else 1
    if not blocks:
        return np.zeros((rows, 0), dtype=np.int16), rate_hz
    return np.concatenate(blocks, axis=1).astype(np.int16), rate_hz
