"""The spoken test corpus (tests/data/corpus): its manifest and its WAV files.

Independent of ``ivr``: the corpus is read the same way whatever the code under
test does. The files are µ-law WAV (format tag 7) at 8 kHz; 16-bit PCM WAV is
read too, so a regenerated corpus may use either.
"""

from __future__ import annotations

import csv
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media_core.g711 import ulaw_decode

CORPUS_DIR = Path(__file__).resolve().parent / "data" / "corpus"
RATE_HZ = 8000
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_MULAW = 7


@dataclass(frozen=True, slots=True)
class CorpusItem:
    """One utterance in one voice."""

    path: Path
    voice: str  # the folder: "hibari-heart", "espeak-en-us" or "flite-rms"
    text: str
    intent: str


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> list[CorpusItem]:
    """Every file of ``manifest.tsv``, in its order."""
    with (corpus_dir / "manifest.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [
        CorpusItem(corpus_dir / row["file"], row["voice"], row["text"], row["intent"])
        for row in rows
    ]


def read_wav_8k(path: Path) -> NDArray[np.int16]:
    """The samples of an 8 kHz mono µ-law or 16-bit PCM WAV file, as int16."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    offset, fmt = 12, None
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", body)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError(f"{path}: data before fmt")
            tag, channels, rate_hz, _, _, bits = fmt
            if channels != 1 or rate_hz != RATE_HZ:
                raise ValueError(f"{path}: {channels} channels at {rate_hz} Hz, not 8 kHz mono")
            if tag == _WAVE_FORMAT_MULAW and bits == 8:
                return ulaw_decode(body)
            if tag == _WAVE_FORMAT_PCM and bits == 16:
                return np.frombuffer(body, dtype="<i2").astype(np.int16)
            raise ValueError(f"{path}: format tag {tag}, {bits} bits")
        offset += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")
