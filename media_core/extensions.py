"""Choosing between a Cython kernel and its pure twin, once, at import time.

As aiohttp does for its ``_websocket`` mask: every kernel module calls
``select`` when it is imported, and ``HOTLINE_NO_EXTENSIONS`` (any value but
empty or ``0``) forces the twin everywhere. ``setup.py`` reads the variable the
same way, so a build without kernels and a run without them agree.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["extensions_disabled", "load_extension", "select"]


def extensions_disabled() -> bool:
    """Whether ``HOTLINE_NO_EXTENSIONS`` asks for the pure twins."""
    return os.environ.get("HOTLINE_NO_EXTENSIONS", "") not in ("", "0")


def load_extension(name: str) -> tuple[ModuleType | None, str | None]:
    """Import the Cython kernel ``name``, whatever the environment says.

    Returns:
        ``(module, None)``, or ``(None, why)`` when it is not built or fails to load.
    """
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, f"{name} is not built ({exc}); run `python setup.py build_ext --inplace`"


def select(name: str, twin: ModuleType) -> tuple[ModuleType, str | None]:
    """The kernel ``name`` unless disabled or missing, else ``twin``; and why the twin."""
    if extensions_disabled():
        return twin, "HOTLINE_NO_EXTENSIONS is set"
    module, error = load_extension(name)
    return (module, None) if module is not None else (twin, error)
