"""Fixtures of the recordings tests: the store (SQLite, fake clock) and the demo flow's phrases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conversations import Store, open_store

START = 1_800_000_000.0  # the fake clock's start (2027-01-15)


@pytest.fixture(scope="session")
def hospital_phrases() -> tuple[str, ...]:
    """The demo flow's intent and operator phrases, as the server gives them."""
    from ivr.flow import Flow

    flow = Flow.from_file(Path(__file__).resolve().parents[3] / "ivr" / "flows" / "hospital.yaml")
    return tuple(flow.matcher.phrases()) + tuple(flow.operator.phrases)


class FakeClock:
    """The store's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'hotline.db'}", clock=clock)
    await store.start()
    yield store
    await store.close()
