"""The QA page is a plain file under the strict CSP, with no inline code and no HTML sinks."""

from __future__ import annotations

import re

from bridge.pages import STATIC_DIR
from tests.unit.bridge.conftest import Bridge


async def test_qa_page_is_served_with_the_security_headers(bridge: Bridge) -> None:
    reply = await bridge.client.get("/qa")
    assert reply.status == 200
    assert "text/html" in reply.headers["Content-Type"]
    csp = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    script = await bridge.client.get("/static/qa.js")
    assert script.status == 200 and "javascript" in script.headers["Content-Type"]


def test_qa_page_references_only_files_that_exist_and_no_inline_code() -> None:
    html = (STATIC_DIR / "qa.html").read_text()
    for reference in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert (STATIC_DIR / reference.removeprefix("/static/")).is_file(), reference
    assert "style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert re.search(r"<[^>]*\son[a-z]+\s*=", html, re.IGNORECASE) is None


def test_qa_script_builds_text_nodes_never_html() -> None:
    script = (STATIC_DIR / "qa.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    # Every element id the script looks up exists in the page.
    html = (STATIC_DIR / "qa.html").read_text()
    for element_id in re.findall(r'byId\("([^"]+)"\)', script):
        assert f'id="{element_id}"' in html, element_id
