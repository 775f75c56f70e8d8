"""The SQLite backend runs every statement on its one dedicated thread, never on
the event loop's thread."""

from __future__ import annotations

import threading
from pathlib import Path

from conversations import open_store


async def test_every_statement_runs_on_one_thread_that_is_not_the_loops(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'nested' / 'dirs' / 'hotline.db'}")
    await store.start()
    threads: list[int] = []
    statements: list[str] = []

    def trace(statement: str) -> None:
        threads.append(threading.get_ident())
        statements.append(statement)

    try:
        await store._call(store._connection.set_trace_callback, trace)
        ann = await store.customer_for("phone", "+15551234567")
        call = await store.open_conversation(ann.id, "voice")
        await store.record_event(call.id, "ringing", {})
        assert [e.kind for e in await store.events(call.id)] == ["ringing"]
    finally:
        await store.close()
    assert (tmp_path / "nested" / "dirs" / "hotline.db").exists()  # parents created
    assert any("INSERT INTO events" in s for s in statements)
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()


async def test_the_database_is_in_wal_mode_with_foreign_keys_on(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'hotline.db'}")
    await store.start()
    try:
        connection = store._connection
        pragmas = await store._call(
            lambda: [
                connection.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys")
            ]
        )
    finally:
        await store.close()
    assert pragmas == ["wal", 1, 1]  # synchronous 1 is NORMAL


async def test_the_default_url_puts_the_database_under_var(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store()
    await store.start()
    await store.close()
    assert (tmp_path / "var" / "hotline.db").is_file()
