"""The pages: served as plain files, a visitor cookie for /chat, strict security headers."""

from __future__ import annotations

import re

import pytest

from bridge.auth import VISITOR_COOKIE, unsign_visitor
from bridge.pages import STATIC_DIR
from tests.unit.bridge.conftest import SECRET, Bridge


async def test_chat_page_gives_a_new_visitor_a_signed_cookie_once(bridge: Bridge) -> None:
    first = await bridge.client.get("/chat")
    assert first.status == 200
    assert "text/html" in first.headers["Content-Type"]
    cookie = first.cookies[VISITOR_COOKIE]
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
    assert unsign_visitor(SECRET, cookie.value)
    again = await bridge.client.get("/chat")
    assert VISITOR_COOKIE not in again.cookies  # the valid one is kept


async def test_a_forged_visitor_cookie_is_replaced(bridge: Bridge) -> None:
    reply = await bridge.client.get("/chat", cookies={VISITOR_COOKIE: "forged.value"})
    assert unsign_visitor(SECRET, reply.cookies[VISITOR_COOKIE].value)


@pytest.mark.parametrize("path", ["/chat", "/agent", "/api/openapi.json", "/static/agent.js"])
async def test_security_headers_everywhere(bridge: Bridge, path: str) -> None:
    reply = await bridge.client.get(path)
    assert reply.status == 200
    csp = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


async def test_root_leads_to_the_agent_page(bridge: Bridge) -> None:
    reply = await bridge.client.get("/", allow_redirects=False)
    assert reply.status == 302 and reply.headers["Location"] == "/agent"


async def test_static_modules_are_served_as_javascript(bridge: Bridge) -> None:
    for name in ("api.js", "agent.js", "chat.js"):
        reply = await bridge.client.get(f"/static/{name}")
        assert reply.status == 200
        assert "javascript" in reply.headers["Content-Type"]
    assert (await bridge.client.get("/static/../app.py")).status in (403, 404)


def test_pages_reference_only_files_that_exist_and_no_inline_code() -> None:
    for page in ("chat.html", "agent.html"):
        html = (STATIC_DIR / page).read_text()
        for reference in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert (STATIC_DIR / reference.removeprefix("/static/")).is_file(), reference
        # The CSP forbids inline script and style: none may sneak into the pages.
        assert "style=" not in html
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
        assert re.search(r"<[^>]*\son[a-z]+\s*=", html, re.IGNORECASE) is None  # onclick=...


def test_scripts_never_write_html_from_data() -> None:
    for script in STATIC_DIR.glob("*.js"):
        source = script.read_text()
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, script.name
