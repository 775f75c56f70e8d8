"""The store under test, on both backends: SQLite in a temporary file and PostgreSQL
in a throwaway cluster (one per session, its test database emptied for each test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conversations import Store, open_store
from tests.pg import PostgresUnavailable, ThrowawayPostgres

START = 1_800_000_000.0  # 2027-01-15: the fake clock's start


class FakeClock:
    """The store's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    try:
        cluster = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL store tests need a server: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"
    cluster: ThrowawayPostgres = request.getfixturevalue("postgres")
    return cluster.empty_database()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(store_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    store = open_store(store_url, clock=clock)
    await store.start()
    yield store
    await store.close()
