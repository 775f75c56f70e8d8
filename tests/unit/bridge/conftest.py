"""The bridge under test: the real app over a real SQLite store in tmp_path, aiohttp's client.

``bridge`` gives a ``Bridge`` with helpers to add users and tokens and to log
in (each login returns the session's CSRF token). Passwords are hashed once
per test session: argon2 costs tens of milliseconds by design.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.app import create_app
from bridge.auth import hash_password, new_api_token, token_hash
from bridge.keys import HUB
from bridge.live import StaticLive
from bridge.settings import BridgeSettings
from conversations import open_store

PASSWORD = "correct horse battery"
SECRET = b"s" * 32


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    return hash_password(password)


@dataclass
class Bridge:
    client: TestClient
    store: Any
    live: StaticLive
    settings: BridgeSettings
    csrf: dict[str, str] = field(default_factory=dict)

    @property
    def hub(self) -> Any:
        return self.client.server.app[HUB]

    async def add_user(self, name: str, *roles: str) -> Any:
        return await self.store.add_user(name, set(roles), password_hash())

    async def add_token(self, name: str, *scopes: str) -> str:
        token = new_api_token()
        await self.store.add_token(name, set(scopes), token_hash(token))
        return token

    async def login(self, name: str, *roles: str, password: str = PASSWORD) -> str:
        """Add the user (if roles are given), log in, return the CSRF token."""
        if roles:
            await self.add_user(name, *roles)
        reply = await self.client.post("/api/login", json={"name": name, "password": password})
        assert reply.status == 200, await reply.text()
        body = await reply.json()
        self.csrf[name] = body["csrf_token"]
        return str(body["csrf_token"])

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def json(self, method: str, path: str, status: int, **options: Any) -> Any:
        """Call and assert the status; return the JSON body."""
        reply = await self.client.request(method, path, **options)
        text = await reply.text()
        assert reply.status == status, f"{method} {path}: {reply.status} {text}"
        return await reply.json() if text else None


async def make_bridge(tmp_path: Path, **settings: Any) -> AsyncIterator[Bridge]:
    store = open_store(f"sqlite:///{tmp_path}/hotline.db")
    await store.start()
    live = StaticLive()
    bridge_settings = BridgeSettings(secret_key=SECRET, **settings)
    app = create_app(store, live, bridge_settings)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Bridge(client, store, live, bridge_settings)
    finally:
        await store.close()


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    async for made in make_bridge(tmp_path):
        yield made
