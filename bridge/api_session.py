"""Log in, log out and ``/api/me``: the browser session's REST side (see ``auth``)."""

from __future__ import annotations

import math
import time
from typing import Any

from aiohttp import web

from bridge.auth import (
    SESSION_COOKIE,
    Principal,
    csrf_token,
    new_session_token,
    sign_session,
    token_hash,
    verify_password,
)
from bridge.errors import ApiError
from bridge.hub import session_topic
from bridge.keys import LOGIN_GUARD
from bridge.operations import ApiRequest, OperationHandler

__all__ = ["HANDLERS", "set_session_cookie"]


def me_json(call: ApiRequest, principal: Principal, state: str | None) -> dict[str, Any]:
    """The ``Me`` object of a principal."""
    token = principal.session_token
    return {
        "name": principal.name,
        "kind": principal.kind,
        "roles": sorted(principal.roles),
        "scopes": sorted(principal.scopes),
        "csrf_token": csrf_token(call.settings.secret_key, token) if token else None,
        "state": state,
    }


def set_session_cookie(response: web.StreamResponse, call: ApiRequest, value: str) -> None:
    """Attach the session cookie: HttpOnly, SameSite=Strict, Secure when configured."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(call.settings.session_lifetime_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=call.settings.cookie_secure,
    )


async def login(call: ApiRequest) -> web.Response:
    """``POST /api/login``: check the password, open a session, set its cookie."""
    name = call.body["name"]
    guard = call.request.app[LOGIN_GUARD]
    wait_s = guard.retry_after_s(name)
    if wait_s > 0:
        raise ApiError(
            429,
            "too many failed logins for this name; try again later",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
    user = await call.store.get_user(name)
    password_hash = user.password_hash if user is not None and not user.disabled else None
    if not verify_password(password_hash, call.body["password"]) or user is None:
        guard.failed(name)
        if user is not None:
            await call.store.audit(
                name, "login.failed", f"user:{name}", {"peer": call.request.remote}
            )
        raise ApiError(401, "wrong name or password")
    guard.succeeded(name)
    session_token = new_session_token()
    expires_at = time.time() + call.settings.session_lifetime_s
    await call.store.add_session(token_hash(session_token), user.name, expires_at)
    await call.store.audit(user.name, "login", f"user:{user.name}", {"peer": call.request.remote})
    principal = Principal(user.name, "user", frozenset(user.roles), session_token=session_token)
    response = web.json_response(me_json(call, principal, user.agent_state))
    set_session_cookie(response, call, sign_session(call.settings.secret_key, session_token))
    return response


async def logout(call: ApiRequest) -> web.Response:
    """``POST /api/logout``: forget the session server-side and clear the cookie."""
    principal = call.caller
    if principal.session_token is None:
        raise ApiError(403, "API tokens have no session; revoke them with hotline token revoke")
    session_hash = token_hash(principal.session_token)
    await call.store.delete_session(session_hash)
    call.hub.publish(session_topic(session_hash), {"type": "session.ended"})
    await call.store.audit(principal.name, "logout", f"user:{principal.name}")
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def get_me(call: ApiRequest) -> web.Response:
    """``GET /api/me``: the caller (a page uses it after a reload to get the CSRF token)."""
    principal = call.caller
    state = None
    if principal.kind == "user":
        user = await call.store.get_user(principal.name)
        state = user.agent_state if user is not None else None
    return web.json_response(me_json(call, principal, state))


HANDLERS: dict[str, OperationHandler] = {"login": login, "logout": logout, "getMe": get_me}
