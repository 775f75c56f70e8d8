"""SIGKILL in the middle of a stream of writes loses nothing that was acknowledged.

Eight clients post messages to a real ``python -m bridge`` over loopback. Once
some hundreds are acknowledged (201), the process is killed with SIGKILL
while requests are still in flight. After a restart on the same store, every
message that got a 201 is there, with the id the 201 gave it.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp

from tests.bridge_process import BridgeProcess

WRITERS = 8
KILL_AFTER_ACKS = 400
MAX_MESSAGES_PER_WRITER = 2_000  # bounds the loop if the kill somehow never lands


async def open_chat(store: Any) -> int:
    customer = await store.customer_for("email", "load@example.com")
    chat = await store.open_conversation(customer.id, "webchat", status="queued")
    return int(chat.id)


async def write_until_killed(
    bridge: BridgeProcess, token: str, chat_id: int
) -> tuple[dict[str, int], int]:
    """Post until the process dies; return the acknowledged texts (with ids) and the failures."""
    acknowledged: dict[str, int] = {}
    failures = 0
    killed = asyncio.Event()
    url = f"{bridge.url}/api/conversations/{chat_id}/messages"
    headers = {"Authorization": f"Bearer {token}"}

    async def writer(session: aiohttp.ClientSession, number: int) -> None:
        nonlocal failures
        for n in range(MAX_MESSAGES_PER_WRITER):
            text = f"writer {number} message {n}"
            try:
                async with session.post(url, json={"text": text}, headers=headers) as reply:
                    if reply.status != 201:
                        failures += 1
                        continue
                    acknowledged[text] = (await reply.json())["message"]["id"]
            except (TimeoutError, aiohttp.ClientError):
                failures += 1
                if killed.is_set():
                    return
                continue
            if len(acknowledged) >= KILL_AFTER_ACKS and not killed.is_set():
                assert bridge.process is not None
                bridge.process.send_signal(signal.SIGKILL)  # mid-stream: others are in flight
                killed.set()

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(writer(session, number) for number in range(WRITERS)))
    assert killed.is_set(), "the stream ended before the kill"
    return acknowledged, failures


def test_sigkill_mid_stream_loses_no_acknowledged_message(tmp_path: Path) -> None:
    bridge = BridgeProcess(tmp_path / "bridge")
    chat_id = bridge.seed(open_chat)
    token = bridge.add_token("load", {"messages:write", "conversations:read"})
    bridge.start()
    try:
        acknowledged, failures = asyncio.run(write_until_killed(bridge, token, chat_id))
        assert bridge.process is not None
        assert bridge.process.wait(10) == -signal.SIGKILL
    finally:
        bridge.kill()
    assert len(acknowledged) >= KILL_AFTER_ACKS
    assert failures >= 1  # requests were in flight when it died

    bridge.start()  # the same store, after the crash
    try:

        async def read_back() -> list[dict[str, Any]]:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"{bridge.url}/api/conversations/{chat_id}",
                    headers={"Authorization": f"Bearer {token}"},
                ) as reply,
            ):
                assert reply.status == 200
                return list((await reply.json())["messages"])

        stored = {message["text"]: message["id"] for message in asyncio.run(read_back())}
    finally:
        bridge.stop()
    lost = {text for text in acknowledged if text not in stored}
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:3]}"
    assert all(stored[text] == message_id for text, message_id in acknowledged.items())
    # Unacknowledged ones may or may not have committed; nothing else may appear.
    assert all(text.startswith("writer ") for text in stored)
