"""What the store raises: one base class, and a subclass per answer a caller can give.

The bridge maps them to HTTP: ``InvalidValue`` to 400, ``NotFound`` to 404,
``Conflict`` (``IdentityTaken``, ``UserExists``) to 409, ``StoreOverloaded``
to 503, any other ``StoreError`` to 503 as well (the database failed, not the
request). Driver exceptions (``sqlite3.Error``, ``asyncpg.PostgresError``)
never leave the store: they arrive as a ``StoreError`` naming the operation.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "IdentityTaken",
    "InvalidValue",
    "NotFound",
    "StoreClosed",
    "StoreError",
    "StoreOverloaded",
    "UserExists",
]


class StoreError(Exception):
    """Anything the store could not do."""


class InvalidValue(StoreError, ValueError):
    """An argument the store cannot take (unknown status, bad phone number...)."""


class NotFound(StoreError, LookupError):
    """An id or name that does not exist was passed to a change."""


class Conflict(StoreError):
    """The change would break a uniqueness rule (a call id, a token hash...)."""


class IdentityTaken(Conflict):
    """The identity already belongs to another customer: merge them instead."""

    def __init__(self, kind: str, value: str, customer_id: int) -> None:
        super().__init__(f"{kind} identity {value!r} belongs to customer {customer_id}")
        self.kind, self.value, self.customer_id = kind, value, customer_id


class UserExists(Conflict):
    """A user with that name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} exists already")
        self.name = name


class StoreClosed(StoreError):
    """The store was not started, or was closed."""


class StoreOverloaded(StoreError):
    """Too many writes wait for the database; this one was not queued."""
