r"""vosk (Kaldi) recognizer: one ``vosk.Model`` per process, a ``KaldiRecognizer`` per call.

Audio goes in at 8 kHz as it is (``KaldiRecognizer(model, 8000)``; the model's
feature pipeline resamples). Partials come from ``PartialResult`` and are
returned only when their text changes; finals from ``Result`` (vosk's own
endpointer closed the utterance inside ``accept``) or ``FinalResult``
(``finish``), with per-word times and confidences (``SetWords(True)``). The
utterance's confidence is the mean of its words' (0 when nothing was heard).

Word times: vosk counts them from the recognizer's creation, not from its
last reset, so the decoder subtracts the audio fed before the utterance.

Context: ``grammar`` becomes vosk's JSON list of phrases (``SetGrammar``;
``ensure_ascii=False``, vosk ignores ``\\uXXXX`` escapes as unknown words).
Words the model does not know are ignored by vosk with a log line. A model
with an ``[unk]`` word can take ``"[unk]"`` in the grammar so that anything
else comes back as ``[unk]``; the small Korean model has none, and its grammar
words may recombine ("네 예약" for two phrases). ``phrases`` are not used: vosk
has no phrase-hint API, and a large model's own LM is what helps there.

Endpointing: vosk 0.3.45 has no ``SetEndpointerMode``/``SetEndpointerDelays``
(newer vosk does); its endpointer uses the model's ``conf/model.conf`` rules
(e.g. 0.5 s of trailing silence after speech). ``VoskDecoder`` calls
``SetEndpointerDelays`` when a vosk version provides it and delays were given.

vosk releases the GIL while decoding, so worker threads scale with cores.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import vosk  # type: ignore[import-untyped]

from asr.engine import RATE_HZ, RecognitionContext
from asr.models import find_vosk_model
from asr.results import Hypothesis, Word

__all__ = ["EndpointerDelays", "VoskDecoder", "VoskEngine"]

EndpointerDelays = tuple[float, float, float]  # start max, end silence, utterance max (s)

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _shared_model(path: str) -> Any:
    """One ``vosk.Model`` per process and path (~0.5 GB for the Korean one)."""
    with _models_lock:
        model = _models.get(path)
        if model is None:
            vosk.SetLogLevel(-1)
            model = _models[path] = vosk.Model(path)
        return model


class VoskEngine:
    """A loaded vosk model; decoders share it."""

    name = "vosk"

    def __init__(
        self, model_path: str | None = None, *, endpointer: EndpointerDelays | None = None
    ) -> None:
        """Load (or reuse) the model that ``models.find_vosk_model`` picks."""
        self.model_path = find_vosk_model(model_path)
        self._model = _shared_model(self.model_path)
        self._endpointer = endpointer

    def decoder(self, *, partials: bool = True) -> VoskDecoder:
        """A decoder for one call (``partials=False``: finals only)."""
        return VoskDecoder(self._model, self._endpointer, partials=partials)


class VoskDecoder:
    """One call's vosk recognizer; see the module docstring."""

    def __init__(
        self, model: Any, endpointer: EndpointerDelays | None = None, *, partials: bool = True
    ) -> None:
        self._model = model
        self._endpointer = endpointer
        self._partials = partials
        self._recognizer: Any = None
        self._grammar: tuple[str, ...] | None = None
        self._fed_samples = 0  # since the recognizer was made
        self._utterance_start = 0
        self._in_utterance = False
        self._last_partial = ""

    def _new_recognizer(self, grammar: tuple[str, ...] | None) -> Any:
        if grammar is None:
            recognizer = vosk.KaldiRecognizer(self._model, RATE_HZ)
        else:
            phrases = json.dumps(list(grammar), ensure_ascii=False)
            recognizer = vosk.KaldiRecognizer(self._model, RATE_HZ, phrases)
        recognizer.SetWords(True)
        if self._endpointer is not None and hasattr(recognizer, "SetEndpointerDelays"):
            recognizer.SetEndpointerDelays(*self._endpointer)
        self._fed_samples = 0
        return recognizer

    def start(self, context: RecognitionContext) -> None:
        """Begin an utterance; a new recognizer only when the grammar changed."""
        if self._recognizer is None or context.grammar != self._grammar:
            self._recognizer = self._new_recognizer(context.grammar)
            self._grammar = context.grammar
        else:
            self._recognizer.Reset()
        self._utterance_start = self._fed_samples
        self._in_utterance = True
        self._last_partial = ""

    def accept(self, pcm: bytes) -> Hypothesis | None:
        """Feed 8 kHz s16le audio; a changed partial, or a final at vosk's endpoint."""
        if not self._in_utterance:
            raise RuntimeError("accept outside an utterance: call start first")
        self._fed_samples += len(pcm) // 2
        if self._recognizer.AcceptWaveform(pcm):
            self._in_utterance = False
            return self._final(self._recognizer.Result())
        if not self._partials:
            return None
        text = str(json.loads(self._recognizer.PartialResult()).get("partial", ""))
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return Hypothesis(text, (), 0.0, final=False)

    def finish(self) -> Hypothesis:
        """End the utterance now and return its final."""
        if not self._in_utterance:
            raise RuntimeError("finish outside an utterance: call start first")
        self._in_utterance = False
        return self._final(self._recognizer.FinalResult())

    def close(self) -> None:
        """Drop the recognizer (the model stays loaded for other calls)."""
        self._recognizer = None
        self._in_utterance = False

    def _final(self, result_json: str) -> Hypothesis:
        result = json.loads(result_json)
        offset_s = self._utterance_start / RATE_HZ
        duration_s = (self._fed_samples - self._utterance_start) / RATE_HZ
        words = []
        for item in result.get("result", ()):
            start_s = min(max(float(item["start"]) - offset_s, 0.0), duration_s)
            end_s = min(max(float(item["end"]) - offset_s, start_s), duration_s)
            confidence = min(max(float(item.get("conf", 0.0)), 0.0), 1.0)
            words.append(Word(str(item["word"]), start_s, end_s, confidence))
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        text = " ".join(w.text for w in words) or str(result.get("text", ""))
        return Hypothesis(text, tuple(words), confidence, final=True)
