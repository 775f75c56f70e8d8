"""The embedded backend: the standard library's sqlite3 on one dedicated thread.

The connection lives on a single-thread executor, so every statement runs off
the event loop and no two ever run at once (sqlite3 connections are not shared
between threads). The loop only awaits the executor's futures.

The database is a file (by default ``./var/hotline.db``, its directory created)
in WAL mode, so readers in other processes (``hotline user add`` beside a
running server) do not block the writer, with foreign keys enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from conversations.errors import Conflict, StoreError
from conversations.operations import Op, Query, Row, drive_sync
from conversations.store import Store

__all__ = ["SqliteStore"]

T = TypeVar("T")
_BUSY_TIMEOUT_MS = 5000  # another process holding the write lock (a CLI command) gets this long


class SqliteStore(Store):
    """The store in one SQLite file; see the module docstring."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, **options: Any) -> None:
        """Configure for the database file ``path`` (``:memory:`` for a private one).

        Args:
            path: the file; relative paths are relative to the working directory.
            **options: ``Store`` options.
        """
        super().__init__(**options)
        self.path = str(path)
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    async def _open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotline-sqlite")
        try:
            await self._call(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    async def _close(self) -> None:
        if self._connection is not None:
            await self._call(self._connection.close)
            self._connection = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)  # idle by now: its thread just exits
            self._executor = None

    async def _transaction(self, op: Op[T], *, readonly: bool = False) -> T:
        result: T = await self._call(self._run, op, readonly)
        return result

    async def _call(self, function: Any, *args: Any) -> Any:
        if self._executor is None:
            raise StoreError("the SQLite store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # ------------------------------------------------------------ on the store's thread

    def _connect(self) -> None:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of {self.path}: {exc}") from None
        try:
            # isolation_level=None: sqlite3 issues no implicit BEGIN; _run brackets
            # each operation itself.
            connection = sqlite3.connect(self.path, isolation_level=None, cached_statements=512)
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal" and self.path != ":memory:":
                raise StoreError(f"{self.path}: cannot use WAL mode (got {mode!r})")
            # WAL + synchronous=NORMAL: a COMMIT has written the transaction to the
            # WAL file (the OS holds it) before it returns, so a committed
            # transaction survives the process being killed (SIGKILL, a crash);
            # only an OS crash or power cut can lose the last few commits, which
            # FULL would fsync at every commit. The database stays consistent
            # either way.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from None
        self._connection = connection

    def _execute(self, query: Query) -> list[Row]:
        connection = self._connection
        assert connection is not None
        try:
            if query.many:
                connection.executemany(query.sql, query.params)
                return []
            return connection.execute(query.sql, query.params).fetchall()
        except sqlite3.IntegrityError as exc:  # UNIQUE, FOREIGN KEY, NOT NULL
            raise Conflict(f"sqlite: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from None

    def _run(self, op: Op[Any], readonly: bool) -> Any:
        connection = self._connection
        if connection is None:
            raise StoreError("the SQLite store is closed")
        try:
            # IMMEDIATE takes the write lock up front: a deferred transaction that
            # reads and then writes can fail with SQLITE_BUSY when another process
            # wrote in between, and busy_timeout cannot help it.
            connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: cannot begin a transaction: {exc}") from None
        try:
            result = drive_sync(self._execute, op)
            connection.execute("COMMIT")
        except BaseException as exc:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # keep the first error
                    connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"sqlite: commit failed: {exc}") from None
            raise
        return result
