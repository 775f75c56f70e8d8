"""The scale-out backend: PostgreSQL through an asyncpg connection pool.

Same operations, same semantics as SQLite (``operations``): the shared SQL's
``?`` placeholders become ``$1, $2...`` here. Reads run in read-only
REPEATABLE READ transactions, so an operation of several statements (a
customer and its identities) sees one snapshot; the writer's batches take a
pooled connection each and commit in one transaction. Several hotline nodes may
share the database: migrations take an advisory lock, and the writes that
could race between nodes (claiming an identity, a user name, a call id) rely
on unique constraints.
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type hints

from conversations.errors import Conflict, StoreError
from conversations.operations import Op, Query, Row, drive_async
from conversations.store import Store

__all__ = ["PostgresStore"]

T = TypeVar("T")
_CONNECT_TIMEOUT_S = 10.0
# asyncpg raises these for a failed statement, a lost or broken connection, or a
# pool that cannot connect; none of them may leave the store as such.
_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """The shared SQL with PostgreSQL's numbered placeholders (``?`` -> ``$1``...)."""
    parts = sql.split("?")  # the shared SQL has no '?' inside string literals
    return "".join(f"{part}${index}" for index, part in enumerate(parts[:-1], 1)) + parts[-1]


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresStore(Store):
    """The store in a PostgreSQL database; see the module docstring."""

    dialect = "postgresql"

    def __init__(
        self, url: str, *, min_connections: int = 1, max_connections: int = 10, **options: Any
    ) -> None:
        """Configure for the database at ``url`` (a libpq-style ``postgresql://`` URL).

        Args:
            url: ``postgresql://user[:password]@host:port/db``.
            min_connections: connections the pool keeps open.
            max_connections: connections it opens at most (the writer uses one).
            **options: ``Store`` options.
        """
        super().__init__(**options)
        self.url = url
        self._min, self._max = min_connections, max_connections
        self._pool: asyncpg.Pool | None = None

    async def _open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._min, max_size=self._max, timeout=_CONNECT_TIMEOUT_S
            )
        except (*_DRIVER_ERRORS, ValueError) as exc:  # ValueError: a malformed URL
            raise StoreError(f"cannot connect to {redacted(self.url)}: {exc}") from None

    async def _close(self) -> None:
        if self._pool is not None:
            try:
                await self._pool.close()
            except _DRIVER_ERRORS:
                self._pool.terminate()
            self._pool = None

    async def _transaction(self, op: Op[T], *, readonly: bool = False) -> T:
        if self._pool is None:
            raise StoreError("the PostgreSQL store is not open")
        try:
            async with self._pool.acquire() as connection:
                if readonly:
                    transaction = connection.transaction(isolation="repeatable_read", readonly=True)
                else:
                    transaction = connection.transaction()
                async with transaction:

                    async def execute(query: Query) -> list[Row]:
                        return await self._execute(connection, query)

                    return await drive_async(execute, op)
        except _DRIVER_ERRORS as exc:  # BEGIN or COMMIT failed, or the connection
            raise StoreError(f"postgresql: {exc}") from None

    @staticmethod
    async def _execute(connection: asyncpg.Connection, query: Query) -> list[Row]:
        sql = numbered(query.sql)
        try:
            if query.many:
                await connection.executemany(sql, query.params)
                return []
            return [tuple(record) for record in await connection.fetch(sql, *query.params)]
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise Conflict(f"postgresql: {exc}") from None
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from None
