"""The QA routes of a call over a real store: transcript, recording, audio with Range, audit.

A call is seeded as the server would leave it (``qa_fixtures``): a real WAV under
the recordings root, registered, its transcription completed with timed words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.hub import AGENTS
from bridge.keys import PLAYBACK_AUDIT
from conversations import InvalidValue
from tests.unit.bridge.conftest import Bridge, make_bridge
from tests.unit.bridge.qa_fixtures import CARD_SPOKEN, SeededCalls, seed_calls, write_wav


@pytest.fixture
async def qa(tmp_path: Path) -> AsyncIterator[tuple[Bridge, SeededCalls]]:
    async for bridge in make_bridge(tmp_path, recordings_dir=tmp_path / "recordings"):
        yield bridge, await seed_calls(bridge.store, tmp_path / "recordings")


def qa_paths(seeded: SeededCalls) -> list[str]:
    return [
        "/api/search?q=refund",
        f"/api/conversations/{seeded.voice_id}/transcript",
        f"/api/recordings/{seeded.recording_id}",
        f"/api/recordings/{seeded.recording_id}/audio",
    ]


async def audit_entries(bridge: Bridge, action: str) -> list[Any]:
    return [e for e in await bridge.store.audit_log(limit=1000) if e.action == action]


# ----------------------------------------------------------------------- access


async def test_only_qa_and_admin_users_reach_the_qa_routes(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    for path in qa_paths(seeded):
        assert (await bridge.client.get(path)).status == 401, path
    token = await bridge.add_token("robot", "conversations:read", "audit:read")
    for path in qa_paths(seeded):
        reply = await bridge.client.get(path, headers=bridge.bearer(token))
        assert reply.status == 403, path  # no token scope opens them: users only
    await bridge.login("ann", "agent")
    for path in qa_paths(seeded):
        reply = await bridge.client.get(path)
        assert reply.status == 403, path
        assert "qa" in (await reply.json())["error"]
    await bridge.login("quinn", "qa")
    for path in qa_paths(seeded):
        assert (await bridge.client.get(path)).status == 200, path


# ------------------------------------------------------------------- transcript


async def test_transcript_has_both_channels_timed_words_and_masks_the_card_for_qa(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    await bridge.login("quinn", "qa")
    body = await bridge.json("GET", f"/api/conversations/{seeded.voice_id}/transcript", 200)
    assert body["redacted"] is True
    assert [r["id"] for r in body["recordings"]] == [seeded.recording_id]
    assert body["recordings"][0]["transcription"]["status"] == "done"
    segments = body["segments"]
    assert [s["channel"] for s in segments] == ["caller", "agent", "caller"]
    assert [s["speaker"] for s in segments] == ["customer", "agent", "customer"]
    starts = [s["start_ms"] for s in segments]
    assert starts == sorted(starts)
    refund = next(w for w in segments[0]["words"] if w["text"] == "refund")
    assert (refund["start_ms"], refund["end_ms"]) == (seeded.refund.start_ms, seeded.refund.end_ms)
    card = segments[2]
    assert "[card]" in card["text"] and "one one" not in card["text"]
    words = [w["text"] for w in card["words"]]
    assert words[:4] == ["my", "card", "number", "is"]
    assert "[card]" in words and "one" not in words and "" not in words
    assert CARD_SPOKEN not in str(body)
    [entry] = await audit_entries(bridge, "transcript.read")
    assert entry.actor == "quinn" and entry.target == f"conversation:{seeded.voice_id}"
    assert entry.detail["unredacted"] is False


async def test_admin_alone_reads_the_transcript_unredacted_and_it_is_audited(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    path = f"/api/conversations/{seeded.voice_id}/transcript?unredacted=true"
    await bridge.login("quinn", "qa")
    refused = await bridge.json("GET", path, 403)
    assert refused["field"] == "unredacted"
    await bridge.login("root", "admin")
    body = await bridge.json("GET", path, 200)
    assert body["redacted"] is False
    assert CARD_SPOKEN in body["segments"][2]["text"]
    entries = await audit_entries(bridge, "transcript.read")
    assert [(e.actor, e.detail["unredacted"]) for e in entries] == [("root", True)]


async def test_a_chat_has_an_empty_transcript(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa
    await bridge.login("quinn", "qa")
    body = await bridge.json("GET", f"/api/conversations/{seeded.chat_id}/transcript", 200)
    assert body["recordings"] == [] and body["segments"] == []
    missing = await bridge.json("GET", "/api/conversations/9999/transcript", 404)
    assert missing["field"] == "conversation_id"


# ------------------------------------------------------------- chat redaction


async def test_chat_text_is_masked_for_agents_and_qa_and_admin_may_unmask_it(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    path = f"/api/conversations/{seeded.chat_id}"
    for name, role in (("ann", "agent"), ("quinn", "qa")):
        await bridge.login(name, role)
        [message] = (await bridge.json("GET", path, 200))["messages"]
        assert "[card]" in message["text"], name
        assert "4111" not in message["text"], name
        assert (await bridge.json("GET", f"{path}?unredacted=true", 403))["field"] == "unredacted"
    await bridge.login("root", "admin")
    [plain] = (await bridge.json("GET", path, 200))["messages"]
    assert "[card]" in plain["text"]  # admins too, unless they ask
    [message] = (await bridge.json("GET", f"{path}?unredacted=true", 200))["messages"]
    assert "4111 1111 1111 1111" in message["text"]
    reads = [e for e in await audit_entries(bridge, "conversation.read") if e.actor == "root"]
    assert [e.detail.get("unredacted", False) for e in reversed(reads)] == [False, True]


# -------------------------------------------------------------------- recording


async def test_recording_metadata_has_its_transcription_job(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    await bridge.login("quinn", "qa")
    body = await bridge.json("GET", f"/api/recordings/{seeded.recording_id}", 200)
    assert body["conversation_id"] == seeded.voice_id
    assert body["format"] == "wav"
    assert body["size_bytes"] == seeded.audio.stat().st_size
    assert body["deleted_at"] is None
    assert body["audio_url"] == f"/api/recordings/{seeded.recording_id}/audio"
    assert body["transcription"]["status"] == "done"
    assert body["transcription"]["attempts"] == 1
    assert "path" not in body and "token" not in str(body["transcription"])
    missing = await bridge.json("GET", "/api/recordings/9999", 404)
    assert missing["field"] == "recording_id"


# ------------------------------------------------------------------------ audio


async def test_audio_is_served_whole_or_by_range(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa
    await bridge.login("quinn", "qa")
    path = f"/api/recordings/{seeded.recording_id}/audio"
    data = seeded.audio.read_bytes()
    size = len(data)

    whole = await bridge.client.get(path)
    assert whole.status == 200
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert int(whole.headers["Content-Length"]) == size
    assert await whole.read() == data
    etag = whole.headers["ETag"]

    head = await bridge.client.get(path, headers={"Range": "bytes=0-43"})
    assert head.status == 206
    assert head.headers["Content-Range"] == f"bytes 0-43/{size}"
    assert await head.read() == data[:44]

    middle = await bridge.client.get(path, headers={"Range": "bytes=20000-"})
    assert middle.status == 206
    assert middle.headers["Content-Range"] == f"bytes 20000-{size - 1}/{size}"
    assert await middle.read() == data[20000:]

    tail = await bridge.client.get(path, headers={"Range": "bytes=-100"})
    assert tail.status == 206 and await tail.read() == data[-100:]

    several = await bridge.client.get(path, headers={"Range": "bytes=0-1,10-11"})
    assert several.status == 200 and await several.read() == data

    same = await bridge.client.get(path, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status == 206 and await same.read() == data[:10]
    changed = await bridge.client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert changed.status == 200 and await changed.read() == data


async def test_a_range_beyond_the_file_is_416(qa: tuple[Bridge, SeededCalls]) -> None:
    bridge, seeded = qa
    await bridge.login("quinn", "qa")
    size = seeded.audio.stat().st_size
    path = f"/api/recordings/{seeded.recording_id}/audio"
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        reply = await bridge.client.get(path, headers={"Range": header})
        assert reply.status == 416, header
        assert reply.headers["Content-Range"] == f"bytes */{size}"
        assert str(size) in (await reply.json())["error"]
    assert await audit_entries(bridge, "recording.play") == []  # nothing was played


async def test_playback_is_audited_once_per_listener_and_recording_per_window(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    now = [1000.0]
    audits = bridge.client.server.app[PLAYBACK_AUDIT]
    audits.clock = lambda: now[0]  # a fake clock: the window is 5 minutes
    path = f"/api/recordings/{seeded.recording_id}/audio"
    await bridge.login("quinn", "qa")
    for header in ("bytes=0-", "bytes=1000-", "bytes=20000-30000", "bytes=0-43"):
        reply = await bridge.client.get(path, headers={"Range": header})
        assert reply.status == 206
        await reply.read()
    [entry] = await audit_entries(bridge, "recording.play")
    assert entry.actor == "quinn" and entry.target == f"recording:{seeded.recording_id}"
    assert entry.detail["conversation_id"] == seeded.voice_id

    now[0] += 301.0  # a new window: the same listener makes a new entry
    assert (await bridge.client.get(path, headers={"Range": "bytes=0-9"})).status == 206
    await bridge.login("root", "admin")  # another listener: their own entry
    assert (await bridge.client.get(path)).status == 200
    entries = await audit_entries(bridge, "recording.play")
    assert sorted(e.actor for e in entries) == ["quinn", "quinn", "root"]


async def test_a_recording_deleted_by_retention_is_410_and_keeps_its_transcript(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    await bridge.store.mark_recording_deleted(seeded.recording_id)
    await bridge.login("quinn", "qa")
    gone = await bridge.json("GET", f"/api/recordings/{seeded.recording_id}/audio", 410)
    assert "retention" in gone["error"]
    body = await bridge.json("GET", f"/api/recordings/{seeded.recording_id}", 200)
    assert body["deleted_at"] is not None and body["audio_url"] is None
    transcript = await bridge.json("GET", f"/api/conversations/{seeded.voice_id}/transcript", 200)
    assert len(transcript["segments"]) == 3
    assert await audit_entries(bridge, "recording.play") == []


async def test_unknown_recordings_and_missing_files_are_404(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    await bridge.login("quinn", "qa")
    missing = await bridge.json("GET", "/api/recordings/9999/audio", 404)
    assert missing["field"] == "recording_id"
    seeded.audio.unlink()
    gone_file = await bridge.json("GET", f"/api/recordings/{seeded.recording_id}/audio", 404)
    assert "missing" in gone_file["error"]


async def test_without_a_recordings_directory_no_audio_is_served(tmp_path: Path) -> None:
    async for bridge in make_bridge(tmp_path):
        seeded = await seed_calls(bridge.store, tmp_path / "recordings")
        await bridge.login("quinn", "qa")
        body = await bridge.json("GET", f"/api/recordings/{seeded.recording_id}/audio", 404)
        assert "no recordings directory" in body["error"]
        await bridge.json("GET", f"/api/recordings/{seeded.recording_id}", 200)


async def _register(bridge: Bridge, call_id: str, path: str) -> Any:
    customer = await bridge.store.customer_for("phone", "+15551239999")
    conversation = await bridge.store.open_conversation(customer.id, "voice", call_id=call_id)
    return await bridge.store.register_recording(
        conversation.id, call_id, path, fmt="wav", duration_s=1.0, size_bytes=44,
        started_at=1.0, ended_at=2.0, transcribe=False,
    )  # fmt: skip


async def test_a_stored_path_leading_outside_the_root_is_never_served(
    qa: tuple[Bridge, SeededCalls], tmp_path: Path
) -> None:
    bridge, _ = qa
    secret = tmp_path / "secret.wav"
    write_wav(secret, seconds=0.1)
    root = tmp_path / "recordings"
    (root / "links").mkdir()
    (root / "links" / "out.wav").symlink_to(secret)
    await bridge.login("quinn", "qa")
    for n, path in enumerate(["../secret.wav", "links/../../secret.wav", str(secret)]):
        try:
            recording = await _register(bridge, f"evil-{n}", path)
        except InvalidValue:
            continue  # the store refuses it already: fine too
        body = await bridge.json("GET", f"/api/recordings/{recording.id}/audio", 404)
        assert "under the recordings directory" in body["error"], path
    linked = await _register(bridge, "evil-link", "links/out.wav")
    body = await bridge.json("GET", f"/api/recordings/{linked.id}/audio", 404)
    assert "under the recordings directory" in body["error"]


async def test_a_card_typed_into_a_chat_reaches_agents_masked(
    qa: tuple[Bridge, SeededCalls],
) -> None:
    bridge, seeded = qa
    pushed = bridge.hub.subscribe([AGENTS])  # the chat waits: every agent page gets it
    token = await bridge.add_token("widget", "messages:write")
    body = await bridge.json(
        "POST",
        f"/api/conversations/{seeded.chat_id}/messages",
        201,
        json={"text": "my card is 5555-5555-5555-4444 thanks"},
        headers=bridge.bearer(token),
    )
    assert body["message"]["text"] == "my card is [card] thanks"
    event = await pushed.get()
    assert event is not None and event["type"] == "chat.message"
    assert event["message"]["text"] == "my card is [card] thanks"
    await bridge.login("root", "admin")
    plain = await bridge.json("GET", f"/api/conversations/{seeded.chat_id}?unredacted=true", 200)
    assert plain["messages"][-1]["text"] == "my card is 5555-5555-5555-4444 thanks"
