"""Where the talking is in one channel of a recording (sans-IO).

``speech_spans`` runs ``media_core.vad.VoiceActivityDetector`` over a channel,
20 ms at a time, and turns its ``speech_start``/``speech_end`` events into
sample ranges worth decoding:

- a turn's range is widened by ``pad_before_ms`` (the VAD stamps the first
  voiced frame, and soft onsets such as "f" or "h" come before it) and
  ``pad_after_ms`` (trailing consonants), and ranges that then touch are merged;
- a range longer than ``max_span_ms`` is cut at its quietest 20 ms frame in its
  last third, repeatedly, so a decoder never holds minutes of audio and a
  cut seldom falls inside a word.

The other channel may be given as an echo reference (``VoiceActivityDetector``'s
echo guard, ITU-T G.168's 6 dB): our prompt leaking back from the caller's
phone then does not read as the caller speaking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from media_core.vad import VoiceActivityDetector, process_many

__all__ = ["FRAME_MS", "SpanOptions", "speech_spans"]

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class SpanOptions:
    """How a channel is cut into spans to decode."""

    aggressiveness: int = 2
    start_ms: int = 60
    # Longer than the IVR's endpointing: pauses inside a sentence stay inside its span.
    hangover_ms: int = 500
    pad_before_ms: int = 200
    pad_after_ms: int = 250
    max_span_ms: int = 25_000


def speech_spans(
    pcm: NDArray[np.int16],
    rate_hz: int = 8000,
    *,
    reference: NDArray[np.int16] | None = None,
    options: SpanOptions | None = None,
) -> list[tuple[int, int]]:
    """The ``[start, end)`` sample ranges of ``pcm`` that hold speech, in order.

    Args:
        pcm: one channel, 1-D int16.
        rate_hz: its rate (one the WebRTC VAD takes).
        reference: the other channel (same length), for the echo guard; None: none.
        options: VAD smoothing, padding and the longest span.

    Raises:
        ValueError: not 1-D int16, or a reference of another length.
    """
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError("a channel is a 1-D int16 array")
    if reference is not None and reference.shape != pcm.shape:
        raise ValueError(f"the reference has {reference.shape}, the channel {pcm.shape}")
    opts = options or SpanOptions()
    detector = VoiceActivityDetector(
        rate_hz, FRAME_MS, opts.aggressiveness, opts.start_ms, opts.hangover_ms
    )
    frame = rate_hz * FRAME_MS // 1000
    whole = len(pcm) // frame
    frames = pcm[: whole * frame].reshape(whole, frame)
    refs = reference[: whole * frame].reshape(whole, frame) if reference is not None else None
    turns: list[tuple[float, float]] = []
    opened: float | None = None
    for index in range(whole):
        ref = refs[index : index + 1] if refs is not None else None
        at_s = index * FRAME_MS / 1000
        for _, event in process_many([detector], frames[index : index + 1], at_s, ref):
            if event.kind == "speech_start":
                opened = event.timestamp_s
            elif opened is not None:
                turns.append((opened, event.timestamp_s))
                opened = None
    for event in detector.finish():
        if opened is not None:
            turns.append((opened, event.timestamp_s))
    spans = _padded(turns, rate_hz, len(pcm), opts)
    limit = rate_hz * opts.max_span_ms // 1000
    return [piece for span in spans for piece in _cut(pcm, span, limit, frame)]


def _padded(
    turns: list[tuple[float, float]], rate_hz: int, length: int, opts: SpanOptions
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    before, after = rate_hz * opts.pad_before_ms // 1000, rate_hz * opts.pad_after_ms // 1000
    for start_s, end_s in turns:
        start = max(0, round(start_s * rate_hz) - before)
        end = min(length, round(end_s * rate_hz) + after)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        elif end > start:
            spans.append((start, end))
    return spans


def _cut(
    pcm: NDArray[np.int16], span: tuple[int, int], limit: int, frame: int
) -> list[tuple[int, int]]:
    """``span`` in pieces of at most ``limit`` samples, cut at quiet frames."""
    start, end = span
    pieces = []
    while end - start > limit:
        low = start + (2 * limit) // 3  # search the last third of the allowed length
        window = pcm[low : start + limit].astype(np.float64)
        count = len(window) // frame
        if count == 0:
            cut = start + limit
        else:
            blocks = window[: count * frame].reshape(count, frame)
            cut = low + int(np.argmin(np.einsum("ij,ij->i", blocks, blocks))) * frame + frame // 2
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
