"""Voice activity detection: WebRTC's VAD per frame, smoothed into speech events (sans-IO).

``webrtcvad`` (from the ``webrtcvad-wheels`` package) classifies one 10, 20 or
30 ms frame at a time. Its verdicts flicker, so ``VoiceActivityDetector``
turns them into two events a turn: ``speech_start`` once ``start_ms`` of
consecutive voiced frames have been seen (stamped with the first of them) and
``speech_end`` once ``hangover_ms`` of unvoiced frames have followed (stamped
with the end of the last voiced frame). Callers pass each frame's timestamp;
there is no clock here.

Two guards keep noise from reading as speech (both measured on the fixtures
under ``tests/data/audio``):

- The WebRTC VAD has a hangover of its own, and hides it: after a voiced frame
  over background noise it keeps answering "voiced" for 2-8 more frames
  (3 at 20 ms frames in mode 2), so a 10 ms click in line noise would come out
  as 80 ms of speech and clear ``start_ms``. Its noise model also starts from
  a fixed prior and calls the first 80-100 ms of any steady noise voiced. So a
  frame counts as voiced only if it is also ``min_snr_db`` above the noise
  floor: the quietest frame of the last ``floor_window_ms`` (minimum
  statistics). Hangover frames sit at the floor and drop out, which also keeps
  ``speech_end`` at the end of the talking rather than of the VAD's hangover.
- Frames quieter than ``min_level_dbfs`` (RMS, relative to full scale) are
  never voiced: line hiss and dither are not anyone talking.

A step up in background noise (say from -75 to -45 dBFS) still reads as
speech until the VAD's model and the floor window have caught up, about
``floor_window_ms``.

A third guard keeps our own prompt, leaking back from the caller's phone
(line or acoustic echo), from reading as the caller barging in. When the frames
the leg was sent are given as a reference (``process_many(..., reference=)``),
a frame counts as voiced only if it is louder than the loudest reference frame
of the last ``echo_tail_ms`` (the longest echo path allowed for) minus
``echo_return_loss_db``. ITU-T G.168 assumes a hybrid returns its echo at least
6 dB down, so a caller talking at the prompt's level clears the guard and an
echo does not.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import webrtcvad  # type: ignore[import-untyped]
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FRAME_MS_ALLOWED",
    "RATES_HZ_ALLOWED",
    "VadEvent",
    "VadEventKind",
    "VoiceActivityDetector",
    "process_many",
]

VadEventKind: TypeAlias = Literal["speech_start", "speech_end"]
RATES_HZ_ALLOWED = (8000, 16000, 32000, 48000)  # what the WebRTC VAD accepts
FRAME_MS_ALLOWED = (10, 20, 30)
_FULL_SCALE = 32768.0
# Digital silence would be -inf dB: hold the scale at a finite bottom.
_BOTTOM_DBFS = -120.0


@dataclass(frozen=True, slots=True)
class VadEvent:
    """Speech started or ended at ``timestamp_s`` (the caller's clock, seconds)."""

    kind: VadEventKind
    timestamp_s: float


class VoiceActivityDetector:
    """One call direction's speech detector, fed one frame at a time."""

    __slots__ = (
        "_echo_frames",
        "_echo_maxima",
        "_end_frames",
        "_floor_frames",
        "_frames_seen",
        "_last_voiced_end_s",
        "_minima",
        "_run_start_s",
        "_start_frames",
        "_unvoiced_run",
        "_vad",
        "_voiced_run",
        "aggressiveness",
        "echo_return_loss_db",
        "echo_tail_ms",
        "floor_window_ms",
        "frame_ms",
        "frame_samples",
        "hangover_ms",
        "is_speech",
        "min_level_dbfs",
        "min_snr_db",
        "rate_hz",
        "start_ms",
    )

    def __init__(
        self,
        rate_hz: int = 8000,
        frame_ms: int = 20,
        aggressiveness: int = 2,
        start_ms: int = 60,
        hangover_ms: int = 300,
        *,
        min_level_dbfs: float = -55.0,
        min_snr_db: float = 10.0,
        floor_window_ms: int = 1500,
        echo_return_loss_db: float = 6.0,
        echo_tail_ms: int = 300,
    ) -> None:
        """Create a detector in the silent state.

        Args:
            rate_hz: 8000, 16000, 32000 or 48000.
            frame_ms: 10, 20 or 30; every frame passed must be this long.
            aggressiveness: 0 (keeps the most speech) to 3 (rejects the most noise).
            start_ms: voiced audio needed before ``speech_start``; rounded up to
                whole frames, at least one.
            hangover_ms: unvoiced audio needed before ``speech_end``; rounded
                up to whole frames, at least one.
            min_level_dbfs: frames below this RMS level are never voiced.
            min_snr_db: frames less than this above the noise floor are never
                voiced; 0 turns the check off.
            floor_window_ms: how far back the noise floor looks; longer than
                the longest stretch of speech without a pause.
            echo_return_loss_db: how far below the reference (what we sent) an
                echo is assumed to come back; frames quieter than the reference
                minus this are never voiced.
            echo_tail_ms: how far back the echo guard looks at the reference.

        Raises:
            ValueError: a parameter the WebRTC VAD does not support, or out of range.
        """
        if rate_hz not in RATES_HZ_ALLOWED:
            raise ValueError(
                f"the WebRTC VAD runs at {', '.join(map(str, RATES_HZ_ALLOWED))} Hz, "
                f"not {rate_hz} Hz"
            )
        if frame_ms not in FRAME_MS_ALLOWED:
            raise ValueError(f"the WebRTC VAD takes 10, 20 or 30 ms frames, not {frame_ms} ms")
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0, 1, 2 or 3, not {aggressiveness}")
        for name, value in (("start_ms", start_ms), ("hangover_ms", hangover_ms)):
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {value}")
        if floor_window_ms < frame_ms:
            raise ValueError(f"floor_window_ms must be at least one frame, not {floor_window_ms}")
        if echo_tail_ms < frame_ms:
            raise ValueError(f"echo_tail_ms must be at least one frame, not {echo_tail_ms}")
        self.rate_hz = rate_hz
        self.frame_ms = frame_ms
        self.frame_samples = rate_hz * frame_ms // 1000
        self.aggressiveness = aggressiveness
        self.start_ms = start_ms
        self.hangover_ms = hangover_ms
        self.min_level_dbfs = min_level_dbfs
        self.min_snr_db = min_snr_db
        self.floor_window_ms = floor_window_ms
        self._start_frames = max(1, math.ceil(start_ms / frame_ms))
        self._end_frames = max(1, math.ceil(hangover_ms / frame_ms))
        self._floor_frames = floor_window_ms // frame_ms
        self.echo_return_loss_db = echo_return_loss_db
        self.echo_tail_ms = echo_tail_ms
        self._echo_frames = max(1, echo_tail_ms // frame_ms)
        # (frame index, level): decreasing levels, so the first is the tail's maximum.
        self._echo_maxima: deque[tuple[int, float]] = deque()
        self._vad = webrtcvad.Vad(aggressiveness)
        self.is_speech = False
        # (frame index, level): increasing levels, so the first is the window's minimum.
        self._minima: deque[tuple[int, float]] = deque()
        self._frames_seen = 0
        self._voiced_run = 0
        self._unvoiced_run = 0
        self._run_start_s = 0.0
        self._last_voiced_end_s = 0.0

    def tune(self, *, start_ms: int | None = None, hangover_ms: int | None = None) -> None:
        """Change the start smoothing or the hangover mid-call (a flow's endpointing).

        Raises:
            ValueError: a negative duration.
        """
        for name, value in (("start_ms", start_ms), ("hangover_ms", hangover_ms)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, not {value}")
        if start_ms is not None:
            self.start_ms = start_ms
            self._start_frames = max(1, math.ceil(start_ms / self.frame_ms))
        if hangover_ms is not None:
            self.hangover_ms = hangover_ms
            self._end_frames = max(1, math.ceil(hangover_ms / self.frame_ms))

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The quietest frame level of the floor window; None before the first frame."""
        return self._minima[0][1] if self._minima else None

    def process(self, frame_pcm: NDArray[np.int16], timestamp_s: float) -> list[VadEvent]:
        """Classify one frame and advance the smoothing.

        Args:
            frame_pcm: exactly ``frame_samples`` int16 samples.
            timestamp_s: when the frame's first sample was captured.

        Returns:
            The events this frame completes: none, or one.

        Raises:
            ValueError: not a 1-D int16 array of ``frame_samples`` samples.
        """
        if (
            not isinstance(frame_pcm, np.ndarray)
            or frame_pcm.dtype != np.int16
            or frame_pcm.shape != (self.frame_samples,)
        ):
            raise ValueError(
                f"a VAD frame is {self.frame_samples} int16 samples "
                f"({self.frame_ms} ms at {self.rate_hz} Hz), not {_describe(frame_pcm)}"
            )
        frame = np.ascontiguousarray(frame_pcm)
        level_db = float(_levels_dbfs(frame[None, :])[0])
        event = self._step(self._classify(frame.tobytes(), level_db), timestamp_s)
        return [] if event is None else [event]

    def finish(self) -> list[VadEvent]:
        """End the stream: close a turn still open (the call hung up mid-sentence).

        Returns:
            ``speech_end`` at the end of the last voiced frame, or nothing.
        """
        if not self.is_speech:
            return []
        self.is_speech = False
        self._voiced_run = self._unvoiced_run = 0
        return [VadEvent("speech_end", self._last_voiced_end_s)]

    def _classify(
        self, frame: bytes | memoryview, level_db: float, reference_db: float = _BOTTOM_DBFS
    ) -> bool:
        # Always feed the VAD, even when the level decides: its model adapts.
        voiced = bool(self._vad.is_speech(frame, self.rate_hz))
        floor = self.noise_floor_dbfs
        clear = self.min_snr_db <= 0 or (floor is not None and level_db - floor >= self.min_snr_db)
        echo_db = self._update_echo(reference_db)
        self._update_floor(level_db)
        above_echo = level_db > echo_db - self.echo_return_loss_db
        return voiced and clear and above_echo and level_db >= self.min_level_dbfs

    def _update_echo(self, reference_db: float) -> float:
        # Sliding-window maximum, as the floor's minimum below; frame index is
        # read before ``_update_floor`` advances it.
        index = self._frames_seen
        maxima = self._echo_maxima
        while maxima and maxima[-1][1] <= reference_db:
            maxima.pop()
        maxima.append((index, reference_db))
        while maxima[0][0] <= index - self._echo_frames:
            maxima.popleft()
        return maxima[0][1]

    def _update_floor(self, level_db: float) -> None:
        # Sliding-window minimum in O(1) amortised: drop louder frames that
        # can never be the minimum again, then frames that left the window.
        index = self._frames_seen
        self._frames_seen += 1
        minima = self._minima
        while minima and minima[-1][1] >= level_db:
            minima.pop()
        minima.append((index, level_db))
        while minima[0][0] <= index - self._floor_frames:
            minima.popleft()

    def _step(self, voiced: bool, timestamp_s: float) -> VadEvent | None:
        if voiced:
            if self._voiced_run == 0:
                self._run_start_s = timestamp_s
            self._voiced_run += 1
            self._unvoiced_run = 0
            self._last_voiced_end_s = timestamp_s + self.frame_ms / 1000.0
            if not self.is_speech and self._voiced_run >= self._start_frames:
                self.is_speech = True
                return VadEvent("speech_start", self._run_start_s)
            return None
        self._voiced_run = 0
        if self.is_speech:
            self._unvoiced_run += 1
            if self._unvoiced_run >= self._end_frames:
                self.is_speech = False
                self._unvoiced_run = 0
                return VadEvent("speech_end", self._last_voiced_end_s)
        return None


def _levels_dbfs(frames: NDArray[np.int16]) -> NDArray[np.float64]:
    """Each row's RMS level in dB relative to full scale, at least ``_BOTTOM_DBFS``."""
    samples = frames.astype(np.float64)
    mean_squares = np.einsum("ij,ij->i", samples, samples) / max(frames.shape[1], 1)
    bottom = _FULL_SCALE**2 * 10.0 ** (_BOTTOM_DBFS / 10.0)
    levels: NDArray[np.float64] = 10.0 * np.log10(np.maximum(mean_squares, bottom) / _FULL_SCALE**2)
    return levels


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return type(value).__name__


def process_many(
    detectors: Sequence[VoiceActivityDetector],
    frames: NDArray[np.int16],
    timestamps_s: float | ArrayLike,
    reference: NDArray[np.int16] | None = None,
) -> list[tuple[int, VadEvent]]:
    """Run one frame of every call through its detector, for the media tick.

    The levels of all frames are computed in one NumPy pass and the frames are
    viewed as bytes without a copy; the WebRTC VAD itself is then called per row.

    Args:
        detectors: one per row of ``frames``, all taking frames of this size.
        frames: ``(calls, frame_samples)`` int16.
        timestamps_s: the frames' capture time: one for all rows, or one per row.
        reference: what each call was last sent, same shape as ``frames``: the
            echo guard's reference (see the module docstring); None for none.

    Returns:
        ``(row, event)`` for each event, in row order. Most ticks return nothing.

    Raises:
        ValueError: shapes disagree or a detector takes another frame size.
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.int16 or frames.ndim != 2:
        raise ValueError(f"frames must be a (calls, samples) int16 array, not {_describe(frames)}")
    calls, samples = frames.shape
    if calls != len(detectors):
        raise ValueError(f"{calls} frames for {len(detectors)} detectors")
    try:
        stamps = np.broadcast_to(np.asarray(timestamps_s, dtype=np.float64), (calls,)).tolist()
    except ValueError:
        raise ValueError(f"need one timestamp or {calls}, not {timestamps_s!r}") from None
    for detector in detectors:
        if detector.frame_samples != samples:
            raise ValueError(
                f"a detector takes {detector.frame_samples}-sample frames, these have {samples}"
            )
    contiguous = np.ascontiguousarray(frames)
    levels_db = _levels_dbfs(contiguous).tolist()
    if reference is not None:
        if reference.shape != frames.shape or reference.dtype != np.int16:
            raise ValueError(
                f"the reference must match the frames' shape {frames.shape}, "
                f"not {_describe(reference)}"
            )
        reference_db = _levels_dbfs(np.ascontiguousarray(reference)).tolist()
    else:
        reference_db = [_BOTTOM_DBFS] * calls
    raw = memoryview(contiguous.data).cast("B")  # the VAD wants bytes: 2 per sample
    size = 2 * samples
    events: list[tuple[int, VadEvent]] = []
    for row, detector in enumerate(detectors):
        voiced = detector._classify(
            raw[row * size : (row + 1) * size], levels_db[row], reference_db[row]
        )
        event = detector._step(voiced, stamps[row])
        if event is not None:
            events.append((row, event))
    return events
