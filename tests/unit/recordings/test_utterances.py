"""Cutting a channel into spans to decode: VAD turns, padding, long turns and echo."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from calls import RATE_HZ, first_loud_s, place, speech

from recordings.utterances import SpanOptions, speech_spans


def trimmed(name: str) -> np.ndarray:
    """A fixture without its leading and trailing silence."""
    pcm = speech(name)
    start = round(first_loud_s(pcm) * RATE_HZ)
    end = len(pcm) - round(first_loud_s(pcm[::-1].copy()) * RATE_HZ)
    return pcm[start:end]


def test_each_turn_becomes_a_padded_span_around_the_speech():
    chest, refill = speech("en_chest"), speech("en_refill")
    channel = place(12.0, (2.0, chest), (7.0, refill))
    spans = speech_spans(channel)
    assert len(spans) == 2
    for (start, end), (at_s, pcm) in zip(spans, ((2.0, chest), (7.0, refill)), strict=True):
        onset_s = at_s + first_loud_s(pcm)
        # The span opens before the first loud frame (the pad) and not much earlier.
        assert onset_s - 0.35 <= start / RATE_HZ <= onset_s
        assert end / RATE_HZ >= at_s + len(pcm) / RATE_HZ - 0.6  # covers the words' tail
        assert end / RATE_HZ <= at_s + len(pcm) / RATE_HZ + 0.5


def test_silence_and_an_empty_channel_have_no_spans():
    assert speech_spans(np.zeros(5 * RATE_HZ, dtype=np.int16)) == []
    assert speech_spans(np.zeros(0, dtype=np.int16)) == []


def test_turns_closer_than_the_padding_merge():
    yes = trimmed("en_yes")
    # 350 ms apart: a 200 ms hangover ends the first turn, the pads (450 ms) join them.
    gap_s = len(yes) / RATE_HZ + 0.35
    channel = place(6.0, (1.0, yes), (1.0 + gap_s, yes))
    options = SpanOptions(hangover_ms=200)
    assert (
        len(speech_spans(channel, options=replace(options, pad_before_ms=0, pad_after_ms=0))) == 2
    )
    assert len(speech_spans(channel, options=options)) == 1


def test_a_long_turn_is_cut_at_its_quietest_frame_within_the_limit():
    talk = np.concatenate([trimmed(n) for n in ("en_chest", "en_refill", "en_toothache")] * 4)
    channel = place(len(talk) / RATE_HZ + 2, (1.0, talk))
    spans = speech_spans(channel, options=SpanOptions(max_span_ms=3000))
    assert all(end - start <= 3 * RATE_HZ for start, end in spans)
    # Contiguous pieces (nothing lost between them) are cuts of one turn.
    cuts = [a for a, b in zip(spans, spans[1:], strict=False) if a[1] == b[0]]
    assert len(cuts) >= 2
    for start, end in cuts:
        # The cut is in the middle of the quietest 20 ms of the piece's last third.
        low = start + 2 * RATE_HZ
        window = channel[low : start + 3 * RATE_HZ].astype(float)
        energy = (window[: len(window) // 160 * 160].reshape(-1, 160) ** 2).sum(axis=1)
        assert end == low + int(np.argmin(energy)) * 160 + 80


def test_an_echo_of_the_other_channel_is_not_speech_but_talk_over_it_is():
    said = speech("en_chest")
    prompt = place(8.0, (1.0, said))
    echo = (prompt // 8).astype(np.int16)  # the prompt back 18 dB down: line echo
    assert speech_spans(echo)  # alone, it reads as speech
    assert speech_spans(echo, reference=prompt) == []
    talk = echo.copy()
    talk[5 * RATE_HZ : 5 * RATE_HZ + len(said)] += said  # the caller, after the prompt
    spans = speech_spans(talk, reference=prompt)
    assert len(spans) == 1 and spans[0][0] >= 4.5 * RATE_HZ


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="1-D int16"):
        speech_spans(np.zeros((2, 100), dtype=np.int16))
    with pytest.raises(ValueError, match="reference"):
        speech_spans(np.zeros(800, dtype=np.int16), reference=np.zeros(400, dtype=np.int16))
