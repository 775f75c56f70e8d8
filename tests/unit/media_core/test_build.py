"""setup.py: the Cython kernels are optional, and a build without them still succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def build_ext(
    tmp_path: Path, env: dict[str, str] | None = None, prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``setup.py build_ext`` into ``tmp_path``, never touching the source tree's .so."""
    argv = [
        "setup.py",
        "build_ext",
        "--build-lib",
        str(tmp_path / "lib"),
        "--build-temp",
        str(tmp_path / "tmp"),
    ]
    run_setup = "exec(compile(open('setup.py').read(), 'setup.py', 'exec'))"
    code = f"{prelude}\nimport sys\nsys.argv = {argv!r}\n{run_setup}"
    full_env = {k: v for k, v in os.environ.items() if k != "HOTLINE_NO_EXTENSIONS"} | (env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def built_modules(tmp_path: Path) -> list[Path]:
    return list(tmp_path.rglob("_g711*.so"))


def test_hotline_no_extensions_builds_nothing_and_says_so(tmp_path: Path):
    result = build_ext(tmp_path, env={"HOTLINE_NO_EXTENSIONS": "1"})
    assert result.returncode == 0, result.stderr
    assert (
        "WARNING: HOTLINE_NO_EXTENSIONS is set: not building the Cython kernels." in result.stderr
    )
    assert built_modules(tmp_path) == []


def test_a_missing_cython_is_a_warning_not_a_failure(tmp_path: Path):
    result = build_ext(tmp_path, prelude="import sys\nsys.modules['Cython'] = None")
    assert result.returncode == 0, result.stderr
    assert "WARNING: Cython is not installed" in result.stderr
    assert built_modules(tmp_path) == []


def test_a_missing_c_compiler_is_a_warning_not_a_failure(tmp_path: Path):
    result = build_ext(tmp_path, env={"CC": str(tmp_path / "no-such-cc")})
    assert result.returncode == 0, result.stderr
    assert "WARNING: building media_core._g711 failed" in result.stderr
    assert "hotline will use the pure NumPy twins." in result.stderr
    assert built_modules(tmp_path) == []
