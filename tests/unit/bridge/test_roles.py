"""Roles and scopes, enforced on every route; QA routes refuse plain agents."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from bridge.auth import CSRF_HEADER, Principal, is_loopback
from bridge.errors import ApiError
from bridge.openapi import operations
from bridge.operations import Access
from bridge.scopes import ROLES
from tests.unit.bridge.conftest import Bridge

GUARDED = [(m, p, op) for m, p, op in operations() if not op["x-access"].get("public")]


def concrete(path: str) -> str:
    values = {
        "conversation_id": "1",
        "customer_id": "1",
        "name": "ann",
        "call_id": "c1",
        "recording_id": "1",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def label(value: Any) -> str:
    return value["operationId"] if isinstance(value, dict) else str(value)


@pytest.mark.parametrize(("method", "path", "operation"), GUARDED, ids=label)
async def test_users_without_a_listed_role_get_403(
    bridge: Bridge, method: str, path: str, operation: dict[str, Any]
) -> None:
    allowed = set(operation["x-access"]["roles"])
    others = ROLES - allowed
    if not allowed or not others:
        pytest.skip("every role may call it")
    if operation["x-access"].get("loopback"):
        pytest.skip("open to loopback peers (test_loopback_routes_check_others)")
    csrf = await bridge.login("outsider", *sorted(others))
    reply = await bridge.client.request(
        method, concrete(path), json={}, headers={CSRF_HEADER: csrf}
    )
    assert reply.status == 403, await reply.text()


@pytest.mark.parametrize(("method", "path", "operation"), GUARDED, ids=label)
async def test_tokens_without_the_scope_get_403(
    bridge: Bridge, method: str, path: str, operation: dict[str, Any]
) -> None:
    scope = operation["x-access"].get("scope")
    if scope == "*":
        pytest.skip("any token may call it")
    if operation["x-access"].get("loopback"):
        pytest.skip("open to loopback peers (test_loopback_routes_check_others)")
    other = "metrics:read" if scope != "metrics:read" else "queues:read"
    token = await bridge.add_token("narrow", other)
    reply = await bridge.client.request(
        method, concrete(path), json={}, headers=bridge.bearer(token)
    )
    assert reply.status == 403, await reply.text()


@pytest.mark.parametrize(("method", "path", "operation"), GUARDED, ids=label)
async def test_no_credentials_get_401_except_loopback_routes(
    bridge: Bridge, method: str, path: str, operation: dict[str, Any]
) -> None:
    reply = await bridge.client.request(method, concrete(path), json={})
    if operation["x-access"].get("loopback"):
        assert reply.status in (200, 404)  # the test client is on loopback
    else:
        assert reply.status == 401


LOOPBACK = [(m, p, op) for m, p, op in GUARDED if op["x-access"].get("loopback")]


@pytest.mark.parametrize(("method", "path", "operation"), LOOPBACK, ids=label)
def test_loopback_routes_check_others(method: str, path: str, operation: dict[str, Any]) -> None:
    rule = Access.from_spec(operation["x-access"])
    outsiders = [
        None,
        Principal("crm", "token", scopes=frozenset({"messages:write"})),
        *(Principal("u", "user", roles=frozenset({role})) for role in ROLES - rule.roles),
    ]
    for principal in outsiders:
        with pytest.raises(ApiError) as caught:
            rule.check(principal, loopback_peer=False)
        assert caught.value.status == (401 if principal is None else 403)
        assert rule.check(principal, loopback_peer=True) is not None
    insider = Principal("crm", "token", scopes=frozenset({rule.scope or ""}))
    assert rule.check(insider, loopback_peer=False) is insider


# ------------------------------------------------------------------------ QA routes


async def test_agent_without_qa_gets_403_from_qa_routes(bridge: Bridge) -> None:
    await bridge.login("ann", "agent")
    for path in (
        "/api/audit",
        "/api/conversations",
        "/api/conversations?intent=refill",
        "/api/conversations?queue=nurse",
        "/api/conversations?agent=bob",
        "/api/conversations?channel=voice&since=0",
    ):
        reply = await bridge.client.get(path)
        assert reply.status == 403, path
        assert "qa" in (await reply.json())["error"]


async def test_agent_may_list_own_one_customers_and_waiting(bridge: Bridge) -> None:
    await bridge.login("ann", "agent")
    for path in (
        "/api/conversations?agent=ann",
        "/api/conversations?agent=ann&status=closed",
        "/api/conversations?customer_id=1",
        "/api/conversations?status=queued&channel=webchat",
    ):
        reply = await bridge.client.get(path)
        assert reply.status == 200, path


async def test_qa_and_admin_may_search_and_read_the_audit_log(bridge: Bridge) -> None:
    await bridge.add_user("quinn", "qa")
    await bridge.add_user("root", "admin")
    for name in ("quinn", "root"):
        await bridge.login(name)
        await bridge.json("GET", "/api/conversations?intent=refill", 200)
        entries = await bridge.json("GET", "/api/audit?limit=5", 200)
        assert entries[0]["action"] == "login" and entries[0]["actor"] == name


async def test_a_read_shows_up_in_the_audit_log(bridge: Bridge) -> None:
    await bridge.add_user("quinn", "qa")
    await bridge.login("ann", "agent")
    customer = await bridge.store.customer_for("phone", "+15551230001")
    conversation = await bridge.store.open_conversation(customer.id, "voice")
    await bridge.json("GET", f"/api/conversations/{conversation.id}", 200)
    await bridge.login("quinn")
    entries = await bridge.json("GET", f"/api/audit?target=conversation:{conversation.id}", 200)
    assert [(e["actor"], e["action"]) for e in entries] == [("ann", "conversation.read")]
    # The QA member's own reading of the log is not a conversation read.
    by_ann = await bridge.json("GET", "/api/audit?actor=ann", 200)
    assert {e["action"] for e in by_ann} == {"login", "conversation.read"}


# ------------------------------------------------------------------- the access rule


def test_access_rule_without_a_loopback_peer() -> None:
    rule = Access(roles=frozenset({"agent", "qa", "admin"}), scope="calls:read", loopback=True)
    assert rule.check(None, loopback_peer=True) == Principal("local", "loopback")
    with pytest.raises(ApiError) as caught:
        rule.check(None, loopback_peer=False)
    assert caught.value.status == 401
    token = Principal("crm", "token", scopes=frozenset({"calls:read"}))
    assert rule.check(token, loopback_peer=False) is token


@pytest.mark.parametrize(
    ("remote", "local"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.7", False),
        ("::ffff:10.0.0.7", False),
        ("1270::1", False),
    ],
)
def test_is_loopback(remote: str, local: bool) -> None:
    class Transport:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return (remote, 5555) if name == "peername" else default

    request = make_mocked_request("GET", "/", transport=Transport())
    assert is_loopback(request) is local
