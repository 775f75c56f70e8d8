"""/ws/agent carries the browser phone's messages to ``Live.phone``, checked, one page at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from bridge.live import PHONE_UNAVAILABLE
from tests.unit.bridge.conftest import Bridge
from tests.unit.bridge.test_sockets import frame_of

ANSWER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"


@dataclass
class PhoneLive:
    """Records the phone calls the socket makes; replies like ``BrowserPhones`` would."""

    messages: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)

    async def phone(self, agent: str, page: str, message: dict[str, Any]) -> dict[str, Any] | None:
        self.messages.append((agent, page, message))
        if message["type"] == "phone.ready":
            return {"type": "phone.state", "on": True}
        if message["type"] == "call.reject":
            raise RuntimeError("a bug in the server")
        return None

    def phone_closed(self, agent: str, page: str) -> None:
        self.closed.append((agent, page))


async def test_static_live_says_calls_in_the_browser_are_not_available(bridge: Bridge) -> None:
    await bridge.login("ann", "agent")
    socket = await bridge.client.ws_connect("/ws/agent")
    await socket.send_json({"type": "phone.ready"})
    assert await frame_of(socket, "phone.error") == {
        "type": "phone.error",
        "error": PHONE_UNAVAILABLE,
    }
    await socket.send_json({"type": "call.answer", "call_id": "c1", "sdp": ANSWER})
    reply = await frame_of(socket, "phone.error")
    assert reply["call_id"] == "c1" and reply["error"] == PHONE_UNAVAILABLE
    await socket.close()


async def test_phone_messages_reach_live_with_a_page_id_and_bad_ones_are_named(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = PhoneLive()
    monkeypatch.setattr(bridge.live, "phone", live.phone)
    monkeypatch.setattr(bridge.live, "phone_closed", live.phone_closed)
    await bridge.login("ann", "agent")
    first = await bridge.client.ws_connect("/ws/agent")
    second = await bridge.client.ws_connect("/ws/agent")
    await first.send_json({"type": "phone.ready"})
    assert await frame_of(first, "phone.state") == {"type": "phone.state", "on": True}
    await second.send_json({"type": "call.answer", "call_id": "c1", "sdp": ANSWER})
    await second.send_json({"type": "ping"})
    await frame_of(second, "pong")
    (agent, page_1, ready), (_, page_2, answer) = live.messages
    assert (agent, ready) == ("ann", {"type": "phone.ready"})
    assert answer == {"type": "call.answer", "call_id": "c1", "sdp": ANSWER}
    assert page_1 != page_2
    for bad, where in (
        ({"type": "call.answer", "call_id": "c1"}, "sdp"),
        ({"type": "call.answer", "call_id": "c1", "sdp": "hello"}, "sdp"),
        ({"type": "call.hangup"}, "call_id"),
        ({"type": "call.hangup", "call_id": ""}, "call_id"),
        ({"type": "phone.ready", "extra": 1}, "extra"),
    ):
        await first.send_json(bad)
        error = await frame_of(first, "error")
        assert where in (error.get("field") or "") + error["error"], (bad, error)
    assert len(live.messages) == 2  # none of the bad ones got through
    await first.send_json({"type": "call.reject", "call_id": "c1"})
    assert (await frame_of(first, "error"))["error"].startswith("internal error")
    await first.close()
    await second.close()
    await _until(lambda: len(live.closed) == 2)
    assert sorted(live.closed) == sorted([("ann", page_1), ("ann", page_2)])


async def test_only_agents_use_the_phone(bridge: Bridge) -> None:
    await bridge.login("quinn", "qa")
    socket = await bridge.client.ws_connect("/ws/agent")
    await socket.send_json({"type": "phone.ready"})
    error = await frame_of(socket, "error")
    assert error["error"] == "only agents take calls in the browser"
    await socket.close()


async def _until(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")
