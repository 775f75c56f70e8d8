"""Fixtures of the recordings tests: the store (SQLite, PostgreSQL; fake clock), flow phrases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conversations import Store, open_store
from tests.pg import PostgresUnavailable, ThrowawayPostgres

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


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    try:
        cluster = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL store tests need a server: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Store]:
    """An empty store on each backend (several nodes share a PostgreSQL one)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hotline.db'}"
    else:
        url = request.getfixturevalue("postgres").empty_database()
    store = open_store(url, clock=clock)
    await store.start()
    yield store
    await store.close()
