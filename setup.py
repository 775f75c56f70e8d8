"""Build hotline's Cython kernels; everything else is declared in pyproject.toml.

The kernels are optional: every one has a pure NumPy twin. The build skips them,
with a warning, when ``HOTLINE_NO_EXTENSIONS=1`` is set, when Cython is not
installed or when compiling fails, so ``pip install`` always succeeds.
``pip install -e .`` and ``python setup.py build_ext --inplace`` both put the
compiled module next to its ``.pyx``.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError

CYTHON_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
}

KERNELS = {
    "media_core._g711": ["media_core/_g711.pyx"],
    "media_core._goertzel": ["media_core/_goertzel.pyx"],
    "media_core._mix": ["media_core/_mix.pyx"],
    "media_core._udp_batch": ["media_core/_udp_batch.pyx"],
}


def warn(message: str) -> None:
    """Say loudly that hotline falls back to its pure-Python twins."""
    bar = "*" * 78
    print(
        f"\n{bar}\nWARNING: {message}\nhotline will use the pure NumPy twins.\n{bar}\n",
        file=sys.stderr,
    )


def no_extensions_requested() -> bool:
    """``HOTLINE_NO_EXTENSIONS`` set to anything but empty or 0 (as media_core reads it)."""
    return os.environ.get("HOTLINE_NO_EXTENSIONS", "") not in ("", "0")


def extensions() -> list[Extension]:
    """The kernels to build, already cythonized; none when they cannot be."""
    if no_extensions_requested():
        warn("HOTLINE_NO_EXTENSIONS is set: not building the Cython kernels.")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        warn("Cython is not installed: not building the Cython kernels.")
        return []
    modules = [
        Extension(name, sources, extra_compile_args=["-O3"]) for name, sources in KERNELS.items()
    ]
    try:
        return list(cythonize(modules, compiler_directives=CYTHON_DIRECTIVES, quiet=True))
    except Exception as exc:  # Cython raises its own CompileError types
        warn(f"Cython could not translate the kernels ({exc}).")
        return []


class OptionalBuildExt(build_ext):
    """``build_ext`` that warns instead of failing when there is no working C compiler."""

    def run(self) -> None:
        """Build every kernel; a missing compiler leaves the twins in charge."""
        try:
            super().run()
        except (PlatformError, ExecError, CCompilerError, CompileError, OSError) as exc:
            warn(f"no usable C compiler ({exc}).")

    def build_extension(self, ext: Extension) -> None:
        """Build one kernel; a compile error leaves its twin in charge."""
        try:
            super().build_extension(ext)
        except (ExecError, CCompilerError, CompileError, OSError) as exc:
            warn(f"building {ext.name} failed ({exc}).")


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
