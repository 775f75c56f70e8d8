"""Text to speech for prompts, and the telephone line the speech goes through.

A ``Synthesizer`` turns text into samples at its own rate: ``HibariSynthesizer``
(the hibari-tts "heart" voice that ships in its wheel, 24 kHz float32) or
``EspeakSynthesizer`` (the ``espeak-ng`` program, the fallback, 22.05 kHz
int16). ``default_synthesizer`` picks hibari and falls back to espeak-ng with a
warning. Neither downloads anything: a hibari voice that is not in the package
or already in its cache is refused, not fetched.

``telephone_quality`` makes any synthesized audio sound exactly as a phone line
carries it: ``media_core.resample`` to 8 kHz, a level of about -18 dBFS RMS over
the speech (never clipping), optionally trimmed of leading and trailing silence,
then a G.711 µ-law round trip through ``media_core.g711``.

Everything here blocks (a model run, a subprocess): callers on the event loop
run it in a worker thread (``ivr.prompts.PromptLibrary.aget`` does).
"""

from __future__ import annotations

import logging
import math
import shutil
import struct
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from media_core import g711
from media_core.resample import resample

__all__ = [
    "TELEPHONE_LEVEL_DBFS",
    "TELEPHONE_RATE_HZ",
    "EspeakSynthesizer",
    "HibariSynthesizer",
    "Pcm",
    "SynthesisError",
    "Synthesizer",
    "SynthesizerUnavailableError",
    "default_synthesizer",
    "parse_wav",
    "telephone_quality",
]

log = logging.getLogger("hotline.ivr.tts")

#: Samples as an engine returns them: float32 in [-1, 1] or int16.
Pcm: TypeAlias = NDArray[np.float32] | NDArray[np.int16]

TELEPHONE_RATE_HZ = 8000
#: The speech level prompts are brought to: about where a phone call's talker
#: sits (ITU-T P.56 active speech level of -26 dBov is quieter; IVR prompts are
#: commonly mastered a few dB hotter so they carry over line noise).
TELEPHONE_LEVEL_DBFS = -18.0
# The loudest sample allowed after the level is set: -1 dBFS leaves room for
# the µ-law quantisation step so nothing clips.
_PEAK_LIMIT = 10 ** (-1.0 / 20)
# Speech level is measured over 20 ms frames within this many dB of the
# loudest frame, so pauses do not pull the measured level down.
_FRAME_MS = 20
_ACTIVE_RANGE_DB = 30.0
# Trimming: a 10 ms frame counts as sound above this level (after levelling),
# and this much is kept on each side of the sound so onsets are not cut.
_TRIM_FRAME_MS = 10
_TRIM_THRESHOLD_DBFS = -50.0
_TRIM_MARGIN_MS = 30
# Resampling works on int16: synthesized audio is scaled to this peak first
# (half of full scale, so the filter's overshoot cannot clip).
_RESAMPLE_PEAK = 16384.0
_INT16_FULL_SCALE = 32768.0


class SynthesisError(RuntimeError):
    """The engine could not turn this text into audio."""


class SynthesizerUnavailableError(SynthesisError):
    """The engine is not installed or cannot load (its voice, its program)."""


class Synthesizer(Protocol):
    """Text in, samples out: what prompts need of a TTS engine.

    ``name`` says which engine, voice and settings made the audio
    (``"hibari:heart"``, ``"espeak-ng:en-us"``); the prompt cache keys on it, so
    two settings that sound different must have different names.
    """

    @property
    def name(self) -> str:
        """Engine, voice and any setting that changes the audio."""
        ...

    def synthesize(self, text: str) -> tuple[Pcm, int]:
        """Speak ``text``: mono samples (float32 in [-1, 1] or int16) and their rate.

        Raises:
            SynthesisError: the engine failed (``SynthesizerUnavailableError``
                when it cannot load at all).
        """
        ...


class HibariSynthesizer:
    """hibari-tts: 24 kHz float32, about 60x real time on one core.

    The model loads on the first ``synthesize`` (or ``load``), once. A fixed
    ``seed`` fixes hibari's noise component, so the same text always gives the
    same samples. Synthesis is serialised with a lock: one instance may be
    shared by worker threads.
    """

    __slots__ = ("_engine", "_lock", "seed", "speed", "voice")

    def __init__(self, voice: str = "heart", speed: float = 1.0, *, seed: int = 0) -> None:
        """Describe the voice; nothing loads yet.

        Args:
            voice: a hibari voice. Only "heart" ships in the package; another
                works only if it is already in hibari's cache (never downloaded).
            speed: 1.0 is the voice's natural pace (0.5 slow .. 2.0 fast).
            seed: the noise seed.

        Raises:
            ValueError: ``speed`` outside 0.5..2.0.
        """
        if not 0.5 <= speed <= 2.0:
            raise ValueError(f"speed must be within 0.5..2.0, not {speed}")
        self.voice = voice
        self.speed = speed
        self.seed = seed
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """``hibari:<voice>``, plus the speed and seed when not the defaults."""
        name = f"hibari:{self.voice}"
        if self.speed != 1.0:
            name += f":speed={self.speed:g}"
        if self.seed != 0:
            name += f":seed={self.seed}"
        return name

    def load(self) -> None:
        """Load the model now (it loads on first use otherwise).

        Raises:
            SynthesizerUnavailableError: hibari is not installed, the voice is
                unknown or not on this machine, or the model does not load.
        """
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> Any:
        if self._engine is not None:
            return self._engine
        try:
            from hibari import Hibari  # type: ignore[import-untyped]
            from hibari.voices import voice_path  # type: ignore[import-untyped]
        except ImportError as exc:
            raise SynthesizerUnavailableError(f"hibari-tts is not installed: {exc}") from exc
        try:
            # download_missing=False: a voice that is not here is an error, never a download.
            model_path = voice_path(self.voice, download_missing=False)
        except FileNotFoundError as exc:
            raise SynthesizerUnavailableError(
                f"hibari voice {self.voice!r} is not on this machine ({exc}); only 'heart' ships "
                "in the package and nothing is downloaded at run time"
            ) from None
        except ValueError as exc:
            raise SynthesizerUnavailableError(str(exc)) from None
        try:
            self._engine = Hibari(voice=self.voice, model=model_path)
        except Exception as exc:  # onnxruntime raises its own types
            raise SynthesizerUnavailableError(
                f"hibari model {model_path} failed to load: {exc}"
            ) from exc
        return self._engine

    def synthesize(self, text: str) -> tuple[Pcm, int]:
        """Speak ``text`` at 24 kHz.

        Raises:
            SynthesizerUnavailableError: the model cannot load.
            SynthesisError: the model failed on this text.
        """
        with self._lock:
            engine = self._load_locked()
            try:
                audio = engine(text, speed=self.speed, seed=self.seed)
            except Exception as exc:
                raise SynthesisError(f"hibari failed on {text!r}: {exc}") from exc
            rate_hz = int(engine.sample_rate)
        samples: NDArray[np.float32] = np.asarray(audio, dtype=np.float32).reshape(-1)
        return samples, rate_hz


class EspeakSynthesizer:
    """The ``espeak-ng`` program: robotic but always there, 22.05 kHz int16.

    The text goes in on stdin (so a text starting with ``-`` is not an option)
    and the WAV comes back on stdout.
    """

    __slots__ = ("executable", "pitch", "rate_wpm", "timeout_s", "voice")

    def __init__(
        self,
        voice: str = "en-us",
        rate_wpm: int = 160,
        *,
        pitch: int = 50,
        executable: str = "espeak-ng",
        timeout_s: float = 30.0,
    ) -> None:
        """Describe the voice; nothing runs yet.

        Args:
            voice: an espeak-ng voice (``espeak-ng --voices``), with an
                optional ``+variant`` (``en-us+f3``).
            rate_wpm: words per minute (espeak-ng's ``-s``, 80..450).
            pitch: espeak-ng's ``-p``, 0..99 (50 is the voice's own).
            executable: the program's name or path.
            timeout_s: how long one utterance may take.

        Raises:
            ValueError: a setting out of espeak-ng's range.
        """
        if not 80 <= rate_wpm <= 450:
            raise ValueError(f"rate_wpm must be within 80..450, not {rate_wpm}")
        if not 0 <= pitch <= 99:
            raise ValueError(f"pitch must be within 0..99, not {pitch}")
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.pitch = pitch
        self.executable = executable
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        """``espeak-ng:<voice>``, plus the rate and pitch when not the defaults."""
        name = f"espeak-ng:{self.voice}"
        if self.rate_wpm != 160:
            name += f":s={self.rate_wpm}"
        if self.pitch != 50:
            name += f":p={self.pitch}"
        return name

    def available(self) -> bool:
        """Whether the program is on ``PATH`` (or at the given path)."""
        return shutil.which(self.executable) is not None

    def synthesize(self, text: str) -> tuple[Pcm, int]:
        """Speak ``text`` at espeak-ng's rate (22.05 kHz).

        Raises:
            SynthesizerUnavailableError: the program is not installed.
            SynthesisError: it failed, timed out or wrote no WAV.
        """
        command = [
            self.executable,
            "--stdout",
            "-b", "1",  # input is UTF-8
            "-v", self.voice,
            "-s", str(self.rate_wpm),
            "-p", str(self.pitch),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise SynthesizerUnavailableError(f"{self.executable} is not installed") from None
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"{self.executable} took over {self.timeout_s} s") from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            raise SynthesisError(f"{self.executable} exited with {done.returncode}: {stderr}")
        try:
            return parse_wav(done.stdout)
        except ValueError as exc:
            raise SynthesisError(f"{self.executable} wrote no usable WAV: {exc}") from None


class FliteSynthesizer:
    """The ``flite`` program (Debian's; voices kal, awb, rms, slt): 16 kHz int16.

    A second natural-sounding English voice beside hibari's, for test callers.
    """

    __slots__ = ("executable", "timeout_s", "voice")

    def __init__(
        self, voice: str = "rms", *, executable: str = "flite", timeout_s: float = 30.0
    ) -> None:
        """Describe the voice; nothing runs yet."""
        self.voice = voice
        self.executable = executable
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        """``flite:<voice>``."""
        return f"flite:{self.voice}"

    def synthesize(self, text: str) -> tuple[Pcm, int]:
        """Speak ``text``; flite writes a WAV file, read back here.

        Raises:
            SynthesizerUnavailableError: the program is not installed.
            SynthesisError: it failed or timed out.
        """
        with tempfile.TemporaryDirectory() as folder:
            wav = Path(folder) / "out.wav"
            command = [self.executable, "-voice", self.voice, "-t", text, "-o", str(wav)]
            try:
                subprocess.run(command, capture_output=True, timeout=self.timeout_s, check=True)
            except FileNotFoundError:
                raise SynthesizerUnavailableError(f"{self.executable} is not installed") from None
            except subprocess.TimeoutExpired:
                raise SynthesisError(f"{self.executable} took over {self.timeout_s} s") from None
            except subprocess.CalledProcessError as exc:
                raise SynthesisError(f"{self.executable} exited with {exc.returncode}") from None
            return parse_wav(wav.read_bytes())


def synthesizer_named(name: str) -> Synthesizer:
    """The engine a config or command line names: ``hibari``, ``espeak-ng`` or ``flite``.

    Raises:
        ValueError: an unknown name.
    """
    engines: dict[str, type[HibariSynthesizer | EspeakSynthesizer | FliteSynthesizer]] = {
        "hibari": HibariSynthesizer,
        "espeak-ng": EspeakSynthesizer,
        "flite": FliteSynthesizer,
    }
    if name not in engines:
        raise ValueError(f"unknown voice {name!r} ({', '.join(engines)})")
    return engines[name]()


def default_synthesizer() -> Synthesizer:
    """The hibari "heart" voice, or espeak-ng (with a warning) when hibari cannot load.

    Raises:
        SynthesizerUnavailableError: neither engine is available; the message
            says why for each.
    """
    hibari = HibariSynthesizer()
    try:
        hibari.load()
    except SynthesizerUnavailableError as exc:
        espeak = EspeakSynthesizer()
        if not espeak.available():
            raise SynthesizerUnavailableError(
                f"no text-to-speech engine: {exc}; and {espeak.executable} is not installed "
                "(Debian package espeak-ng)"
            ) from exc
        log.warning("hibari-tts unavailable (%s); prompts fall back to %s", exc, espeak.name)
        return espeak
    return hibari


# --- WAV --------------------------------------------------------------------------------------

_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def parse_wav(data: bytes) -> tuple[NDArray[np.int16], int]:
    """Mono 16-bit PCM samples and rate from a WAV file's bytes.

    A streamed WAV (espeak-ng's ``--stdout``) cannot know its length when it
    writes the header, so the RIFF and data sizes it declares are too large:
    the data chunk is taken to end where the bytes end.

    Raises:
        ValueError: not RIFF/WAVE, no ``fmt `` or ``data`` chunk, or not mono
            16-bit PCM.
    """
    if len(data) < _RIFF.size:
        raise ValueError(f"{len(data)} bytes is too short for a WAV header")
    riff, _, wave = _RIFF.unpack_from(data)
    if riff != b"RIFF" or wave != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    offset = _RIFF.size
    fmt: tuple[int, ...] | None = None
    while offset + _CHUNK.size <= len(data):
        chunk_id, size = _CHUNK.unpack_from(data, offset)
        body = offset + _CHUNK.size
        if chunk_id == b"fmt ":
            if size < _FMT.size or body + _FMT.size > len(data):
                raise ValueError(f"fmt chunk of {size} bytes is too short")
            fmt = _FMT.unpack_from(data, body)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before the fmt chunk")
            tag, channels, rate_hz, _, _, bits = fmt
            if tag not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_EXTENSIBLE) or bits != 16:
                raise ValueError(f"format tag {tag} with {bits} bits; only 16-bit PCM is read")
            if channels != 1:
                raise ValueError(f"{channels} channels; only mono is read")
            end = min(body + size, len(data))
            end -= (end - body) % 2  # a torn last sample
            return np.frombuffer(data[body:end], dtype="<i2").astype(np.int16), int(rate_hz)
        offset = body + size + (size & 1)  # RIFF chunks are padded to even sizes
    raise ValueError("no data chunk")


# --- the telephone line -----------------------------------------------------------------------


def telephone_quality(
    pcm: Pcm,
    rate_hz: int,
    *,
    out_hz: int = TELEPHONE_RATE_HZ,
    level_dbfs: float = TELEPHONE_LEVEL_DBFS,
    trim: bool = False,
    ulaw: bool = True,
) -> NDArray[np.int16]:
    """What a phone line carries of this audio: 8 kHz, levelled, G.711 µ-law.

    Steps: ``media_core.resample`` to ``out_hz``; one gain that brings the
    speech (20 ms frames within 30 dB of the loudest) to ``level_dbfs`` RMS,
    lowered if needed so the peak stays under -1 dBFS; with ``trim``, leading
    and trailing silence removed but 30 ms kept either side of the sound; then
    a µ-law encode and decode (``ulaw``), so the samples are exactly what the
    far end hears. Silence stays silence (no gain is applied to nothing).

    Args:
        pcm: 1-D float (in [-1, 1]) or int16 samples.
        rate_hz: their rate.
        out_hz: the line's rate.
        level_dbfs: the wanted speech level, RMS relative to full scale.
        trim: remove leading and trailing silence.
        ulaw: round trip through G.711 µ-law (off for a wideband leg).

    Returns:
        A new 1-D int16 array at ``out_hz``.

    Raises:
        ValueError: not a 1-D float or int16 array, or a bad rate.
    """
    if not isinstance(pcm, np.ndarray) or pcm.ndim != 1:
        raise ValueError("telephone_quality needs 1-D samples")
    if pcm.dtype == np.int16:
        signal = pcm.astype(np.float64) / _INT16_FULL_SCALE
    elif np.issubdtype(pcm.dtype, np.floating):
        signal = pcm.astype(np.float64)
        if not np.all(np.isfinite(signal)):
            raise ValueError("samples must be finite")
    else:
        raise ValueError(f"samples must be float or int16, not {pcm.dtype}")
    if len(signal) == 0:
        return np.zeros(0, dtype=np.int16)
    peak = float(np.max(np.abs(signal)))
    if peak == 0.0:
        silent = np.zeros(-(-len(signal) * out_hz // rate_hz), dtype=np.int16)
        return silent[:0] if trim else silent
    # media_core.resample is int16 in, int16 out: scale so the peak is half of full
    # scale (no clipping on overshoot, ~14 bits of resolution for the speech).
    scaled = np.rint(signal * (_RESAMPLE_PEAK / peak)).astype(np.int16)
    line = resample(scaled, rate_hz, out_hz).astype(np.float64) / _INT16_FULL_SCALE
    line *= _level_gain(line, out_hz, level_dbfs)
    if trim:
        line = _trim(line, out_hz)
    out = np.rint(line * _INT16_FULL_SCALE)
    np.clip(out, -32768, 32767, out=out)
    samples = out.astype(np.int16)
    if ulaw:
        samples = g711.ulaw_decode(g711.ulaw_encode(samples))
    return samples


def _frame_rms(signal: NDArray[np.float64], frame: int) -> NDArray[np.float64]:
    count = max(1, -(-len(signal) // frame))
    padded = np.zeros(count * frame)
    padded[: len(signal)] = signal
    rms: NDArray[np.float64] = np.sqrt(np.mean(padded.reshape(count, frame) ** 2, axis=1))
    return rms


def _level_gain(signal: NDArray[np.float64], rate_hz: int, level_dbfs: float) -> float:
    rms = _frame_rms(signal, max(1, rate_hz * _FRAME_MS // 1000))
    loudest = float(rms.max())
    peak = float(np.max(np.abs(signal)))
    if loudest == 0.0 or peak == 0.0:
        return 1.0
    active = rms[rms >= loudest * 10 ** (-_ACTIVE_RANGE_DB / 20)]
    speech_rms = math.sqrt(float(np.mean(active**2)))
    gain = 10 ** (level_dbfs / 20) / speech_rms
    return min(gain, _PEAK_LIMIT / peak)


def _trim(signal: NDArray[np.float64], rate_hz: int) -> NDArray[np.float64]:
    frame = max(1, rate_hz * _TRIM_FRAME_MS // 1000)
    loud = np.flatnonzero(_frame_rms(signal, frame) >= 10 ** (_TRIM_THRESHOLD_DBFS / 20))
    if len(loud) == 0:
        return signal[:0]
    margin = rate_hz * _TRIM_MARGIN_MS // 1000
    start = max(0, int(loud[0]) * frame - margin)
    end = min(len(signal), (int(loud[-1]) + 1) * frame + margin)
    return signal[start:end]
