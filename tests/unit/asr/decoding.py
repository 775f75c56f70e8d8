"""Feeding a fixture through a decoder as the service does: 80 ms chunks."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from asr.engine import Decoder, RecognitionContext
from asr.results import Hypothesis

CHUNK = 640  # 80 ms at 8 kHz, what the service ships


def decode(
    decoder: Decoder, pcm: NDArray[np.int16], context: RecognitionContext
) -> list[Hypothesis]:
    """One utterance's partials and its final (last), as the decoder gave them."""
    decoder.start(context)
    results = []
    for i in range(0, len(pcm), CHUNK):
        hypothesis = decoder.accept(pcm[i : i + CHUNK].tobytes())
        if hypothesis is not None:
            results.append(hypothesis)
            if hypothesis.final:
                return results  # the engine's own endpointer ended the utterance (vosk)
    results.append(decoder.finish())
    return results
