"""Prompts by text or by file, rendered once and kept in memory and on disk.

A prompt spec in a flow is either text, spoken by the TTS engine, or
``{file: path}``, a recording. ``PromptLibrary`` turns either into read-only
int16 samples at the call rate, ready for ``media_core.prompt.PromptPlayer``:

- text goes through the ``Synthesizer`` and ``ivr.tts.telephone_quality``
  (8 kHz, levelled, trimmed, G.711 µ-law round trip) and is cached in memory
  and as a 16-bit WAV under ``cache_dir`` named by the sha256 of (format
  version, synthesizer name, rate, text), so a restart does not synthesize
  again; a cache file that does not read back is rendered again;
- a file is decoded by ``media_core.prompt.PromptCache`` (``decode_prompt``,
  again when the file changes).

Rendering blocks (a model run, disk): on the event loop use ``aget`` and
``prewarm``, which run it in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import threading
import wave
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from ivr.tts import TELEPHONE_RATE_HZ, Synthesizer, default_synthesizer, telephone_quality
from media_core.prompt import PromptCache

__all__ = ["PROMPT_FORMAT_VERSION", "PromptLibrary", "PromptSpec"]

#: Part of every cache key: raise it when rendering changes (level, trimming,
#: companding), so files rendered the old way are not served.
PROMPT_FORMAT_VERSION = 1

#: A prompt: text to speak; or a recording, as a path (``ivr.actions.Prompt``)
#: or as a flow writes it, ``{"file": path}``.
PromptSpec: TypeAlias = str | os.PathLike[str] | Mapping[str, str]


class PromptLibrary:
    """Rendered prompts: text through TTS (cached in memory and on disk) and files.

    Safe to use from several threads: rendering is serialised by one lock (the
    engines are single-threaded anyway), so two requests for the same new text
    synthesize it once; the in-memory lookup has a lock of its own, held only
    for a dictionary access, so ``aget`` on the loop never waits for a render.
    """

    __slots__ = (
        "_files",
        "_memory",
        "_memory_lock",
        "_render_lock",
        "_synthesizer",
        "base_dir",
        "cache_dir",
        "max_entries",
        "rate_hz",
        "syntheses",
    )

    def __init__(
        self,
        cache_dir: Path,
        synthesizer: Synthesizer | None,
        rate_hz: int = TELEPHONE_RATE_HZ,
        *,
        base_dir: Path | None = None,
        max_entries: int = 1024,
    ) -> None:
        """Set up the library; nothing is synthesized or loaded yet.

        Args:
            cache_dir: where rendered prompts are kept (created when first written).
            synthesizer: the TTS engine; None picks ``default_synthesizer()``
                the first time a text needs it.
            rate_hz: the call rate. At 8 kHz text prompts get the G.711 µ-law
                round trip; at another rate (a wideband leg) they do not.
            base_dir: what a relative ``{file: path}`` is relative to (the flow
                file's folder); the working directory when None.
            max_entries: prompts kept in memory, the least recently used going first.

        Raises:
            ValueError: a non-positive rate or size.
        """
        if rate_hz <= 0 or max_entries <= 0:
            raise ValueError("rate_hz and max_entries must be positive")
        self.cache_dir = Path(cache_dir)
        self.rate_hz = rate_hz
        self.base_dir = base_dir
        self.max_entries = max_entries
        self.syntheses = 0  # texts actually synthesized (not found in either cache)
        self._synthesizer = synthesizer
        self._memory: OrderedDict[str, NDArray[np.int16]] = OrderedDict()
        self._files = PromptCache(rate_hz, max_entries=max_entries)
        self._render_lock = threading.Lock()  # engine choice, synthesis, disk, files
        self._memory_lock = threading.Lock()  # _memory only

    @property
    def synthesizer(self) -> Synthesizer:
        """The engine, chosen now if it was left to ``default_synthesizer``.

        Raises:
            ivr.tts.SynthesizerUnavailableError: no engine can load.
        """
        with self._render_lock:
            return self._engine_locked()

    def _engine_locked(self) -> Synthesizer:
        if self._synthesizer is None:
            self._synthesizer = default_synthesizer()
        return self._synthesizer

    def cache_path(self, text: str) -> Path:
        """The file ``text`` is (or will be) cached in, for this engine and rate."""
        with self._render_lock:
            return self._path_locked(self._key(text))

    def render(self, text: str) -> NDArray[np.int16]:
        """``text`` spoken at telephone quality: from memory, disk, or the engine.

        Returns:
            A read-only 1-D int16 array at ``rate_hz``, shared by every caller.

        Raises:
            ValueError: the text is blank.
            ivr.tts.SynthesisError: the engine failed or cannot load.
        """
        if not text.strip():
            raise ValueError("a prompt's text is blank")
        with self._render_lock:
            key = self._key(text)
            pcm = self._remembered(key)
            if pcm is not None:
                return pcm
            path = self._path_locked(key)
            pcm = self._read_cached(path)
            if pcm is None:
                samples, engine_hz = self._engine_locked().synthesize(text)
                self.syntheses += 1
                pcm = telephone_quality(
                    samples,
                    engine_hz,
                    out_hz=self.rate_hz,
                    trim=True,
                    ulaw=self.rate_hz == TELEPHONE_RATE_HZ,
                )
                self._write_cached(path, pcm)
            pcm.setflags(write=False)  # shared between calls: nobody may write into it
            self._remember(key, pcm)
            return pcm

    def _remember(self, key: str, pcm: NDArray[np.int16]) -> None:
        with self._memory_lock:
            self._memory[key] = pcm
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)

    def _remembered(self, key: str) -> NDArray[np.int16] | None:
        with self._memory_lock:
            pcm = self._memory.get(key)
            if pcm is not None:
                self._memory.move_to_end(key)
            return pcm

    def load_file(self, path: str | os.PathLike[str]) -> NDArray[np.int16]:
        """A recorded prompt decoded to ``rate_hz`` (any format FFmpeg reads).

        A relative path is relative to ``base_dir``. The file is decoded again
        only when it changes.

        Returns:
            A read-only 1-D int16 array.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not decodable audio.
        """
        resolved = self._resolve(path)
        with self._render_lock:
            pcm = self._files.load(resolved)
        self._remember(self._file_key(resolved), pcm)
        return pcm

    def get(self, spec: PromptSpec) -> NDArray[np.int16]:
        """The samples of a prompt: text, a path, or ``{"file": path}``.

        Raises:
            ValueError: a spec that is none of these, or blank text.
            FileNotFoundError: the file does not exist.
            ivr.tts.SynthesisError: the engine failed.
        """
        text, path = _parse_spec(spec)
        return self.render(text) if path is None else self.load_file(path)

    def cached(self, spec: PromptSpec) -> NDArray[np.int16] | None:
        """The prompt if it is in memory, else None: never synthesizes, never touches disk.

        Safe on the event loop. A file's entry is the version last decoded
        (``load_file``/``get`` notice a changed file; this does not look).

        Raises:
            ValueError: a spec that is not a prompt.
        """
        text, path = _parse_spec(spec)
        if path is not None:
            return self._remembered(self._file_key(self._resolve(path)))
        engine = self._synthesizer  # None until chosen: choosing loads a model, not here
        if engine is None or not text.strip():
            return None
        return self._remembered(self._key_for(engine.name, text))

    async def aget(self, spec: PromptSpec) -> NDArray[np.int16]:
        """``get`` in a worker thread, so the event loop never waits on TTS or disk.

        A prompt already in memory is returned without a thread hop (and without
        waiting for a render in progress).
        """
        pcm = self.cached(spec)
        if pcm is not None:
            return pcm
        return await asyncio.to_thread(self.get, spec)

    async def prewarm(self, texts: Iterable[str]) -> None:
        """Render every text (one worker thread), so calls find them cached.

        Raises:
            ValueError: a text is blank (the ones before it are rendered).
            ivr.tts.SynthesisError: the engine failed.
        """
        await asyncio.to_thread(self._render_all, list(texts))

    def _render_all(self, texts: list[str]) -> None:
        for text in texts:
            self.render(text)

    def clear_memory(self) -> None:
        """Forget the in-memory copies (the disk cache stays)."""
        with self._render_lock, self._memory_lock:
            self._memory.clear()
            self._files.clear()

    def _resolve(self, path: str | os.PathLike[str]) -> Path:
        resolved = Path(path)
        if not resolved.is_absolute() and self.base_dir is not None:
            resolved = self.base_dir / resolved
        return resolved

    @staticmethod
    def _file_key(path: Path) -> str:
        # abspath, not resolve(): no disk access, so cached() is safe on the loop.
        return "file:" + os.path.abspath(path)

    # -- the disk cache ----------------------------------------------------------------------

    def _key(self, text: str) -> str:
        return self._key_for(self._engine_locked().name, text)

    def _key_for(self, engine_name: str, text: str) -> str:
        material = json.dumps([PROMPT_FORMAT_VERSION, engine_name, self.rate_hz, text])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def _path_locked(self, key: str) -> Path:
        return self.cache_dir / f"{key}.wav"

    def _read_cached(self, path: Path) -> NDArray[np.int16] | None:
        """The cached samples, or None when absent or not exactly what was written."""
        try:
            with wave.open(str(path), "rb") as wav:
                if wav.getparams()[:3] != (1, 2, self.rate_hz):  # mono, 16-bit, our rate
                    return None
                frames = wav.getnframes()
                data = wav.readframes(frames)
        except (wave.Error, EOFError, OSError):
            return None  # absent, torn or foreign: render again and overwrite it
        if len(data) != frames * 2:
            return None  # truncated
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def _write_cached(self, path: Path, pcm: NDArray[np.int16]) -> None:
        """Write atomically: a crash or another process never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(self.rate_hz)
                wav.writeframes(pcm.astype("<i2").tobytes())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def _parse_spec(spec: PromptSpec) -> tuple[str, str | os.PathLike[str] | None]:
    """``(text, None)`` for text, ``("", path)`` for a recording."""
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, os.PathLike):
        return "", spec
    if isinstance(spec, Mapping):
        if set(spec) != {"file"} or not isinstance(spec["file"], str | os.PathLike):
            raise ValueError(f"a prompt is text, a path or {{file: path}}, not {dict(spec)!r}")
        return "", spec["file"]
    raise ValueError(f"a prompt is text, a path or {{file: path}}, not {type(spec).__name__}")
