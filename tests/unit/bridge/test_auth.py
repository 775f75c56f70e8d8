"""Passwords, sessions, CSRF, API tokens and the secret key file."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from bridge.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginGuard,
    csrf_token,
    hash_password,
    load_or_create_secret,
    sign_session,
    token_hash,
    unsign_session,
    verify_password,
)
from tests.unit.bridge.conftest import PASSWORD, SECRET, Bridge, make_bridge

# ------------------------------------------------------------------ helpers in isolation


def test_passwords_are_argon2id_and_verify() -> None:
    hashed = hash_password("s3cret-enough")
    assert hashed.startswith("$argon2id$")
    assert "s3cret-enough" not in hashed
    assert verify_password(hashed, "s3cret-enough")
    assert not verify_password(hashed, "s3cret-enougH")
    assert not verify_password(None, "s3cret-enough")
    assert not verify_password("not-a-hash", "x")


def test_session_cookie_is_signed_and_ages(monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = sign_session(SECRET, "tok")
    assert unsign_session(SECRET, cookie, 60) == "tok"
    assert unsign_session(b"o" * 32, cookie, 60) is None  # another key
    assert unsign_session(SECRET, cookie[:-2] + "xx", 60) is None  # altered
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    assert unsign_session(SECRET, cookie, 60) is None  # too old


def test_csrf_token_is_bound_to_the_session_and_key() -> None:
    assert csrf_token(SECRET, "a") == csrf_token(SECRET, "a")
    assert csrf_token(SECRET, "a") != csrf_token(SECRET, "b")
    assert csrf_token(SECRET, "a") != csrf_token(b"o" * 32, "a")


def test_secret_file_is_created_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret"
    key = load_or_create_secret(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == key


def test_secret_file_open_to_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_or_create_secret(path)


def test_short_or_garbled_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("abcd\n")
    os.chmod(path, 0o600)
    with pytest.raises(ValueError, match="shorter"):
        load_or_create_secret(path)
    path.write_text("zz" * 32)
    with pytest.raises(ValueError, match="hexadecimal"):
        load_or_create_secret(path)


def test_login_guard_blocks_after_failures_then_forgets() -> None:
    guard = LoginGuard(max_failures=3, window_s=60)
    for now in (0.0, 1.0, 2.0):
        assert guard.retry_after_s("ann", now) == 0
        guard.failed("ann", now)
    assert guard.retry_after_s("ann", 3.0) == pytest.approx(57.0)
    assert guard.retry_after_s("bob", 3.0) == 0
    assert guard.retry_after_s("ann", 60.5) == 0  # the first failure aged out
    guard.succeeded("ann")
    assert guard.retry_after_s("ann", 61.0) == 0


# --------------------------------------------------------------------------- over HTTP


async def test_login_sets_a_strict_httponly_cookie_and_returns_csrf(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    reply = await bridge.client.post("/api/login", json={"name": "ann", "password": PASSWORD})
    assert reply.status == 200
    body = await reply.json()
    assert body["name"] == "ann" and body["roles"] == ["agent"] and body["kind"] == "user"
    assert body["csrf_token"]
    cookie = reply.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert not cookie["secure"]
    assert cookie["path"] == "/"
    # The store keeps the hash of the session token, never the token itself.
    session_token = unsign_session(SECRET, cookie.value, 3600)
    assert session_token is not None
    assert (await bridge.store.get_session(token_hash(session_token))).name == "ann"
    me = await bridge.json("GET", "/api/me", 200)
    assert me["csrf_token"] == body["csrf_token"]


async def test_secure_cookies_when_configured(tmp_path: Path) -> None:
    async for bridge in make_bridge(tmp_path, cookie_secure=True):
        await bridge.add_user("ann", "agent")
        reply = await bridge.client.post("/api/login", json={"name": "ann", "password": PASSWORD})
        assert reply.cookies[SESSION_COOKIE]["secure"] is True


async def test_wrong_password_and_unknown_user_get_the_same_401(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    wrong = await bridge.json("POST", "/api/login", 401, json={"name": "ann", "password": "nope"})
    unknown = await bridge.json("POST", "/api/login", 401, json={"name": "zed", "password": "x"})
    assert wrong == unknown == {"error": "wrong name or password"}
    entries = await bridge.store.audit_log(target="user:ann")
    assert [e.action for e in entries] == ["login.failed"]


async def test_disabled_user_cannot_log_in(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    await bridge.store.set_user_disabled("ann", True)
    await bridge.json("POST", "/api/login", 401, json={"name": "ann", "password": PASSWORD})


async def test_repeated_failures_get_429_with_retry_after(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    for _ in range(10):
        await bridge.json("POST", "/api/login", 401, json={"name": "ann", "password": "guess"})
    reply = await bridge.client.post("/api/login", json={"name": "ann", "password": PASSWORD})
    assert reply.status == 429
    assert int(reply.headers["Retry-After"]) > 0


async def test_unsafe_requests_with_the_cookie_need_the_csrf_token(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    body = {"state": "available"}
    missing = await bridge.json("PUT", "/api/agents/ann/state", 403, json=body)
    assert missing["field"] == CSRF_HEADER
    await bridge.json(
        "PUT", "/api/agents/ann/state", 403, json=body, headers={CSRF_HEADER: "0" * 64}
    )
    done = await bridge.json(
        "PUT", "/api/agents/ann/state", 200, json=body, headers={CSRF_HEADER: csrf}
    )
    assert done["state"] == "available"
    # Reads need no token.
    await bridge.json("GET", "/api/agents", 200)


async def test_bearer_requests_are_exempt_from_csrf(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    token = await bridge.add_token("crm", "agents:write")
    await bridge.json(
        "PUT", "/api/agents/ann/state", 200, json={"state": "paused"}, headers=bridge.bearer(token)
    )


async def test_logout_ends_the_session_on_the_server(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    cookie = bridge.client.session.cookie_jar.filter_cookies(bridge.client.make_url("/"))
    stolen = cookie[SESSION_COOKIE].value
    await bridge.json("POST", "/api/logout", 403)  # without CSRF: refused
    await bridge.json("POST", "/api/logout", 204, headers={CSRF_HEADER: csrf})
    # The old cookie replayed after logout does not work: the session is gone server-side.
    replay = await bridge.client.get("/api/me", cookies={SESSION_COOKIE: stolen})
    assert replay.status == 401


async def test_expired_session_is_refused(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    await bridge.store.add_session(token_hash("old"), "ann", time.time() - 1)
    reply = await bridge.client.get(
        "/api/me", cookies={SESSION_COOKIE: sign_session(SECRET, "old")}
    )
    assert reply.status == 401


async def test_forged_cookie_is_refused(bridge: Bridge) -> None:
    await bridge.add_user("ann", "agent")
    await bridge.store.add_session(token_hash("tok"), "ann", time.time() + 60)
    forged = sign_session(b"f" * 32, "tok")
    reply = await bridge.client.get("/api/me", cookies={SESSION_COOKIE: forged})
    assert reply.status == 401


@pytest.mark.parametrize(
    "authorization",
    ["Bearer hl_unknown", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "hl_token"],
)
async def test_bad_authorization_headers_get_401(bridge: Bridge, authorization: str) -> None:
    reply = await bridge.client.get("/api/agents", headers={"Authorization": authorization})
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in await reply.json()


async def test_revoked_token_gets_401(bridge: Bridge) -> None:
    token = await bridge.add_token("crm", "agents:read")
    await bridge.json("GET", "/api/agents", 200, headers=bridge.bearer(token))
    (listed,) = await bridge.store.list_tokens()
    await bridge.store.revoke_token(listed.id)
    await bridge.json("GET", "/api/agents", 401, headers=bridge.bearer(token))


async def test_token_without_the_scope_gets_403(bridge: Bridge) -> None:
    token = await bridge.add_token("crm", "agents:read")
    error = await bridge.json("GET", "/api/queues", 403, headers=bridge.bearer(token))
    assert "queues:read" in error["error"]
    me = await bridge.json("GET", "/api/me", 200, headers=bridge.bearer(token))
    assert me == {
        "name": "crm",
        "kind": "token",
        "roles": [],
        "scopes": ["agents:read"],
        "csrf_token": None,
        "state": None,
    }


async def test_session_only_routes_refuse_tokens(bridge: Bridge) -> None:
    token = await bridge.add_token("crm", "messages:write", "agents:write")
    error = await bridge.json(
        "POST", "/api/conversations/1/take", 403, headers=bridge.bearer(token)
    )
    assert "not available to API tokens" in error["error"]
    await bridge.json("POST", "/api/logout", 403, headers=bridge.bearer(token))


async def test_no_credentials_get_401(bridge: Bridge) -> None:
    for path in ("/api/agents", "/api/conversations", "/api/audit", "/api/me"):
        reply = await bridge.client.get(path)
        assert reply.status == 401, path
