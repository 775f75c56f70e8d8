"""Generate the ASR test fixtures once: telephone-quality WAVs under tests/data/asr/.

English phrases come from hibari TTS (the en-US voice in its wheel), Korean ones
from espeak-ng (``-v ko``). Each is resampled to 8 kHz, padded with 300 ms of
silence on both sides, sent through G.711 µ-law and back (what a PCMU caller
sounds like after the media core), and written as 16-bit mono WAV. Run from
the repository root:

    .venv/bin/python tools/make_asr_fixtures.py

The WAVs are committed; the tests never synthesize speech.
"""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media_core.g711 import ulaw_decode, ulaw_encode
from media_core.resample import resample

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "asr"
RATE_HZ = 8000
PAD_S = 0.3

ENGLISH = {
    "en_toothache": "I have a toothache.",
    "en_chest": "My chest hurts.",
    "en_refill": "I need a refill.",
    "en_yes": "Yes.",
    "en_no": "No.",
}
KOREAN = {
    "ko_ne": "네",
    "ko_aniyo": "아니요",
    "ko_yeyak": "예약",
}


def _telephone(pcm: NDArray[np.int16], rate_hz: int) -> NDArray[np.int16]:
    narrow = resample(pcm, rate_hz, RATE_HZ)
    pad = np.zeros(int(PAD_S * RATE_HZ), dtype=np.int16)
    padded = np.concatenate((pad, narrow, pad))
    return ulaw_decode(ulaw_encode(padded))


def _float_to_int16(audio: NDArray[np.float32]) -> NDArray[np.int16]:
    peak = float(np.max(np.abs(audio))) or 1.0
    scaled = audio / peak * 0.7 * 32767  # -3 dBFS peak, like a loud phone line
    return np.asarray(np.round(scaled), dtype=np.int16)


def _espeak(text: str, voice: str) -> tuple[NDArray[np.int16], int]:
    wav_bytes = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(io.BytesIO(wav_bytes)) as reader:
        rate_hz = reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    return np.frombuffer(frames, dtype=np.int16).copy(), rate_hz


def _write(name: str, pcm: NDArray[np.int16]) -> None:
    path = OUT_DIR / f"{name}.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE_HZ)
        writer.writeframes(pcm.astype("<i2").tobytes())
    print(f"{path.name}: {len(pcm) / RATE_HZ:.2f} s")


def main() -> None:
    """Write every fixture."""
    from hibari import Hibari  # heavy (onnxruntime): only this tool needs it

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tts = Hibari()
    for name, text in ENGLISH.items():
        # 0.9x speed: at 1.0 "my chest hurts" came back "my can't hurts" for 3 of 3 seeds.
        audio = np.asarray(tts(text, speed=0.9, seed=1), dtype=np.float32)
        _write(name, _telephone(_float_to_int16(audio), 24000))
    for name, text in KOREAN.items():
        pcm, rate_hz = _espeak(text, "ko")
        _write(name, _telephone(pcm, rate_hz))


if __name__ == "__main__":
    main()
