"""The REST routes over a real store: what they return, who may call them, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.auth import CSRF_HEADER
from bridge.scopes import SCOPES
from tests.unit.bridge.conftest import Bridge

ALL_SCOPES = tuple(sorted(SCOPES))  # a token with every scope there is


async def voice_call(bridge: Bridge, phone: str = "+15551230001") -> tuple[Any, Any]:
    """A voice conversation as the server would write it: IVR transcript and events."""
    customer = await bridge.store.customer_for("phone", phone)
    conversation = await bridge.store.open_conversation(
        customer.id, "voice", status="ivr", call_id=f"call-{phone}"
    )
    await bridge.store.add_message(conversation.id, "ivr", "How can we help?")
    await bridge.store.add_message(
        conversation.id, "customer", "I need a refill", offset_ms=2300, confidence=0.91
    )
    await bridge.store.record_event(conversation.id, "intent", {"intent": "refill"})
    conversation = await bridge.store.update_conversation(
        conversation.id, status="queued", intent="refill", queue="pharmacy"
    )
    return customer, conversation


# ---------------------------------------------------------------------- system routes


async def test_health_passes_the_live_status_through(bridge: Bridge) -> None:
    bridge.live.status_body = {"status": "ok", "active_calls": 3}
    assert await bridge.json("GET", "/health", 200) == {"status": "ok", "active_calls": 3}
    bridge.live.status_body = {"status": "draining", "active_calls": 1}
    assert (await bridge.json("GET", "/health", 503))["status"] == "draining"


async def test_ivr_outcome_is_open_to_loopback_and_404_for_unknown_calls(bridge: Bridge) -> None:
    bridge.live.outcomes["abc@host"] = {"call_id": "abc@host", "intent": "refill"}
    assert (await bridge.json("GET", "/api/calls/abc@host/ivr", 200))["intent"] == "refill"
    missing = await bridge.json("GET", "/api/calls/nope/ivr", 404)
    assert missing["field"] == "call_id"


async def test_openapi_document_is_served(bridge: Bridge) -> None:
    document = await bridge.json("GET", "/api/openapi.json", 200)
    assert document["openapi"] == "3.1.0"
    assert "/api/conversations/{conversation_id}" in document["paths"]


async def test_metrics_include_the_store_and_sockets(bridge: Bridge) -> None:
    reply = await bridge.client.get("/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await reply.text()
    assert "hotline_store_write_lag_seconds " in text
    assert 'hotline_bridge_websockets{page="agent"} 0' in text


# ------------------------------------------------------------------- conversations


async def test_qa_lists_conversations_with_filters_and_pages(bridge: Bridge) -> None:
    await bridge.login("quinn", "qa")
    for n in range(5):
        await voice_call(bridge, f"+1555123000{n}")
    page = await bridge.json("GET", "/api/conversations?limit=2", 200)
    ids = [c["id"] for c in page["conversations"]]
    assert ids == [5, 4]
    assert page["next_before_id"] == 4
    page = await bridge.json("GET", "/api/conversations?limit=2&before_id=4", 200)
    assert [c["id"] for c in page["conversations"]] == [3, 2]
    page = await bridge.json("GET", "/api/conversations?limit=2&before_id=2", 200)
    assert [c["id"] for c in page["conversations"]] == [1]
    assert page["next_before_id"] is None
    refills = await bridge.json(
        "GET", "/api/conversations?intent=refill&queue=pharmacy&channel=voice", 200
    )
    assert len(refills["conversations"]) == 5
    none = await bridge.json("GET", "/api/conversations?status=closed", 200)
    assert none["conversations"] == []


async def test_reading_a_conversation_returns_everything_and_is_audited(bridge: Bridge) -> None:
    await bridge.login("ann", "agent")
    customer, conversation = await voice_call(bridge)
    detail = await bridge.json("GET", f"/api/conversations/{conversation.id}", 200)
    assert detail["conversation"]["intent"] == "refill"
    assert detail["customer"]["identities"] == [{"kind": "phone", "value": "+15551230001"}]
    assert [(m["speaker"], m["text"]) for m in detail["messages"]] == [
        ("ivr", "How can we help?"),
        ("customer", "I need a refill"),
    ]
    assert detail["messages"][1]["offset_ms"] == 2300
    assert detail["messages"][1]["confidence"] == pytest.approx(0.91)
    assert [(e["kind"], e["data"]) for e in detail["events"]] == [("intent", {"intent": "refill"})]
    (entry,) = await bridge.store.audit_log(target=f"conversation:{conversation.id}")
    assert (entry.actor, entry.action) == ("ann", "conversation.read")
    assert entry.detail["customer_id"] == customer.id


async def test_a_token_read_is_audited_under_the_token_name(bridge: Bridge) -> None:
    token = await bridge.add_token("crm", "conversations:read")
    _, conversation = await voice_call(bridge)
    await bridge.json(
        "GET", f"/api/conversations/{conversation.id}", 200, headers=bridge.bearer(token)
    )
    (entry,) = await bridge.store.audit_log(actor="token:crm")
    assert entry.target == f"conversation:{conversation.id}"


async def test_unknown_conversation_is_404_and_not_audited(bridge: Bridge) -> None:
    await bridge.login("ann", "agent")
    error = await bridge.json("GET", "/api/conversations/999", 404)
    assert error["field"] == "conversation_id"
    assert await bridge.store.audit_log(target="conversation:999") == []


async def test_text_channel_opens_a_conversation_and_posts(bridge: Bridge) -> None:
    token = await bridge.add_token("web", "messages:write")
    auth = bridge.bearer(token)
    body = {"channel": "webchat", "identity": {"kind": "email", "value": "Ann@Example.COM"}}
    opened = await bridge.json("POST", "/api/conversations", 201, json=body, headers=auth)
    assert opened["status"] == "queued" and opened["channel"] == "webchat"
    again = await bridge.json("POST", "/api/conversations", 200, json=body, headers=auth)
    assert again["id"] == opened["id"]  # the open one is reused
    customer = await bridge.store.find_customer("email", "ann@example.com")
    assert customer.id == opened["customer_id"]
    posted = await bridge.json(
        "POST",
        f"/api/conversations/{opened['id']}/messages",
        201,
        json={"text": "hello"},
        headers=auth,
    )
    assert posted["message"]["speaker"] == "customer"
    stored = await bridge.store.messages(opened["id"])
    assert [(m.speaker, m.text) for m in stored] == [("customer", "hello")]


async def test_take_reply_close_flow_for_an_agent(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    headers = {CSRF_HEADER: csrf}
    customer = await bridge.store.customer_for("webchat", "v1")
    chat = await bridge.store.open_conversation(customer.id, "webchat", status="queued")
    # Not taken yet: replying is refused.
    refused = await bridge.json(
        "POST",
        f"/api/conversations/{chat.id}/messages",
        409,
        json={"text": "hi"},
        headers=headers,
    )
    assert "take it first" in refused["error"]
    taken = await bridge.json("POST", f"/api/conversations/{chat.id}/take", 200, headers=headers)
    assert (taken["status"], taken["agent"]) == ("connected", "ann")
    posted = await bridge.json(
        "POST",
        f"/api/conversations/{chat.id}/messages",
        201,
        json={"text": "Hello, Ann here"},
        headers=headers,
    )
    assert posted["message"]["speaker"] == "agent"
    closed = await bridge.json("POST", f"/api/conversations/{chat.id}/close", 200, headers=headers)
    assert closed["status"] == "closed" and closed["ended_at"] is not None
    await bridge.json(
        "POST",
        f"/api/conversations/{chat.id}/messages",
        409,
        json={"text": "late"},
        headers=headers,
    )


async def test_a_chat_taken_by_another_agent_is_409(bridge: Bridge) -> None:
    await bridge.add_user("bob", "agent")
    csrf = await bridge.login("ann", "agent")
    customer = await bridge.store.customer_for("webchat", "v1")
    chat = await bridge.store.open_conversation(customer.id, "webchat", status="queued")
    await bridge.store.update_conversation(chat.id, status="connected", agent="bob")
    error = await bridge.json(
        "POST", f"/api/conversations/{chat.id}/take", 409, headers={CSRF_HEADER: csrf}
    )
    assert "bob" in error["error"]
    await bridge.json(
        "POST", f"/api/conversations/{chat.id}/close", 403, headers={CSRF_HEADER: csrf}
    )


async def test_agents_post_only_as_agent(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    customer = await bridge.store.customer_for("webchat", "v1")
    chat = await bridge.store.open_conversation(customer.id, "webchat", status="queued")
    await bridge.store.update_conversation(chat.id, status="connected", agent="ann")
    error = await bridge.json(
        "POST",
        f"/api/conversations/{chat.id}/messages",
        403,
        json={"text": "x", "speaker": "customer"},
        headers={CSRF_HEADER: csrf},
    )
    assert error["field"] == "speaker"
    assert await bridge.store.messages(chat.id) == []


async def test_voice_calls_cannot_be_taken_or_typed_into(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    _, call = await voice_call(bridge)
    headers = {CSRF_HEADER: csrf}
    await bridge.json("POST", f"/api/conversations/{call.id}/take", 409, headers=headers)
    await bridge.json(
        "POST",
        f"/api/conversations/{call.id}/messages",
        409,
        json={"text": "x"},
        headers=headers,
    )


# ------------------------------------------------------------------------ customers


async def test_customers_get_identities_and_merge(bridge: Bridge) -> None:
    token = await bridge.add_token("crm", "customers:read", "customers:write")
    auth = bridge.bearer(token)
    caller, call = await voice_call(bridge)
    visitor = await bridge.store.customer_for("webchat", "visitor-1", display_name="Ann")
    got = await bridge.json("GET", f"/api/customers/{caller.id}", 200, headers=auth)
    assert got["identities"] == [{"kind": "phone", "value": "+15551230001"}]
    added = await bridge.json(
        "POST",
        f"/api/customers/{visitor.id}/identities",
        200,
        json={"kind": "email", "value": "ann@example.com"},
        headers=auth,
    )
    assert {"kind": "email", "value": "ann@example.com"} in added["identities"]
    taken = await bridge.json(
        "POST",
        f"/api/customers/{visitor.id}/identities",
        409,
        json={"kind": "phone", "value": "(555) 123-0001"},
        headers=auth,
    )
    assert taken["field"] == "value"
    merged = await bridge.json(
        "POST",
        f"/api/customers/{caller.id}/merge",
        200,
        json={"absorbed_id": visitor.id},
        headers=auth,
    )
    kinds = {identity["kind"] for identity in merged["identities"]}
    assert kinds == {"phone", "webchat", "email"}
    # The absorbed id now answers with the survivor.
    survivor = await bridge.json("GET", f"/api/customers/{visitor.id}", 200, headers=auth)
    assert survivor["id"] == caller.id
    same = await bridge.json(
        "POST",
        f"/api/customers/{caller.id}/merge",
        409,
        json={"absorbed_id": visitor.id},
        headers=auth,
    )
    assert same["field"] == "absorbed_id"
    (entry,) = await bridge.store.audit_log(actor="token:crm", limit=1)
    assert entry.action == "customer.merge"
    assert call.customer_id == caller.id


async def test_bad_phone_number_names_the_field(bridge: Bridge) -> None:
    token = await bridge.add_token("web", "messages:write")
    body = {"channel": "webchat", "identity": {"kind": "phone", "value": "call me maybe"}}
    error = await bridge.json(
        "POST", "/api/conversations", 400, json=body, headers=bridge.bearer(token)
    )
    assert error["field"] == "identity.value"


# --------------------------------------------------------------------- agents, queues


async def test_agents_list_and_state_rules(bridge: Bridge) -> None:
    await bridge.add_user("bob", "agent")
    await bridge.add_user("quinn", "qa")
    csrf = await bridge.login("ann", "agent")
    agents = await bridge.json("GET", "/api/agents", 200)
    assert sorted(a["name"] for a in agents) == ["ann", "bob"]
    headers = {CSRF_HEADER: csrf}
    error = await bridge.json(
        "PUT", "/api/agents/bob/state", 403, json={"state": "paused"}, headers=headers
    )
    assert error["field"] == "name"
    mine = await bridge.json(
        "PUT", "/api/agents/ann/state", 200, json={"state": "paused", "reason": "lunch"}, headers=headers
    )
    assert mine["state"] == "paused"
    assert (await bridge.store.get_user("ann")).agent_state == "paused"


async def test_admin_sets_anyones_state_but_not_a_non_agent(bridge: Bridge) -> None:
    await bridge.add_user("bob", "agent")
    await bridge.add_user("quinn", "qa")
    csrf = await bridge.login("root", "admin")
    headers = {CSRF_HEADER: csrf}
    await bridge.json("PUT", "/api/agents/bob/state", 200, json={"state": "paused"}, headers=headers)
    await bridge.json(
        "PUT", "/api/agents/quinn/state", 404, json={"state": "paused"}, headers=headers
    )


async def test_queues_come_from_the_server(bridge: Bridge) -> None:
    bridge.live.queue_list = [{"name": "nurse", "length": 2, "oldest_wait_s": 9.5}]
    await bridge.login("ann", "agent")
    assert await bridge.json("GET", "/api/queues", 200) == bridge.live.queue_list


# ------------------------------------------------------------------------- bad input


@pytest.fixture
async def token_auth(bridge: Bridge) -> dict[str, str]:
    return bridge.bearer(await bridge.add_token("all", *ALL_SCOPES))


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (b'{"text": ', 400, None, "malformed JSON"),
        (b'{"text": NaN}', 400, None, "NaN"),
        (b"[1, 2]", 400, None, "must be object"),
        (b"", 400, None, "JSON body is required"),
        (b'{"text": "hi", "colour": "red"}', 400, "colour", "not a known field"),
        (b'{"text": 42}', 400, "text", "must be string"),
        (b'{"text": ""}', 400, "text", "at least 1"),
        (b'{"text": "   "}', 400, "text", "must match"),
        (b'{"text": "hi", "speaker": "ivr"}', 400, "speaker", "must be one of"),
        (b'{"text": "hi", "at": -1}', 400, "at", "at least 0"),
        (b'{"text": "a\\u0000b"}', 400, "text", "NUL"),
        (b'{"text": "\\ud800"}', 400, "text", "surrogate"),
    ],
)
async def test_bad_bodies_get_400_naming_the_field(
    bridge: Bridge,
    token_auth: dict[str, str],
    body: bytes,
    status: int,
    field: str | None,
    words: str,
) -> None:
    customer = await bridge.store.customer_for("webchat", "v")
    chat = await bridge.store.open_conversation(customer.id, "webchat", status="queued")
    reply = await bridge.client.post(
        f"/api/conversations/{chat.id}/messages",
        data=body,
        headers={**token_auth, "Content-Type": "application/json"},
    )
    assert reply.status == status
    error = await reply.json()
    assert error.get("field") == field
    assert words in error["error"]
    assert await bridge.store.messages(chat.id) == []


async def test_body_that_is_not_json_gets_415(bridge: Bridge, token_auth: dict[str, str]) -> None:
    reply = await bridge.client.post(
        "/api/conversations/1/messages", data="text=hi", headers=token_auth
    )
    assert reply.status == 415


async def test_oversized_body_gets_413(bridge: Bridge, token_auth: dict[str, str]) -> None:
    customer = await bridge.store.customer_for("webchat", "v")
    chat = await bridge.store.open_conversation(customer.id, "webchat", status="queued")
    huge = b'{"text": "' + b"x" * (bridge.settings.max_body_bytes + 10) + b'"}'
    reply = await bridge.client.post(
        f"/api/conversations/{chat.id}/messages",
        data=huge,
        headers={**token_auth, "Content-Type": "application/json"},
    )
    assert reply.status == 413
    assert "too large" in (await reply.json())["error"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("before_id=-1", "before_id"),
        ("customer_id=99999999999999999999", "customer_id"),
        ("status=open", "status"),
        ("since=yesterday", "since"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_bad_query_parameters_get_400_naming_them(
    bridge: Bridge, token_auth: dict[str, str], query: str, field: str
) -> None:
    error = await bridge.json("GET", f"/api/conversations?{query}", 400, headers=token_auth)
    assert error["field"] == field


@pytest.mark.parametrize(
    "path", ["/api/conversations/abc", "/api/conversations/0", "/api/customers/1e3"]
)
async def test_bad_path_ids_get_400(bridge: Bridge, token_auth: dict[str, str], path: str) -> None:
    error = await bridge.json("GET", path, 400, headers=token_auth)
    assert error["field"] in ("conversation_id", "customer_id")


async def test_unknown_routes_and_methods_answer_json(bridge: Bridge) -> None:
    assert (await bridge.json("GET", "/api/nothing", 404))["error"] == "no such resource"
    reply = await bridge.client.delete("/api/conversations")
    assert reply.status == 405
    assert "GET" in reply.headers["Allow"]
    assert "error" in await reply.json()


async def test_a_bug_is_a_logged_500_without_details(
    bridge: Bridge, token_auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[dict[str, object]]:
        raise RuntimeError("secret internals")

    bridge.live.queues = broken  # type: ignore[method-assign]
    error = await bridge.json("GET", "/api/queues", 500, headers=token_auth)
    assert error == {"error": "internal error (logged on the server)"}
    assert "secret internals" in caplog.text
