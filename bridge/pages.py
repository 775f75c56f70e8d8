"""The pages: ``/chat`` (the customer's widget), ``/agent`` and ``/qa``: plain files, no build step.

``/chat`` also gives a new visitor the signed ``hotline_visitor`` cookie that
``/ws/chat`` knows them by. Every response carries a strict Content Security
Policy (scripts, styles and connections from this origin only), so injected
markup cannot run script even if a page's escaping failed somewhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bridge.auth import VISITOR_COOKIE, sign_visitor, unsign_visitor
from bridge.keys import SETTINGS

__all__ = ["STATIC_DIR", "add_page_routes", "security_headers"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_VISITOR_MAX_AGE_S = 365 * 86400
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every answer (pages, API, errors)."""
    response = await handler(request)
    if not response.prepared:  # a WebSocket has already sent its headers
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})


async def chat_page(request: web.Request) -> web.StreamResponse:
    """``GET /chat``: the widget; a visitor without a valid cookie gets a new one."""
    response = _page("chat.html")
    secret = request.app[SETTINGS].secret_key
    cookie = request.cookies.get(VISITOR_COOKIE)
    if cookie is None or unsign_visitor(secret, cookie) is None:
        response.set_cookie(
            VISITOR_COOKIE,
            sign_visitor(secret, secrets.token_urlsafe(16)),
            max_age=_VISITOR_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.app[SETTINGS].cookie_secure,
        )
    return response


async def agent_page(request: web.Request) -> web.StreamResponse:
    """``GET /agent``: the agent page (it logs in over the API)."""
    return _page("agent.html")


async def qa_page(request: web.Request) -> web.StreamResponse:
    """``GET /qa``: search calls and chats, play a recording at the match (logs in over the API)."""
    return _page("qa.html")


async def root(request: web.Request) -> web.StreamResponse:
    """``GET /``: staff land on the agent page."""
    raise web.HTTPFound("/agent")


def add_page_routes(app: web.Application) -> None:
    """Register the pages and ``/static/``."""
    app.router.add_get("/", root, allow_head=False)
    app.router.add_get("/chat", chat_page, allow_head=False)
    app.router.add_get("/agent", agent_page, allow_head=False)
    app.router.add_get("/qa", qa_page, allow_head=False)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False, append_version=False)
