"""/ws/chat and /ws/agent: a chat from the widget to an agent and back, identities, auth."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, WSServerHandshakeError

from bridge.auth import CSRF_HEADER, VISITOR_COOKIE
from bridge.hub import agent_topic
from tests.unit.bridge.conftest import Bridge

TIMEOUT_S = 5.0


async def frame_of(socket: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next frame of type ``kind`` (others are skipped)."""
    while True:
        message = await asyncio.wait_for(socket.receive(), TIMEOUT_S)
        assert message.type == WSMsgType.TEXT, message
        frame = message.json()
        if frame["type"] == kind:
            return frame


async def visitor_socket(bridge: Bridge) -> ClientWebSocketResponse:
    page = await bridge.client.get("/chat")
    assert page.status == 200
    assert VISITOR_COOKIE in page.cookies
    return await bridge.client.ws_connect("/ws/chat")


async def test_chat_from_widget_to_agent_and_back(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    agent = await bridge.client.ws_connect("/ws/agent")
    assert (await frame_of(agent, "hello"))["name"] == "ann"
    widget = await visitor_socket(bridge)
    welcome = await frame_of(widget, "welcome")
    assert welcome == {"type": "welcome", "conversation": None, "messages": []}

    await widget.send_json({"type": "message", "text": "Is the pharmacy open?", "client_id": "c1"})
    ack = await frame_of(widget, "ack")
    assert ack["client_id"] == "c1"
    echoed = await frame_of(widget, "message")
    assert echoed["message"]["id"] == ack["id"]
    assert echoed["message"]["speaker"] == "customer"

    waiting = await frame_of(agent, "conversation.updated")
    chat_id = waiting["conversation"]["id"]
    assert chat_id == ack["conversation_id"]
    assert waiting["conversation"]["status"] == "queued"
    pushed = await frame_of(agent, "chat.message")
    assert pushed["message"]["text"] == "Is the pharmacy open?"

    headers = {CSRF_HEADER: csrf}
    await bridge.json("POST", f"/api/conversations/{chat_id}/take", 200, headers=headers)
    joined = await frame_of(widget, "conversation")
    assert joined["conversation"] == {"id": chat_id, "status": "connected", "agent": "ann"}
    await bridge.json(
        "POST",
        f"/api/conversations/{chat_id}/messages",
        201,
        json={"text": "Yes, until 8 pm."},
        headers=headers,
    )
    reply = await frame_of(widget, "message")
    assert (reply["message"]["speaker"], reply["message"]["text"]) == ("agent", "Yes, until 8 pm.")
    assert set(reply["message"]) == {"id", "speaker", "text", "at"}  # nothing internal leaks

    # A reconnecting widget gets its chat back.
    await widget.close()
    again = await bridge.client.ws_connect("/ws/chat")
    welcome = await frame_of(again, "welcome")
    assert welcome["conversation"]["id"] == chat_id
    assert [m["text"] for m in welcome["messages"]] == ["Is the pharmacy open?", "Yes, until 8 pm."]
    await again.close()
    await agent.close()


async def test_a_visitor_who_gives_a_callers_phone_becomes_that_customer(bridge: Bridge) -> None:
    caller = await bridge.store.customer_for("phone", "+15551230001")
    call = await bridge.store.open_conversation(caller.id, "voice")
    widget = await visitor_socket(bridge)
    await frame_of(widget, "welcome")
    await widget.send_json({"type": "message", "text": "hi"})
    ack = await frame_of(widget, "ack")
    await widget.send_json(
        {"type": "hello", "name": "Ann", "phone": "(555) 123-0001", "email": "Ann@Example.com"}
    )
    await frame_of(widget, "identified")
    chat = await bridge.store.get_conversation(ack["conversation_id"])
    assert chat.customer_id == caller.id  # the chat moved to the caller
    customer = await bridge.store.get_customer(caller.id)
    kinds = {identity.kind: identity.value for identity in customer.identities}
    assert kinds["phone"] == "+15551230001"
    assert kinds["email"] == "ann@example.com"
    assert "webchat" in kinds
    await bridge.login("ann", "agent")
    history = await bridge.json("GET", f"/api/conversations?customer_id={caller.id}", 200)
    assert {c["id"] for c in history["conversations"]} == {call.id, chat.id}
    await widget.close()


async def test_widget_frames_are_validated(bridge: Bridge) -> None:
    widget = await visitor_socket(bridge)
    await frame_of(widget, "welcome")
    cases = [
        ("not json", None),
        ('{"type": "message"}', "text"),
        ('{"type": "message", "text": ""}', "text"),
        ('{"type": "message", "text": "hi", "html": "<b>"}', "html"),
        ('{"type": "hello", "phone": "not a phone"}', "phone"),
        ('{"type": "hello", "email": "nobody"}', "email"),
        ('{"type": "shout"}', "type"),
        ("[1]", None),
    ]
    for raw, field in cases:
        await widget.send_str(raw)
        error = await frame_of(widget, "error")
        assert error.get("field") == field, raw
    await widget.send_json({"type": "ping"})
    await frame_of(widget, "pong")
    assert await bridge.store.list_conversations() == []
    await widget.close()


async def test_chat_socket_needs_the_visitor_cookie(bridge: Bridge) -> None:
    with pytest.raises(WSServerHandshakeError) as caught:
        await bridge.client.ws_connect("/ws/chat")
    assert caught.value.status == 401


async def test_sockets_refuse_another_origin(bridge: Bridge) -> None:
    await bridge.client.get("/chat")
    with pytest.raises(WSServerHandshakeError) as caught:
        await bridge.client.ws_connect("/ws/chat", headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403
    own = str(bridge.client.make_url("/")).rstrip("/")
    socket = await bridge.client.ws_connect("/ws/chat", headers={"Origin": own})
    await frame_of(socket, "welcome")
    await socket.close()
    await bridge.login("ann", "agent")
    with pytest.raises(WSServerHandshakeError) as caught:
        await bridge.client.ws_connect("/ws/agent", headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403


async def test_agent_socket_needs_a_session(bridge: Bridge) -> None:
    with pytest.raises(WSServerHandshakeError) as caught:
        await bridge.client.ws_connect("/ws/agent")
    assert caught.value.status == 401
    token = await bridge.add_token("crm", "agents:read")
    with pytest.raises(WSServerHandshakeError) as caught:
        await bridge.client.ws_connect("/ws/agent", headers=bridge.bearer(token))
    assert caught.value.status == 401


async def test_logout_closes_the_agent_socket(bridge: Bridge) -> None:
    csrf = await bridge.login("ann", "agent")
    agent = await bridge.client.ws_connect("/ws/agent")
    await frame_of(agent, "hello")
    await bridge.json("POST", "/api/logout", 204, headers={CSRF_HEADER: csrf})
    await frame_of(agent, "session.ended")
    closed = await asyncio.wait_for(agent.receive(), TIMEOUT_S)
    assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert agent.close_code == 4401


async def test_server_events_reach_the_right_agent(bridge: Bridge) -> None:
    await bridge.add_user("bob", "agent")
    await bridge.login("ann", "agent")
    agent = await bridge.client.ws_connect("/ws/agent")
    await frame_of(agent, "hello")
    pop = {"type": "screen_pop", "call_id": "c1", "conversation_id": 1, "intent": "refill"}
    assert bridge.hub.publish(agent_topic("bob"), {"type": "screen_pop", "call_id": "c0"}) == 0
    assert bridge.hub.publish(agent_topic("ann"), pop) == 1
    assert await frame_of(agent, "screen_pop") == pop
    await agent.send_json({"type": "take", "conversation_id": 1})
    error = await frame_of(agent, "error")
    assert "REST" in error["error"]
    await agent.send_json({"type": "ping"})
    await frame_of(agent, "pong")
    await agent.close()


async def test_metrics_count_open_sockets(bridge: Bridge) -> None:
    await bridge.login("ann", "agent")
    agent = await bridge.client.ws_connect("/ws/agent")
    await frame_of(agent, "hello")
    widget = await visitor_socket(bridge)
    await frame_of(widget, "welcome")
    await widget.send_json({"type": "message", "text": "hi"})
    await frame_of(widget, "ack")
    text = await (await bridge.client.get("/metrics")).text()
    assert 'hotline_bridge_websockets{page="agent"} 1' in text
    assert 'hotline_bridge_websockets{page="chat"} 1' in text
    await widget.close()
    await agent.close()


async def test_a_taken_chat_reaches_its_agent_only(bridge: Bridge) -> None:
    await bridge.add_user("bob", "agent")
    csrf = await bridge.login("ann", "agent")
    ann = await bridge.client.ws_connect("/ws/agent")
    await frame_of(ann, "hello")
    widget = await visitor_socket(bridge)
    await frame_of(widget, "welcome")
    await widget.send_json({"type": "message", "text": "first"})
    chat_id = (await frame_of(widget, "ack"))["conversation_id"]
    await frame_of(ann, "chat.message")  # waiting: every agent sees it
    await bridge.json(
        "POST", f"/api/conversations/{chat_id}/take", 200, headers={CSRF_HEADER: csrf}
    )
    bob = bridge.hub.subscribe(["agents", agent_topic("bob")])  # bob's page, as the hub sees it
    await widget.send_json({"type": "message", "text": "second"})
    await frame_of(widget, "ack")
    pushed = await frame_of(ann, "chat.message")
    assert pushed["message"]["text"] == "second"
    assert bob._events.empty()  # not bob's chat: he reads it by an audited GET if he must
    bob.close()
    await widget.close()
    await ann.close()
