"""Fixtures of the integration tests: real peers (SIPp, pjsua2, baresip) against hotline.

Every test here is marked ``integration``. A peer that is not installed skips its
tests with the reason; ``make test`` installs them all, so in CI they run.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The test modules import ``tests.integration.helpers``; make that work however pytest
# was launched (``python -m pytest`` puts the repo on sys.path, ``.venv/bin/pytest`` not).
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.integration.helpers import HotlineProcess  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def sipp() -> str:
    """The SIPp binary, or skip."""
    binary = shutil.which("sipp")
    if binary is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    return binary


@pytest.fixture
def hotline_factory(tmp_path: Path) -> Iterator[Callable[..., HotlineProcess]]:
    """Start ``hotline serve`` subprocesses; each is stopped (SIGKILL at worst) afterwards.

    On a failing test the server's log tail is printed, which is usually the evidence.
    """
    started: list[HotlineProcess] = []

    def start(name: str = "hotline", **options: object) -> HotlineProcess:
        server = HotlineProcess(tmp_path / name, **options)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop(timeout_s=5)
        print(f"--- {server.log_path} (tail) ---\n{server.log_text()[-3000:]}")


@pytest.fixture
def hotline(hotline_factory: Callable[..., HotlineProcess]) -> HotlineProcess:
    """One server with the embedded defaults on free loopback ports."""
    return hotline_factory()
