"""Call recordings written as the call goes: stereo, caller left, agent/IVR right.

One recorder per call receives both directions' frames on every media tick,
and the file on disk stays playable throughout, so a crash or a ``kill -9``
loses at most ``flush_interval_ms`` of audio:

- ``WavRecorder``: 16-bit PCM. The RIFF header goes out first with sizes for an
  empty file; every ``flush_interval_ms`` of audio both size fields are patched
  in place and the file flushed to the kernel (optionally fsynced), so a
  reader sees every sample up to the last patch. ``close`` patches the final
  sizes.
- ``OggOpusRecorder``: Opus in Ogg through PyAV (libopus), 48 kHz stereo.
  Ogg pages are closed every half ``flush_interval_ms`` and handed to the
  file as soon as the muxer lets go of them (it keeps the newest one back).

Both directions are written in lockstep, a missing side as silence, so sample
``i`` of either channel is ``started_at + i / rate_hz`` on the caller's clock:
the same clock that stamps call events (DTMF, VAD, barge-in). Writes are plain
blocking file writes into the page cache; ``fsync=True`` adds a disk flush per
interval, which costs milliseconds.
"""

from __future__ import annotations

import abc
import os
import struct
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, Self, TypeAlias

import av
import numpy as np
from numpy.typing import NDArray

from media_core.resample import Resampler

__all__ = [
    "OPUS_RATE_HZ",
    "OggOpusRecorder",
    "Recorder",
    "RecordingFormat",
    "WavRecorder",
    "interleave_many",
    "open_recorder",
]

RecordingFormat: TypeAlias = Literal["wav", "ogg"]
OPUS_RATE_HZ = 48000
_OPUS_FRAME_SAMPLES = 960  # 20 ms at 48 kHz, the frame libopus is given
_CHANNELS = 2
_SAMPLE_BYTES = 2

# The canonical 44-byte header of a PCM WAVE file (RIFF chunk, "fmt " chunk of
# 16 bytes with WAVE_FORMAT_PCM = 1, then the "data" chunk header).
_WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
_RIFF_SIZE_OFFSET = 4
_DATA_SIZE_OFFSET = 40
_WAV_HEADER_BYTES = 44
_U32 = struct.Struct("<I")
# The RIFF size field counts everything after itself: 36 header bytes + data.
_WAV_MAX_DATA_BYTES = 0xFFFFFFFF - (_WAV_HEADER_BYTES - 8)


class Recorder(Protocol):
    """What the media tick needs of a recording, whatever its format."""

    @property
    def samples_written(self) -> int:
        """Samples per channel written so far, at the input rate."""

    @property
    def position_s(self) -> float:
        """Seconds of audio written so far."""

    def write(
        self, caller_pcm: NDArray[np.int16] | None, agent_pcm: NDArray[np.int16] | None
    ) -> None:
        """Append one tick of both directions."""

    def write_interleaved(self, stereo_pcm: NDArray[np.int16]) -> None:
        """Append one tick already interleaved (caller, agent, caller, ...)."""

    def close(self) -> None:
        """Finish the file."""


def interleave_many(
    caller: NDArray[np.int16],
    agent: NDArray[np.int16],
    out: NDArray[np.int16] | None = None,
) -> NDArray[np.int16]:
    """Interleave every call's two directions with one NumPy operation.

    Args:
        caller: ``(calls, samples)`` int16, the left channel of each call.
        agent: ``(calls, samples)`` int16, the right channel.
        out: optional ``(calls, 2 * samples)`` int16 array to fill (no allocation).

    Returns:
        ``(calls, 2 * samples)``: row ``i`` is call ``i``'s stereo frame, ready
        for ``write_interleaved``.

    Raises:
        ValueError: shapes or dtypes disagree.
    """
    for name, array in (("caller", caller), ("agent", agent)):
        if not isinstance(array, np.ndarray) or array.dtype != np.int16 or array.ndim != 2:
            raise ValueError(f"{name} must be a (calls, samples) int16 array")
    if caller.shape != agent.shape:
        raise ValueError(f"caller {caller.shape} and agent {agent.shape} frames differ in shape")
    calls, samples = caller.shape
    if out is None:
        out = np.empty((calls, 2 * samples), dtype=np.int16)
    elif out.shape != (calls, 2 * samples) or out.dtype != np.int16:
        raise ValueError(f"out must be a ({calls}, {2 * samples}) int16 array")
    pairs = out.reshape(calls, samples, 2)
    pairs[:, :, 0] = caller
    pairs[:, :, 1] = agent
    return out


def _stereo_frame(
    caller_pcm: NDArray[np.int16] | None, agent_pcm: NDArray[np.int16] | None
) -> NDArray[np.int16]:
    """Both directions as one ``(2, samples)`` array; a missing side is silence."""
    present = [pcm for pcm in (caller_pcm, agent_pcm) if pcm is not None]
    if not present:
        raise ValueError("a recorder write needs the caller's or the agent's samples")
    for pcm in present:
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("recorded samples must be 1-D int16 arrays")
    samples = len(present[0])
    if any(len(pcm) != samples for pcm in present):
        raise ValueError(
            f"caller and agent frames differ in length: {len(present[0])} and {len(present[1])}"
        )
    frame = np.zeros((_CHANNELS, samples), dtype=np.int16)
    if caller_pcm is not None:
        frame[0] = caller_pcm
    if agent_pcm is not None:
        frame[1] = agent_pcm
    return frame


def _check_interleaved(stereo_pcm: NDArray[np.int16]) -> None:
    if (
        not isinstance(stereo_pcm, np.ndarray)
        or stereo_pcm.dtype != np.int16
        or stereo_pcm.ndim != 1
        or len(stereo_pcm) % _CHANNELS
    ):
        raise ValueError("an interleaved frame is a 1-D int16 array of an even length")


class _Timeline(abc.ABC):
    """What both recorders share: where the written audio ends, and ``with``."""

    __slots__ = ()
    samples_written: int
    rate_hz: int
    started_at: float
    _file: object

    @property
    def position_s(self) -> float:
        """Seconds of audio written so far."""
        return self.samples_written / self.rate_hz

    @property
    def ends_at(self) -> float:
        """The caller's clock at the end of what is written: ``started_at + position_s``."""
        return self.started_at + self.position_s

    @property
    def closed(self) -> bool:
        """Whether ``close`` has run."""
        return self._file is None

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the file; closing twice does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class WavRecorder(_Timeline):
    """A stereo 16-bit PCM WAV file that stays valid while it grows."""

    __slots__ = (
        "_file",
        "_fsync",
        "_interval_samples",
        "_patched_samples",
        "flush_interval_ms",
        "path",
        "rate_hz",
        "samples_written",
        "started_at",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate_hz: int = 8000,
        *,
        started_at: float = 0.0,
        flush_interval_ms: int = 500,
        fsync: bool = False,
    ) -> None:
        """Create (or truncate) the file and write the header of an empty recording.

        Args:
            path: where to write.
            rate_hz: the sampling rate of both directions.
            started_at: the caller's clock (seconds) at the first sample.
            flush_interval_ms: how much audio may be lost to a crash: the sizes
                are patched and the file flushed this often (in audio time).
            fsync: also fsync at each patch (survives power loss; slower).

        Raises:
            ValueError: a non-positive rate or interval.
            OSError: the file cannot be created.
        """
        if rate_hz <= 0 or flush_interval_ms <= 0:
            raise ValueError("rate_hz and flush_interval_ms must be positive")
        self.path = Path(path)
        self.rate_hz = rate_hz
        self.started_at = started_at
        self.flush_interval_ms = flush_interval_ms
        self.samples_written = 0
        self._fsync = fsync
        self._interval_samples = max(1, rate_hz * flush_interval_ms // 1000)
        self._patched_samples = 0
        self._file: BinaryIO | None = open(self.path, "wb")  # closed by close()
        block_align = _CHANNELS * _SAMPLE_BYTES
        self._file.write(
            _WAV_HEADER.pack(
                b"RIFF",
                _WAV_HEADER_BYTES - 8,  # an empty recording until the first patch
                b"WAVE",
                b"fmt ",
                16,
                1,  # WAVE_FORMAT_PCM
                _CHANNELS,
                rate_hz,
                rate_hz * block_align,  # byte rate
                block_align,
                8 * _SAMPLE_BYTES,
                b"data",
                0,
            )
        )
        self._sync()

    def write(
        self, caller_pcm: NDArray[np.int16] | None, agent_pcm: NDArray[np.int16] | None
    ) -> None:
        """Append one tick of both directions (equal lengths; None is silence).

        Raises:
            ValueError: not 1-D int16, lengths differ, both missing, or the file
                would pass the 4 GiB WAV limit (37 hours at 8 kHz).
            OSError: closed, or the write failed.
        """
        self._append(_stereo_frame(caller_pcm, agent_pcm).T)

    def write_interleaved(self, stereo_pcm: NDArray[np.int16]) -> None:
        """Append one tick already interleaved, as ``interleave_many`` makes it.

        Raises:
            ValueError: not a 1-D int16 array of even length, or past the WAV limit.
            OSError: closed, or the write failed.
        """
        _check_interleaved(stereo_pcm)
        self._append(stereo_pcm.reshape(-1, _CHANNELS))

    def close(self) -> None:
        """Patch the final sizes and close the file. Closing twice does nothing."""
        if self._file is None:
            return
        try:
            self._patch()
        finally:
            self._file.close()
            self._file = None

    def _append(self, frames: NDArray[np.int16]) -> None:
        """Write ``(samples, 2)`` frames; patch the header when an interval is full."""
        file = self._open_file()
        samples = frames.shape[0]
        if (self.samples_written + samples) * _CHANNELS * _SAMPLE_BYTES > _WAV_MAX_DATA_BYTES:
            raise ValueError(f"{self.path} has reached the 4 GiB limit of a WAV file")
        # WAV samples are little-endian whatever the host is.
        file.write(np.ascontiguousarray(frames, dtype="<i2").tobytes())
        self.samples_written += samples
        if self.samples_written - self._patched_samples >= self._interval_samples:
            self._patch()

    def _patch(self) -> None:
        file = self._open_file()
        data_bytes = self.samples_written * _CHANNELS * _SAMPLE_BYTES
        end = file.tell()
        file.seek(_RIFF_SIZE_OFFSET)
        file.write(_U32.pack(_WAV_HEADER_BYTES - 8 + data_bytes))
        file.seek(_DATA_SIZE_OFFSET)
        file.write(_U32.pack(data_bytes))
        file.seek(end)
        self._patched_samples = self.samples_written
        self._sync()

    def _sync(self) -> None:
        file = self._open_file()
        # To the kernel: a killed process loses nothing that was flushed.
        file.flush()
        if self._fsync:
            os.fsync(file.fileno())

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise OSError(f"recording {self.path} is closed")
        return self._file


class OggOpusRecorder(_Timeline):
    """A stereo Ogg Opus file (48 kHz), encoded and paged out as the call goes.

    The headers are written at once; audio follows page by page. A recording
    closed before any audio is only headers, which FFmpeg declines to open.
    """

    __slots__ = (
        "_container",
        "_file",
        "_fsync",
        "_interval_samples",
        "_next_pts",
        "_pending",
        "_resampler",
        "_skip",
        "_stream",
        "_synced_samples",
        "bitrate_bps",
        "flush_interval_ms",
        "path",
        "rate_hz",
        "samples_written",
        "started_at",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate_hz: int = 8000,
        *,
        started_at: float = 0.0,
        bitrate_bps: int = 32000,
        flush_interval_ms: int = 500,
        fsync: bool = False,
    ) -> None:
        """Create (or truncate) the file and start the encoder.

        Args:
            path: where to write.
            rate_hz: the sampling rate of the frames written (resampled to 48 kHz).
            started_at: the caller's clock (seconds) at the first sample.
            bitrate_bps: the Opus bitrate for both channels together.
            flush_interval_ms: the most a crash may lose (Ogg pages are half as long).
            fsync: also fsync every ``flush_interval_ms`` of audio.

        Raises:
            ValueError: a non-positive rate, bitrate or interval.
            OSError: the file cannot be created.
        """
        if rate_hz <= 0 or bitrate_bps <= 0 or flush_interval_ms <= 0:
            raise ValueError("rate_hz, bitrate_bps and flush_interval_ms must be positive")
        self.path = Path(path)
        self.rate_hz = rate_hz
        self.started_at = started_at
        self.bitrate_bps = bitrate_bps
        self.flush_interval_ms = flush_interval_ms
        self.samples_written = 0
        self._fsync = fsync
        self._interval_samples = max(1, rate_hz * flush_interval_ms // 1000)
        self._synced_samples = 0
        self._resampler = Resampler(rate_hz, OPUS_RATE_HZ, channels=_CHANNELS)
        # Drop the resampler's delay so that 48 kHz sample 6 i is 8 kHz sample i.
        self._skip = self._resampler.delay_samples
        self._pending = np.zeros((_CHANNELS, 0), dtype=np.int16)
        self._next_pts = 0
        # Our own unbuffered handle: PyAV writes through it, and fsync can use it.
        self._file: BinaryIO | None = open(self.path, "wb", buffering=0)  # closed by close()
        try:
            self._container = av.open(
                self._file,
                "w",
                format="ogg",
                options={
                    # Hand each completed page to the file at once, not when
                    # libavformat's 32 KiB buffer fills.
                    "flush_packets": "1",
                    # libavformat's Ogg muxer holds one finished page back (to
                    # flag the last one end-of-stream), so a kill loses up to
                    # two pages: pages of half the interval keep to it.
                    "page_duration": str(flush_interval_ms * 1000 // 2),  # microseconds
                },
            )
            self._stream = self._container.add_stream(
                "libopus",
                rate=OPUS_RATE_HZ,
                layout="stereo",
                # Tuned for speech. Unconstrained VBR was measured at twice the
                # asked bitrate on steady tones; constrained stays within 5 %.
                options={"application": "voip", "vbr": "constrained"},
            )
            self._stream.bit_rate = bitrate_bps
            # Write the Ogg Opus headers now (PyAV would wait for the first
            # packet), so even a call that ends at once leaves a valid file.
            self._container.start_encoding()
        except Exception:
            self._file.close()
            self._file = None
            raise

    def write(
        self, caller_pcm: NDArray[np.int16] | None, agent_pcm: NDArray[np.int16] | None
    ) -> None:
        """Append one tick of both directions (equal lengths; None is silence).

        Raises:
            ValueError: not 1-D int16, lengths differ, or both missing.
            OSError: closed, or the write failed.
        """
        self._append(_stereo_frame(caller_pcm, agent_pcm))

    def write_interleaved(self, stereo_pcm: NDArray[np.int16]) -> None:
        """Append one tick already interleaved, as ``interleave_many`` makes it.

        Raises:
            ValueError: not a 1-D int16 array of even length.
            OSError: closed, or the write failed.
        """
        _check_interleaved(stereo_pcm)
        self._append(stereo_pcm.reshape(-1, _CHANNELS).T)

    def close(self) -> None:
        """Encode what is left, end the stream and close the file. Closing twice does nothing."""
        if self._file is None:
            return
        try:
            # Push zeros through the resampler until its delayed tail is out,
            # so the file is exactly as long as what was written.
            wanted = self.samples_written * OPUS_RATE_HZ // self.rate_hz
            owed = wanted - (self._next_pts + self._pending.shape[1]) + self._skip
            if owed > 0:
                zeros_in = -(-owed * self.rate_hz // OPUS_RATE_HZ) + 1
                self._queue(
                    self._resampler.process(np.zeros((_CHANNELS, zeros_in), dtype=np.int16))
                )
            self._pending = self._pending[:, : max(0, wanted - self._next_pts)]
            self._encode(final=True)
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            if self._fsync:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._file = None

    def _append(self, frame: NDArray[np.int16]) -> None:
        if self._file is None:
            raise OSError(f"recording {self.path} is closed")
        self._queue(self._resampler.process(frame))
        self.samples_written += frame.shape[1]
        self._encode(final=False)
        if self._fsync and self.samples_written - self._synced_samples >= self._interval_samples:
            os.fsync(self._file.fileno())
            self._synced_samples = self.samples_written

    def _queue(self, upsampled: NDArray[np.int16]) -> None:
        if self._skip:
            dropped = min(self._skip, upsampled.shape[1])
            upsampled = upsampled[:, dropped:]
            self._skip -= dropped
        self._pending = np.concatenate((self._pending, upsampled), axis=1)

    def _encode(self, final: bool) -> None:
        pending = self._pending
        start = 0
        while pending.shape[1] - start >= _OPUS_FRAME_SAMPLES or (
            final and pending.shape[1] > start
        ):
            chunk = pending[:, start : start + _OPUS_FRAME_SAMPLES]
            start += chunk.shape[1]
            # libopus takes packed s16: one row of L R L R ...
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk.T).reshape(1, -1), format="s16", layout="stereo"
            )
            frame.sample_rate = OPUS_RATE_HZ
            frame.pts = self._next_pts
            self._next_pts += chunk.shape[1]
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        self._pending = pending[:, start:]


def open_recorder(
    path: str | os.PathLike[str],
    fmt: RecordingFormat | None = None,
    rate_hz: int = 8000,
    *,
    started_at: float = 0.0,
    flush_interval_ms: int = 500,
    fsync: bool = False,
) -> WavRecorder | OggOpusRecorder:
    """Start a recording in the format asked for, or the one the file name says.

    Args:
        path: where to write.
        fmt: ``"wav"`` or ``"ogg"`` (Opus); None picks by suffix (``.wav``;
            ``.ogg`` or ``.opus``).
        rate_hz: the sampling rate of the frames written.
        started_at: the caller's clock (seconds) at the first sample.
        flush_interval_ms: the most audio a crash may lose.
        fsync: fsync every interval as well.

    Returns:
        A ``WavRecorder`` or an ``OggOpusRecorder`` (both are ``Recorder``).

    Raises:
        ValueError: an unknown format or suffix.
    """
    if fmt is None:
        suffix = Path(path).suffix.lower()
        formats: dict[str, RecordingFormat] = {".wav": "wav", ".ogg": "ogg", ".opus": "ogg"}
        if suffix not in formats:
            raise ValueError(f"cannot tell a recording format from {str(path)!r}; pass fmt")
        fmt = formats[suffix]
    if fmt == "wav":
        return WavRecorder(
            path, rate_hz, started_at=started_at, flush_interval_ms=flush_interval_ms, fsync=fsync
        )
    if fmt == "ogg":
        return OggOpusRecorder(
            path, rate_hz, started_at=started_at, flush_interval_ms=flush_interval_ms, fsync=fsync
        )
    raise ValueError(f"recording format must be 'wav' or 'ogg', not {fmt!r}")
