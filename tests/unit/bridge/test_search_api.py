"""``GET /api/search`` over a real store: hits with snippets and times, filters, errors, access."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.bridge.conftest import Bridge, make_bridge
from tests.unit.bridge.qa_fixtures import CALL_S, SeededCalls, seed_calls


@pytest.fixture
async def qa(tmp_path: Path) -> AsyncIterator[tuple[Bridge, SeededCalls]]:
    async for bridge in make_bridge(tmp_path, recordings_dir=tmp_path / "recordings"):
        seeded = await seed_calls(bridge.store, tmp_path / "recordings")
        await bridge.login("quinn", "qa")
        yield bridge, seeded


async def search(bridge: Bridge, **params: Any) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await bridge.json("GET", f"/api/search?{query}", 200)


def by_kind(body: Any, kind: str) -> list[Any]:
    return [hit for hit in body["hits"] if hit["kind"] == kind]


async def test_agents_tokens_and_strangers_cannot_search(tmp_path: Path) -> None:
    async for bridge in make_bridge(tmp_path):
        assert (await bridge.client.get("/api/search?q=refund")).status == 401
        token = await bridge.add_token("robot", "conversations:read")
        reply = await bridge.client.get("/api/search?q=refund", headers=bridge.bearer(token))
        assert reply.status == 403
        await bridge.login("ann", "agent")
        assert (await bridge.client.get("/api/search?q=refund")).status == 403
        await bridge.login("root", "admin")
        assert (await bridge.client.get("/api/search?q=refund")).status == 200


async def test_a_spoken_word_is_found_where_it_was_said(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa
    body = await search(bridge, q="refund")
    [call] = by_kind(body, "transcript")  # one hit per recording: its first match
    assert call["conversation_id"] == seeded.voice_id
    assert call["recording_id"] == seeded.recording_id
    assert (call["channel"], call["speaker"]) == ("voice", "customer")
    assert abs(call["offset_ms"] - seeded.refund.start_ms) <= 500
    assert (call["queue"], call["agent"], call["intent"]) == ("billing", "alice", "refund")
    assert abs(call["duration_s"] - CALL_S) < 0.01
    matched = [f["text"].lower() for f in call["snippet"] if f["match"]]
    assert matched and all("refund" in text for text in matched)
    assert "".join(f["text"] for f in call["snippet"]).count("refund") >= 1
    assert call["link"] == (
        f"/qa?conversation={seeded.voice_id}&recording={seeded.recording_id}"
        f"&offset_ms={call['offset_ms']}"
    )
    [agent] = (await search(bridge, q="certainly"))["hits"]  # said on the agent's channel
    assert agent["speaker"] == "agent"
    assert abs(agent["offset_ms"] - seeded.agent_word.start_ms) <= 500
    ranks = [hit["rank"] for hit in body["hits"]]
    assert ranks == sorted(ranks, reverse=True)


async def test_a_typed_card_number_is_masked_in_the_index(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa
    body = await search(bridge, q="charge")
    [chat] = by_kind(body, "message")
    assert chat["conversation_id"] == seeded.chat_id
    assert chat["item_id"] == seeded.chat_message_id
    assert chat["offset_ms"] is None and chat["recording_id"] is None
    text = "".join(f["text"] for f in chat["snippet"])
    assert "4111" not in text
    for digits in ("4111", "1111", "4111*"):
        assert (await search(bridge, q=digits))["hits"] == [], digits


async def test_a_spoken_card_number_is_not_in_the_index(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, _ = qa
    assert (await search(bridge, q="four"))["hits"] == []
    [hit] = (await search(bridge, q='"card number"'))["hits"]
    assert "four" not in "".join(f["text"] for f in hit["snippet"])


async def test_phrases_boolean_operators_and_prefixes(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa
    phrase = await search(bridge, q='"refund for my order"')
    assert [h["conversation_id"] for h in phrase["hits"]] == [seeded.voice_id]
    assert (await search(bridge, q='"order for my refund"'))["hits"] == []
    prefix = await search(bridge, q="refu*")
    assert {h["conversation_id"] for h in prefix["hits"]} == {seeded.voice_id, seeded.chat_id}
    negated = await search(bridge, q="refund -charge")
    assert {h["conversation_id"] for h in negated["hits"]} == {seeded.voice_id}
    either = await search(bridge, q="charge OR certainly")
    assert {h["kind"] for h in either["hits"]} == {"message", "transcript"}


async def test_filters(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa

    def conversations(body: Any) -> set[int]:
        return {hit["conversation_id"] for hit in body["hits"]}

    both = {seeded.voice_id, seeded.chat_id}
    assert conversations(await search(bridge, q="refund")) == both
    assert conversations(await search(bridge, q="refund", channel="webchat")) == {seeded.chat_id}
    assert conversations(await search(bridge, q="refund", channel="voice")) == {seeded.voice_id}
    for name, value in (("queue", "billing"), ("agent", "alice"), ("intent", "refund")):
        assert conversations(await search(bridge, q="refund", **{name: value})) == {
            seeded.voice_id
        }, name
        assert conversations(await search(bridge, q="refund", **{name: "other"})) == set()
    now = time.time()
    assert conversations(await search(bridge, q="refund", since=now - 3600)) == both
    assert conversations(await search(bridge, q="refund", since=now + 3600)) == set()
    assert conversations(await search(bridge, q="refund", until=now - 3600)) == set()
    long_calls = await search(bridge, q="refund", channel="voice", min_duration_s=CALL_S + 1)
    assert conversations(long_calls) == set()
    short_calls = await search(bridge, q="refund", channel="voice", max_duration_s=CALL_S + 1)
    assert conversations(short_calls) == {seeded.voice_id}


async def test_pages(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, _ = qa
    everything = await search(bridge, q="refund")
    assert len(everything["hits"]) == 2 and everything["next_offset"] is None
    first = await search(bridge, q="refund", limit=1)
    assert len(first["hits"]) == 1 and first["next_offset"] == 1
    rest = await search(bridge, q="refund", limit=1, offset=1)
    assert len(rest["hits"]) == 1 and rest["next_offset"] is None
    seen = [(h["kind"], h["item_id"]) for h in first["hits"] + rest["hits"]]
    assert sorted(seen) == sorted((h["kind"], h["item_id"]) for h in everything["hits"])


@pytest.mark.parametrize("query", ['"refund', "(refund", "refund AND (", "NOT"])
async def test_a_malformed_query_is_a_400_that_says_why(
    qa: tuple[Bridge, SeededCalls], query: str
) -> None:
    bridge, _ = qa
    reply = await bridge.client.get("/api/search", params={"q": query})
    assert reply.status == 400, query
    body = await reply.json()
    assert body["field"] == "q" and body["error"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "q"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=refund&limit=0", "limit"),
        ("q=refund&limit=101", "limit"),
        ("q=refund&offset=-1", "offset"),
        ("q=refund&channel=fax", "channel"),
        ("q=refund&since=200&until=100", "until"),
        ("q=refund&min_duration_s=20&max_duration_s=10", "max_duration_s"),
        ("q=refund&unknown=1", "unknown"),
    ],
)
async def test_bad_parameters_are_400(
    qa: tuple[Bridge, SeededCalls], query: str, field: str
) -> None:
    bridge, _ = qa
    body = await bridge.json("GET", f"/api/search?{query}", 400)
    assert body["field"] == field
