"""ITU-T G.711 µ-law (PCMU) and A-law (PCMA): the public module.

The implementation is chosen once, at import: the Cython kernel ``_g711`` unless
``HOTLINE_NO_EXTENSIONS`` is set (to anything but empty or ``0``) or the kernel
is not built, else the NumPy twin ``_g711_py``. Both stay importable by name so
tests can hold them to identical output.

Decoders take bytes-like codes or a 1-D uint8 array and return a new int16
array; encoders take a 1-D int16 array and return bytes (an RTP payload). The
``*_into`` variants write into a caller's C-contiguous array of the input's
length and return nothing: the media tick encodes all calls' frames with one
call per codec.

Encoding follows G.711's decision values with the ITU-T G.191 reference
conventions (16-bit input truncated to 14/13 bits, negative samples mirrored by
one's complement). FFmpeg's encoder instead picks the nearest reconstruction
level; the two differ on 964 of the 65536 samples, each time by one level at a
segment edge or a tie. Decoding is identical everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from media_core import _g711_py, extensions
from media_core.extensions import extensions_disabled

__all__ = [
    "FALLBACK_REASON",
    "USING_EXTENSION",
    "alaw_decode",
    "alaw_decode_into",
    "alaw_encode",
    "alaw_encode_into",
    "extensions_disabled",
    "load_extension",
    "ulaw_decode",
    "ulaw_decode_into",
    "ulaw_encode",
    "ulaw_encode_into",
]

Codes = bytes | bytearray | memoryview | NDArray[np.uint8]
Decode = Callable[[Codes], NDArray[np.int16]]
Encode = Callable[[NDArray[np.int16]], bytes]
DecodeInto = Callable[[Codes, NDArray[np.int16]], None]
EncodeInto = Callable[[NDArray[np.int16], NDArray[np.uint8]], None]


def load_extension() -> tuple[ModuleType | None, str | None]:
    """Import the Cython kernel, whatever the environment says."""
    return extensions.load_extension("media_core._g711")


# FALLBACK_REASON says why the twin serves, if it does.
_implementation, FALLBACK_REASON = extensions.select("media_core._g711", _g711_py)
#: True when the Cython kernel serves this process.
USING_EXTENSION: bool = _implementation is not _g711_py

ulaw_decode: Decode = _implementation.ulaw_decode
ulaw_encode: Encode = _implementation.ulaw_encode
alaw_decode: Decode = _implementation.alaw_decode
alaw_encode: Encode = _implementation.alaw_encode
ulaw_decode_into: DecodeInto = _implementation.ulaw_decode_into
ulaw_encode_into: EncodeInto = _implementation.ulaw_encode_into
alaw_decode_into: DecodeInto = _implementation.alaw_decode_into
alaw_encode_into: EncodeInto = _implementation.alaw_encode_into
