"""benchmarks/search.py's own parts: its data, its query mix, a tiny fill (not its figures)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks import search as bench
from conversations import open_store
from conversations.search_query import parse


@pytest.fixture(scope="module")
def talk() -> bench.Talk:
    return bench.Talk(seed=1)


def test_every_query_of_the_mix_is_valid_syntax(talk):
    for probe in bench.query_mix(talk):
        parse(probe.text)  # raises InvalidValue on bad syntax


def test_the_data_is_reproducible_and_in_time_order(talk):
    count = 200
    plans = [bench.plan(talk, 1, index, count, 100) for index in range(count)]
    assert plans == [bench.plan(talk, 1, index, count, 100) for index in range(count)]
    starts = [p.started_at for p in plans]
    assert starts == sorted(starts) and bench.BEGIN <= starts[0] and starts[-1] < bench.END
    calls = [p for p in plans if not p.chat]
    assert 0.8 < len(calls) / count < 0.97
    words = []
    for planned in calls:
        segments, duration_s = bench.timed_segments(talk, planned)
        assert segments[0].speaker == "agent" and segments[1].speaker == "customer"
        timed = [w for s in segments for w in s.words]
        assert all(a.end_ms <= b.start_ms for a, b in zip(timed, timed[1:], strict=False))
        assert duration_s * 1000 > timed[-1].end_ms
        words.append(len(timed))
    assert 35 < sum(words) / len(words) < 70  # ~50: several million words at 100,000


def test_a_tiny_fill_is_searchable(tmp_path: Path, talk):
    async def run() -> tuple[bench.FillStats, dict]:
        clock = bench.Clock()
        async with open_store(f"sqlite:///{tmp_path / 'bench.db'}", clock=clock) as store:
            stats = await bench.fill(store, clock, talk, 60, seed=1)
            jobs = await store.transcription_jobs("pending")
            figures = await bench.run_queries(store, bench.query_mix(talk)[:12], 1, seed=1)
            return stats, {"pending": jobs, **figures}

    stats, figures = asyncio.run(run())
    assert stats.conversations + stats.chats == 60 and stats.words > 0
    assert figures["pending"] == []  # every registered recording was transcribed
    assert figures["queries"] == 12 and figures["p95_ms"] >= figures["p50_ms"] > 0
    help_row = next(row for row in figures["rows"] if row["query"] == "help")
    assert help_row["hits"] > 0  # in every greeting
