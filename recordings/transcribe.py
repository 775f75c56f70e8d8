"""Offline transcription of one call recording into timed, per-channel segments.

The chain for one file: ``audio_file.read_stereo`` (8 kHz, row 0 the caller,
row 1 what the caller heard) -> per channel ``utterances.speech_spans`` (the
WebRTC VAD, the other channel as echo reference) -> one ``asr`` decoder per
channel fed each span in half-second chunks -> each final hypothesis becomes a
``conversations.SegmentInput`` whose words are ``WordInput``s timed in the
recording (span start + the word's time in its utterance).

Channels: the left one is the caller (channel ``caller``, speaker
``customer``); the right one is what the caller heard, the IVR's prompts and
the agent (channel ``agent``, speaker ``agent``).

The recognizer is the configured one, loaded once per ``Transcriber`` (so once
per worker process): pocketsphinx decodes with a language model built from a
``RecognitionContext`` of the flow's phrases plus a share of everyday English
(as the IVR's open question does; the agent side also gets the prompts' own
sentences); vosk decodes with its model's own LM (a site points
``recordings.model_path`` at a large model). vosk's endpointer may close an
utterance inside a span; the decoder then starts again where it stopped.

``Transcription.cpu_s`` is this process's CPU time for the file (decoding,
VAD, reading), so a benchmark can report audio minutes per CPU minute.
Blocking and CPU-bound: run it in a worker process (``transcribe_pool``),
never on the event loop.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from asr.engine import Decoder, Engine, RecognitionContext
from asr.results import Hypothesis
from asr.worker_loop import load_engine
from conversations import SegmentInput, WordInput
from recordings.audio_file import RATE_HZ, read_stereo
from recordings.utterances import SpanOptions, speech_spans

__all__ = [
    "CHANNELS",
    "GENERAL_ENGLISH",
    "Transcriber",
    "TranscriberSettings",
    "Transcription",
]

log = logging.getLogger(__name__)

# (channel, speaker, row of the stereo recording)
CHANNELS = (("caller", "customer", 0), ("agent", "agent", 1))
# The IVR's open question admits this share of everyday English beyond its phrases
# (ivr.session.OPEN_QUESTION_GENERAL_ENGLISH): a whole call is an open question.
GENERAL_ENGLISH = 0.2
_CHUNK_SAMPLES = RATE_HZ // 2  # 500 ms per accept: fewer partials to compute than 80 ms


@dataclass(frozen=True, slots=True)
class TranscriberSettings:
    """What a transcription worker needs to load and decode (picklable, for ``spawn``)."""

    backend: str = "pocketsphinx"
    model_path: str | None = None  # vosk: the model directory; None: the backend's default
    caller_phrases: tuple[str, ...] = ()  # the flow's intent phrases
    agent_phrases: tuple[str, ...] = ()  # ... and its prompts' sentences
    general_english: float = GENERAL_ENGLISH
    spans: SpanOptions = field(default_factory=SpanOptions)


@dataclass(frozen=True, slots=True)
class Transcription:
    """One recording's segments, both channels in time order, and what it cost."""

    segments: tuple[SegmentInput, ...]
    audio_s: float
    cpu_s: float


class Transcriber:
    """A loaded recognizer that transcribes recordings one at a time."""

    def __init__(self, settings: TranscriberSettings, engine: Engine | None = None) -> None:
        """Load the engine (slow: seconds; once per process).

        Raises:
            ValueError: an unknown backend.
            asr.models.ModelNotFoundError: vosk without a model.
        """
        self.settings = settings
        self.engine = engine or load_engine(settings.backend, settings.model_path)
        self._contexts = {
            channel: self._context(channel, phrases)
            for channel, phrases in (
                ("caller", settings.caller_phrases),
                ("agent", settings.agent_phrases or settings.caller_phrases),
            )
        }

    def _context(self, channel: str, phrases: tuple[str, ...]) -> RecognitionContext:
        if self.engine.name != "pocketsphinx" or not phrases:
            # vosk ignores phrases (its model's LM decides); no phrases: general en-us.
            return RecognitionContext(name=f"transcription.{channel}")
        return RecognitionContext(
            phrases=phrases,
            name=f"transcription.{channel}",
            general_english=self.settings.general_english,
        )

    def warm_up(self) -> None:
        """Compile both channels' contexts now (pocketsphinx builds an LM per context)."""
        silence = np.zeros(RATE_HZ // 10, dtype=np.int16)
        for channel, _, _ in CHANNELS:
            self._decode_spans(silence, [(0, len(silence))], channel, "warm-up")

    def transcribe_file(self, path: str | os.PathLike[str]) -> Transcription:
        """Read and transcribe one recording file.

        Raises:
            FileNotFoundError: no such file.
            ValueError: a file that cannot be decoded.
        """
        started = time.process_time()
        stereo = read_stereo(path)
        segments = self.transcribe(stereo)
        return Transcription(segments, stereo.shape[1] / RATE_HZ, time.process_time() - started)

    def transcribe(self, stereo: NDArray[np.int16]) -> tuple[SegmentInput, ...]:
        """Both channels' segments of ``(2, samples)`` 8 kHz audio, in time order."""
        segments: list[SegmentInput] = []
        for channel, speaker, row in CHANNELS:
            pcm = np.ascontiguousarray(stereo[row])
            other = np.ascontiguousarray(stereo[1 - row])
            spans = speech_spans(pcm, RATE_HZ, reference=other, options=self.settings.spans)
            segments += self._decode_spans(pcm, spans, channel, speaker)
        segments.sort(key=lambda s: (s.start_ms, s.channel))
        return tuple(segments)

    def _decode_spans(
        self, pcm: NDArray[np.int16], spans: Sequence[tuple[int, int]], channel: str, speaker: str
    ) -> list[SegmentInput]:
        context = self._contexts[channel]
        decoder = self.engine.decoder(partials=False)
        out: list[SegmentInput] = []
        try:
            for start, end in spans:
                for offset, hypothesis in _decode_span(decoder, pcm[start:end], context):
                    segment = _segment(hypothesis, (start + offset) / RATE_HZ, channel, speaker)
                    if segment is not None:
                        out.append(segment)
        finally:
            decoder.close()
        return out


def _decode_span(
    decoder: Decoder, pcm: NDArray[np.int16], context: RecognitionContext
) -> list[tuple[int, Hypothesis]]:
    """Every final of one span, each with the sample (in the span) its utterance began at."""
    finals: list[tuple[int, Hypothesis]] = []
    decoder.start(context)
    began = 0
    for index in range(0, len(pcm), _CHUNK_SAMPLES):
        chunk = pcm[index : index + _CHUNK_SAMPLES]
        hypothesis = decoder.accept(chunk.tobytes())
        if hypothesis is not None and hypothesis.final:
            # The engine's endpointer (vosk) closed an utterance: go on with a new one.
            finals.append((began, hypothesis))
            began = index + len(chunk)
            decoder.start(context)
    finals.append((began, decoder.finish()))
    return finals


def _segment(
    hypothesis: Hypothesis, offset_s: float, channel: str, speaker: str
) -> SegmentInput | None:
    """A final as a segment timed in the recording; None when it holds no word."""
    words = tuple(
        WordInput(
            word.text,
            round((offset_s + word.start_s) * 1000),
            round((offset_s + word.end_s) * 1000),
            round(word.confidence, 4),
        )
        for word in hypothesis.words
        if word.text
    )
    if not words:
        return None
    return SegmentInput(
        channel=channel,
        speaker=speaker,
        start_ms=words[0].start_ms,
        end_ms=max(w.end_ms for w in words),
        words=words,
        confidence=round(hypothesis.confidence, 4),
    )
