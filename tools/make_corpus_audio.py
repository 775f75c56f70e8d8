"""Speak the development utterances in three voices at telephone quality: test fixtures.

Reads ``tests/data/corpus/utterances_dev.tsv`` (``text<TAB>intent``, a header
line) and writes, for each utterance ``NN`` (01, 02, ... in file order):

- ``tests/data/corpus/hibari-heart/NN.wav``: hibari-tts, voice "heart";
- ``tests/data/corpus/espeak-en-us/NN.wav``: espeak-ng en-us, its speed and
  pitch stepped through three values each from one utterance to the next, so the
  robotic voice is not one fixed voice;
- ``tests/data/corpus/flite-rms/NN.wav``: Debian flite 2.x, voice "rms" (a
  diphone-free clustergen male voice, unlike hibari's neural one);

each as ``ivr.tts.telephone_quality`` makes it (8 kHz, -18 dBFS speech level,
trimmed, G.711 µ-law round trip) with 0.2 s of silence before and 0.3 s after,
stored as µ-law WAV (format tag 7, 8 bits, one byte a sample, what SoX writes
with ``-e u-law``). Then ``tests/data/corpus/manifest.tsv``: file, voice, text,
intent, duration_s, engine (the synthesizer's full name, with its settings).

The fixtures are committed, not made at test time: another hibari or espeak-ng
version changes the audio. Run from the repository root:

    .venv/bin/python tools/make_corpus_audio.py

``--utterances FILE --out DIR --voices hibari-heart,flite-rms`` speaks another
text set (the held-out ``tests/data/intents_heldout.tsv``) into another folder,
for measuring without committing the audio.
"""

from __future__ import annotations

import argparse
import csv
import struct
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.tts import (
    TELEPHONE_RATE_HZ,
    EspeakSynthesizer,
    FliteSynthesizer,
    HibariSynthesizer,
    Synthesizer,
    telephone_quality,
)
from media_core import g711

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
LEAD_S = 0.2
TAIL_S = 0.3
# espeak-ng settings stepped per utterance: speed (words/min) and pitch (0..99).
ESPEAK_RATES_WPM = (145, 160, 175)
ESPEAK_PITCHES = (38, 50, 62)
_WAVE_FORMAT_MULAW = 7


VOICES = ("hibari-heart", "espeak-en-us", "flite-rms")


def voices(index: int, hibari: HibariSynthesizer | None) -> dict[str, Synthesizer]:
    """The voices for utterance ``index`` (0-based), by folder name."""
    found: dict[str, Synthesizer] = {}
    if hibari is not None:
        found["hibari-heart"] = hibari
    found["espeak-en-us"] = EspeakSynthesizer(
        "en-us",
        rate_wpm=ESPEAK_RATES_WPM[index % 3],
        pitch=ESPEAK_PITCHES[index // 3 % 3],
    )
    found["flite-rms"] = FliteSynthesizer("rms")
    return found


def ulaw_wav(pcm: NDArray[np.int16], rate_hz: int) -> bytes:
    """A µ-law WAV file: RIFF, an 18-byte ``fmt `` (tag 7), ``fact``, ``data``."""
    codes = g711.ulaw_encode(pcm)
    fmt = struct.pack("<HHIIHHH", _WAVE_FORMAT_MULAW, 1, rate_hz, rate_hz, 1, 8, 0)
    fact = struct.pack("<I", len(codes))  # non-PCM WAVs carry their sample count
    body = b"WAVE"
    body += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<I", len(fact)) + fact
    body += b"data" + struct.pack("<I", len(codes)) + codes
    if len(codes) % 2:
        body += b"\0"  # chunks are padded to even sizes
    return b"RIFF" + struct.pack("<I", len(body)) + body


def main(argv: list[str] | None = None) -> int:
    """Write the corpus audio and manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help="corpus folder")
    parser.add_argument(
        "--utterances", type=Path, default=None, help="text<TAB>intent file (default: dev)"
    )
    parser.add_argument("--voices", default=",".join(VOICES), help="comma-separated folders")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wanted = [v for v in args.voices.split(",") if v]
    unknown = set(wanted) - set(VOICES)
    if unknown:
        parser.error(f"unknown voices {sorted(unknown)}; known: {', '.join(VOICES)}")
    source = args.utterances or out / "utterances_dev.tsv"
    with source.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    hibari = None
    if "hibari-heart" in wanted:
        hibari = HibariSynthesizer("heart")  # one model load for every utterance
        hibari.load()  # before the clock starts: the RTF printed is synthesis only
    header = ["file", "voice", "text", "intent", "duration_s", "engine"]
    # Rows of voices not spoken this time stay as they are (their audio is kept).
    made: dict[str, list[str]] = {}
    if (out / "manifest.tsv").exists():
        with (out / "manifest.tsv").open(encoding="utf-8", newline="") as f:
            for old in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if old["voice"] not in wanted:
                    made[old["file"]] = [old[k] for k in header]
    spent_s: dict[str, float] = {}
    spoken_s: dict[str, float] = {}
    lead = np.zeros(round(LEAD_S * TELEPHONE_RATE_HZ), dtype=np.int16)
    tail = np.zeros(round(TAIL_S * TELEPHONE_RATE_HZ), dtype=np.int16)
    for index, row in enumerate(rows):
        for voice, synthesizer in voices(index, hibari).items():
            if voice not in wanted:
                continue
            started = time.perf_counter()
            samples, rate_hz = synthesizer.synthesize(row["text"])
            spent_s[voice] = spent_s.get(voice, 0.0) + time.perf_counter() - started
            spoken_s[voice] = spoken_s.get(voice, 0.0) + len(samples) / rate_hz
            speech = telephone_quality(samples, rate_hz, trim=True)
            pcm = np.concatenate((lead, speech, tail))
            name = f"{voice}/{index + 1:02d}.wav"
            (out / voice).mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(ulaw_wav(pcm, TELEPHONE_RATE_HZ))
            duration_s = len(pcm) / TELEPHONE_RATE_HZ
            made[name] = [
                name, voice, row["text"], row["intent"], f"{duration_s:.3f}", synthesizer.name
            ]

    def order(row: list[str]) -> tuple[str, int]:
        voice, number = row[0].split("/")
        return number, VOICES.index(voice) if voice in VOICES else len(VOICES)

    manifest = [header, *sorted(made.values(), key=order)]
    with (out / "manifest.tsv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n").writerows(
            manifest
        )
    for voice, spent in spent_s.items():
        print(
            f"{voice}: {spoken_s[voice]:.1f} s of speech in {spent:.2f} s "
            f"(RTF {spent / spoken_s[voice]:.4f})"
        )
    print(f"{len(manifest) - 1} files and manifest.tsv in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
