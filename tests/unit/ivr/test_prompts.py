"""PromptLibrary: text rendered once (memory, then disk), files decoded, off the loop."""

from __future__ import annotations

import asyncio
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.prompts import PromptLibrary
from ivr.tts import EspeakSynthesizer, HibariSynthesizer, Pcm
from media_core import g711

AUDIO = Path(__file__).parents[2] / "data" / "audio"
TEXT = "Please tell me the reason for your call."


class CountingEspeak(EspeakSynthesizer):
    """The real espeak-ng, counting how often it is actually run."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def synthesize(self, text: str) -> tuple[Pcm, int]:
        self.calls += 1
        return super().synthesize(text)


class GatedEspeak(CountingEspeak):
    """Speaks only once the event loop has opened the gate: proof the loop kept running."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def synthesize(self, text: str) -> tuple[Pcm, int]:
        if not self.gate.wait(timeout=10):
            raise TimeoutError("the event loop never ran while the prompt was rendering")
        return super().synthesize(text)


@pytest.fixture
def engine() -> CountingEspeak:
    return CountingEspeak()


@pytest.fixture
def library(tmp_path: Path, engine: CountingEspeak) -> PromptLibrary:
    return PromptLibrary(tmp_path / "cache", engine)


def test_a_prompt_is_8khz_int16_at_telephone_quality_of_the_expected_length(library):
    pcm = library.render(TEXT)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    # Eight words, trimmed of silence: one to four seconds at 8 kHz.
    assert 8000 * 1.0 < len(pcm) < 8000 * 4.0
    assert np.array_equal(g711.ulaw_decode(g711.ulaw_encode(pcm)), pcm)  # µ-law exact
    assert not pcm.flags.writeable  # shared between calls


def test_a_memory_hit_does_not_run_the_engine_again(library, engine):
    first = library.render(TEXT)
    second = library.render(TEXT)
    assert engine.calls == 1
    assert second is first
    library.render("Thank you.")
    assert engine.calls == 2


def test_the_disk_cache_survives_a_new_library(tmp_path, library, engine):
    first = library.render(TEXT)
    path = library.cache_path(TEXT)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
    restarted_engine = CountingEspeak()
    restarted = PromptLibrary(tmp_path / "cache", restarted_engine)
    assert np.array_equal(restarted.render(TEXT), first)
    assert restarted_engine.calls == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # torn write
        lambda data: b"not a wav at all" * 10,
        lambda data: b"",
        lambda data: data[:20],  # half a header
    ],
    ids=["truncated", "garbage", "empty", "half-header"],
)
def test_a_corrupt_cache_file_is_rendered_again_and_repaired(tmp_path, library, damage):
    good = library.render(TEXT)
    path = library.cache_path(TEXT)
    path.write_bytes(damage(path.read_bytes()))
    engine = CountingEspeak()
    assert np.array_equal(PromptLibrary(tmp_path / "cache", engine).render(TEXT), good)
    assert engine.calls == 1
    # The file was rewritten: the next restart reads it again.
    engine = CountingEspeak()
    PromptLibrary(tmp_path / "cache", engine).render(TEXT)
    assert engine.calls == 0


def test_a_cache_file_at_another_rate_is_not_served(tmp_path, library):
    library.render(TEXT)
    path = library.cache_path(TEXT)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(320))
    engine = CountingEspeak()
    assert len(PromptLibrary(tmp_path / "cache", engine).render(TEXT)) > 8000
    assert engine.calls == 1


def test_each_engine_and_rate_has_its_own_cache_entry(tmp_path):
    cache = tmp_path / "cache"
    espeak = PromptLibrary(cache, EspeakSynthesizer())
    hibari = PromptLibrary(cache, HibariSynthesizer())
    wideband = PromptLibrary(cache, EspeakSynthesizer(), rate_hz=16000)
    paths = {lib.cache_path(TEXT) for lib in (espeak, hibari, wideband)}
    assert len(paths) == 3
    assert all(len(path.stem) == 64 for path in paths)  # sha256 hex
    narrow, wide = espeak.render(TEXT), wideband.render(TEXT)
    assert len(wide) == pytest.approx(2 * len(narrow), abs=4)


def test_hibari_prompts_are_rendered_and_cached_too(tmp_path):
    library = PromptLibrary(tmp_path, HibariSynthesizer())
    pcm = library.render(TEXT)
    assert 8000 * 1.0 < len(pcm) < 8000 * 4.0
    assert library.syntheses == 1
    assert library.cache_path(TEXT).exists()


def test_without_a_synthesizer_the_default_is_chosen_when_first_needed(tmp_path):
    library = PromptLibrary(tmp_path, None)
    assert library.synthesizer.name == "hibari:heart"
    assert len(library.render("Hello.")) > 0


def test_blank_text_is_refused(library, engine):
    with pytest.raises(ValueError, match="blank"):
        library.render("   ")
    assert engine.calls == 0


def test_a_file_prompt_is_decoded_to_8khz(library, engine):
    pcm = library.load_file(AUDIO / "toothache_22k_stereo.flac")
    assert pcm.dtype == np.int16
    assert len(pcm) == 10855  # 29918 samples at 22.05 kHz
    assert engine.calls == 0


def test_get_takes_text_or_a_file_relative_to_the_flow(tmp_path, engine):
    library = PromptLibrary(tmp_path / "cache", engine, base_dir=AUDIO)
    assert np.array_equal(
        library.get({"file": "toothache_8k.wav"}), library.load_file(AUDIO / "toothache_8k.wav")
    )
    assert library.cached(Path("toothache_8k.wav")) is library.get(AUDIO / "toothache_8k.wav")
    assert library.get(TEXT) is library.render(TEXT)
    with pytest.raises(ValueError, match="text, a path or"):
        library.get({"path": "toothache_8k.wav"})
    with pytest.raises(ValueError, match="text, a path or"):
        library.get(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        library.get({"file": "no_such_prompt.wav"})


async def test_prewarm_renders_in_a_worker_thread_while_the_loop_runs(tmp_path):
    engine = GatedEspeak()
    library = PromptLibrary(tmp_path, engine)
    texts = ["Welcome to the hospital hotline.", "Please hold.", TEXT]

    async def open_gate() -> None:
        await asyncio.sleep(0)  # runs only if prewarm gave the loop back
        engine.gate.set()

    await asyncio.gather(library.prewarm(texts), open_gate())
    assert engine.calls == 3
    for text in texts:
        library.render(text)
    assert engine.calls == 3


async def test_aget_renders_off_the_loop_then_serves_from_memory(tmp_path):
    engine = GatedEspeak()
    library = PromptLibrary(tmp_path, engine)
    pending = asyncio.ensure_future(library.aget(TEXT))
    await asyncio.sleep(0)
    engine.gate.set()
    pcm = await pending
    assert engine.calls == 1
    assert await library.aget(TEXT) is pcm
    assert await library.aget({"file": str(AUDIO / "toothache_8k.wav")}) is not None
    assert engine.calls == 1


def test_a_path_is_a_file_prompt_and_cached_never_renders(library, engine):
    wav = AUDIO / "toothache_8k.wav"
    assert library.cached(TEXT) is None
    assert library.cached(wav) is None  # not decoded yet, and cached() does not decode
    assert engine.calls == 0
    pcm = library.get(wav)
    assert library.cached(wav) is pcm
    assert library.cached({"file": str(wav)}) is pcm
    text_pcm = library.render(TEXT)
    assert library.cached(TEXT) is text_pcm
    assert library.cached("   ") is None


def test_cached_does_not_choose_the_default_engine(tmp_path):
    library = PromptLibrary(tmp_path, None)
    assert library.cached(TEXT) is None  # would load a model on the loop otherwise
    assert library._synthesizer is None


def test_memory_keeps_the_most_recent_prompts(tmp_path, engine):
    library = PromptLibrary(tmp_path, engine, max_entries=2)
    first = library.render("One.")
    library.render("Two.")
    library.render("Three.")
    assert library.cached("One.") is None
    assert np.array_equal(library.render("One."), first)  # back from disk
    assert engine.calls == 3
