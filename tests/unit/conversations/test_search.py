"""Search's specification, on SQLite (FTS5) and PostgreSQL (tsvector): what is found, in
what order, with which filters, where in the recording, and never a masked number."""

from __future__ import annotations

import pytest

from conversations import (
    InvalidValue,
    Recording,
    SearchQuery,
    SegmentInput,
    Store,
    WordInput,
    open_store,
    operations_search,
)
from conversations.migrations import migrate
from conversations.operations import Query
from tests.unit.conversations.conftest import START, FakeClock

DAY = 86_400.0
STEP_MS = 400  # every generated word lasts this long, back to back


def _words(text: str, start_ms: int) -> tuple[WordInput, ...]:
    return tuple(
        WordInput(word, start_ms + i * STEP_MS, start_ms + (i + 1) * STEP_MS - 20)
        for i, word in enumerate(text.split())
    )


async def _call(
    store: Store,
    clock: FakeClock,
    lines: list[tuple[str, int, str]],
    *,
    day: int = 0,
    queue: str = "general",
    agent: str = "alice",
    intent: str = "other",
    duration_s: float = 60.0,
) -> Recording:
    """A transcribed call; ``lines``: (channel, start_ms, text)."""
    clock.now = START + day * DAY
    customer = await store.customer_for("phone", f"+1555{int(clock.now) % 10_000_000:07d}")
    call_id = f"call-{clock.now}"
    conversation = await store.open_conversation(customer.id, "voice", call_id=call_id)
    await store.update_conversation(
        conversation.id, status="closed", queue=queue, agent=agent, intent=intent
    )
    recording = await store.register_recording(
        conversation.id,
        call_id,
        f"d/{call_id}.wav",
        fmt="wav",
        duration_s=duration_s,
        size_bytes=1000,
        started_at=clock.now,
        ended_at=clock.now + duration_s,
    )
    job = await store.claim_transcription("w", 600)
    segments = [
        SegmentInput(
            channel,
            "customer" if channel == "caller" else "agent",
            start,
            start + len(text.split()) * STEP_MS,
            _words(text, start),
        )
        for channel, start, text in lines
    ]
    assert await store.complete_transcription(job.id, job.token, segments)
    return recording


async def _chat(store: Store, clock: FakeClock, texts: list[str], day: int = 0, **fields):
    clock.now = START + day * DAY
    customer = await store.customer_for("webchat", f"visitor-{clock.now}")
    chat = await store.open_conversation(customer.id, "webchat", status="connected")
    for text in texts:
        await store.add_message(chat.id, "customer", text)
    if fields:
        await store.update_conversation(chat.id, **fields)
    return chat


async def _find(store: Store, text: str, **filters):
    return (await store.search(SearchQuery(text, **filters))).hits


def _ids(hits) -> set[int]:
    return {hit.conversation_id for hit in hits}


# ---------------------------------------------------------------- the language


async def test_words_phrases_or_not_and_prefixes_find_what_they_say(store: Store, clock: FakeClock):
    chest = await _call(store, clock, [("caller", 0, "i have chest pain since this morning")])
    back = await _call(store, clock, [("caller", 0, "pain in my back and my chest")], day=1)
    refund = await _call(store, clock, [("caller", 0, "i want a refund for the order")], day=2)
    refunded = await _call(store, clock, [("caller", 0, "you refunded me but cancel it")], day=3)
    assert _ids(await _find(store, '"chest pain"')) == {chest.conversation_id}
    assert _ids(await _find(store, "chest pain")) == {chest.conversation_id, back.conversation_id}
    assert _ids(await _find(store, "refund*")) == {refund.conversation_id, refunded.conversation_id}
    assert _ids(await _find(store, "refund* -cancel")) == {refund.conversation_id}
    assert _ids(await _find(store, "morning OR order")) == {
        chest.conversation_id,
        refund.conversation_id,
    }
    assert _ids(await _find(store, "(morning OR back) chest")) == {
        chest.conversation_id,
        back.conversation_id,
    }
    assert await _find(store, "zyxwvut") == ()
    assert await _find(store, '"pain chest"') == ()


async def test_a_transcript_matches_across_its_channels_as_one_call(store: Store, clock: FakeClock):
    both = await _call(
        store, clock, [("caller", 0, "my insurance was denied"), ("agent", 3000, "a refund then")]
    )
    hits = await _find(store, "insurance refund")
    assert _ids(hits) == {both.conversation_id}
    assert len(hits) == 1  # one hit per call, at its first matched word
    assert (hits[0].speaker, hits[0].offset_ms) == ("customer", STEP_MS)


async def test_bad_syntax_and_bad_filters_are_invalid(store: Store):
    for text in ('"unclosed', "-only", "a OR", ""):
        with pytest.raises(InvalidValue):
            await store.search(SearchQuery(text))
    for filters in (
        {"channel": "fax"},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"since": -5},
        {"min_duration_s": float("nan")},
        {"queue": ""},
    ):
        with pytest.raises(InvalidValue):
            await store.search(SearchQuery("refund", **filters))
    with pytest.raises(InvalidValue):
        await store.search("refund")


async def test_user_text_cannot_inject_index_syntax(store: Store, clock: FakeClock):
    await _call(store, clock, [("caller", 0, "near the body of the text")])
    for text in ("NEAR(near body)", "body:near", "'near' & 'body'", "near:* | !body", "^near"):
        await store.search(SearchQuery(text))  # words, not syntax: no database error


# ---------------------------------------------------------------- hits


async def test_a_hit_says_where_the_first_matched_word_is_in_the_recording(
    store: Store, clock: FakeClock
):
    recording = await _call(
        store,
        clock,
        [
            ("caller", 1000, "hello there"),
            ("agent", 2500, "how can i help"),
            ("caller", 5000, "i have had chest pain since monday"),
        ],
        queue="triage",
        agent="bob",
        intent="chest_pain",
    )
    (hit,) = await _find(store, '"chest pain"')
    segments = await store.transcript(recording.conversation_id)
    assert (hit.kind, hit.recording_id, hit.item_id) == ("transcript", recording.id, segments[2].id)
    assert hit.offset_ms == 5000 + 3 * STEP_MS  # "chest", the phrase's first word
    assert hit.at == pytest.approx(recording.started_at + hit.offset_ms / 1000)
    assert (hit.channel, hit.speaker) == ("voice", "customer")
    assert (hit.queue, hit.agent, hit.intent, hit.duration_s) == (
        "triage",
        "bob",
        "chest_pain",
        60.0,
    )
    assert hit.started_at == START and hit.rank > 0
    assert hit.snippet == (("i have had ", False), ("chest pain", True), (" since monday", False))
    (hit,) = await _find(store, "hel*")
    assert hit.offset_ms == 1000 and hit.snippet[0] == ("hello", True)  # the earliest match
    (hit,) = await _find(store, "monday OR help")
    assert (hit.offset_ms, hit.speaker) == (2500 + 3 * STEP_MS, "agent")


async def test_a_long_segment_gives_a_snippet_cut_around_the_match(store: Store, clock: FakeClock):
    text = " ".join(f"w{i}" for i in range(60)) + " refund " + " ".join(f"x{i}" for i in range(60))
    await _call(store, clock, [("caller", 0, text)])
    (hit,) = await _find(store, "refund")
    assert hit.snippet[0][0].startswith("\u2026 w54") and hit.snippet[1] == ("refund", True)
    assert hit.snippet[-1][0].endswith("\u2026") and not hit.snippet[-1][1]
    assert hit.offset_ms == 60 * STEP_MS


async def test_chat_messages_are_found_as_messages_of_their_conversation(
    store: Store, clock: FakeClock
):
    chat = await _chat(store, clock, ["Hello!", "I want a REFUND, please."], queue="billing")
    (hit,) = await _find(store, "refund")
    assert (hit.kind, hit.conversation_id, hit.channel) == ("message", chat.id, "webchat")
    assert (hit.recording_id, hit.offset_ms, hit.duration_s) == (None, None, None)
    assert hit.item_id == (await store.messages(chat.id))[1].id
    assert hit.snippet == (("I want a ", False), ("REFUND,", True), (" please.", False))
    assert hit.queue == "billing" and hit.speaker == "customer"


async def test_more_mentions_rank_higher(store: Store, clock: FakeClock):
    once = await _call(store, clock, [("caller", 0, "refund " + "word " * 30)])
    often = await _call(store, clock, [("caller", 0, "refund refund refund please")], day=1)
    hits = await _find(store, "refund")
    assert [hit.conversation_id for hit in hits] == [often.conversation_id, once.conversation_id]
    assert hits[0].rank > hits[1].rank


async def test_pages_and_totals(store: Store, clock: FakeClock):
    for day in range(5):
        await _call(store, clock, [("caller", 0, f"refund number {day}")], day=day)
    page = await store.search(SearchQuery("refund", limit=2))
    assert (len(page.hits), page.total) == (2, 5)
    rest = await store.search(SearchQuery("refund", limit=10, offset=2))
    assert (len(rest.hits), rest.total) == (3, 5)
    assert _ids(page.hits).isdisjoint(_ids(rest.hits))
    beyond = await store.search(SearchQuery("refund", offset=10))
    assert (beyond.hits, beyond.total) == ((), 5)
    assert (await store.search(SearchQuery("nothing"))).total == 0


async def test_past_the_rank_window_the_newest_matches_are_ranked(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(operations_search, "RANK_WINDOW", 3)
    calls = [
        await _call(store, clock, [("caller", 0, "refund " * (5 - day))], day=day)
        for day in range(5)
    ]
    page = await store.search(SearchQuery("refund"))
    assert page.total == 5  # unfiltered: counted in the index alone
    # The three newest, best first (day 2 says refund three times): not the older ones.
    assert [hit.conversation_id for hit in page.hits] == [c.conversation_id for c in calls[2:]]
    # A filter checked outside the full-text index: counting every match would cost too much.
    filtered = await store.search(SearchQuery("refund", min_duration_s=1))
    assert filtered.total is None and len(filtered.hits) == 3
    # SQLite has the queue as a word in the index, so it still counts there.
    by_queue = await store.search(SearchQuery("refund", queue="general"))
    assert by_queue.total == (5 if store.dialect == "sqlite" else None)


# ---------------------------------------------------------------- filters


async def test_every_filter_narrows_the_matches(store: Store, clock: FakeClock):
    old = await _call(
        store,
        clock,
        [("caller", 0, "refund")],
        day=0,
        queue="billing",
        agent="alice",
        intent="refund",
        duration_s=30,
    )
    new = await _call(
        store,
        clock,
        [("caller", 0, "refund")],
        day=10,
        queue="sales",
        agent="bob",
        intent="other",
        duration_s=300,
    )
    chat = await _chat(store, clock, ["refund"], day=5, queue="billing", agent="bob")
    o, n, c = old.conversation_id, new.conversation_id, chat.id
    assert _ids(await _find(store, "refund")) == {o, n, c}
    assert _ids(await _find(store, "refund", since=START + 5 * DAY)) == {n, c}
    assert _ids(await _find(store, "refund", until=START + 5 * DAY)) == {o}
    assert _ids(await _find(store, "refund", queue="billing")) == {o, c}
    assert _ids(await _find(store, "refund", agent="bob")) == {n, c}
    assert _ids(await _find(store, "refund", intent="refund")) == {o}
    assert _ids(await _find(store, "refund", channel="webchat")) == {c}
    assert _ids(await _find(store, "refund", channel="voice")) == {o, n}
    assert _ids(await _find(store, "refund", min_duration_s=60)) == {n}
    assert _ids(await _find(store, "refund", max_duration_s=60)) == {o}
    assert _ids(
        await _find(store, "refund", queue="billing", channel="voice", until=START + DAY)
    ) == {o}


async def test_filters_follow_later_changes_of_the_conversation(store: Store, clock: FakeClock):
    chat = await _chat(store, clock, ["my refund please"])
    assert await _find(store, "refund", queue="billing") == ()
    await store.update_conversation(chat.id, queue="billing", agent="carol", intent="refund")
    (hit,) = await _find(store, "refund", queue="billing", agent="carol", intent="refund")
    assert (hit.queue, hit.agent, hit.intent) == ("billing", "carol", "refund")


async def test_an_ivr_utterance_is_filtered_by_its_calls_recording(store: Store, clock: FakeClock):
    customer = await store.customer_for("phone", "+15550001111")
    call = await store.open_conversation(customer.id, "voice", call_id="ivr-call")
    said = await store.add_message(call.id, "customer", "my chest hurts", offset_ms=1500)
    assert await _find(store, "chest", min_duration_s=10) == ()
    recording = await store.register_recording(
        call.id,
        "ivr-call",
        "d/ivr.wav",
        fmt="wav",
        duration_s=20.0,
        size_bytes=1,
        started_at=START,
        ended_at=START + 20,
        transcribe=False,
    )
    (hit,) = await _find(store, "chest", min_duration_s=10)
    assert (hit.kind, hit.item_id, hit.recording_id, hit.offset_ms) == (
        "message",
        said.id,
        recording.id,
        1500,
    )


# ---------------------------------------------------------------- redaction


async def test_a_card_typed_in_a_chat_is_masked_and_never_found_by_its_digits(
    store: Store, clock: FakeClock
):
    chat = await _chat(store, clock, ["my card is 4111 1111 1111 1111 thanks"])
    (shown,) = await store.messages(chat.id)
    assert shown.text == "my card is [card] thanks"
    (raw,) = await store.messages(chat.id, unredacted=True)
    assert raw.text == "my card is 4111 1111 1111 1111 thanks"
    for digits in ("4111", "4111111111111111", '"4111 1111"', "411*", "1111"):
        assert await _find(store, digits) == ()
    (hit,) = await _find(store, "thanks")
    assert "4111" not in str(hit.snippet) and "[card]" in "".join(t for t, _ in hit.snippet)


async def test_a_spoken_card_is_masked_in_the_index_and_in_the_transcript(
    store: Store, clock: FakeClock
):
    digits = "four one one one one one one one one one one one one one one one"
    recording = await _call(store, clock, [("caller", 0, f"it is {digits} ok")])
    for text in ("four", '"four one one"', "one"):
        assert await _find(store, text) == ()
    (hit,) = await _find(store, "ok")
    assert hit.snippet == (("it is [card] ", False), ("ok", True))
    assert hit.offset_ms == 18 * STEP_MS
    (segment,) = await store.transcript(recording.conversation_id)
    assert segment.text == "it is [card] ok"
    (raw,) = await store.transcript(recording.conversation_id, unredacted=True)
    assert raw.text == f"it is {digits} ok"


async def test_messages_from_before_redaction_are_redacted_and_indexed_at_start(
    store_url: str, clock: FakeClock
):
    old = open_store(store_url, clock=clock)
    await old._open()
    await old._transaction(migrate(old.dialect, target=2))
    await old._transaction(_schema_2_chat("call me on 555 123 4567 about the refund"))
    await old._close()
    async with open_store(store_url, clock=clock) as store:
        (message,) = await store.messages(1)
        assert message.text == "call me on [phone] about the refund"
        assert (await store.messages(1, unredacted=True))[0].text.endswith("4567 about the refund")
        (hit,) = await _find(store, "refund")
        assert hit.item_id == message.id and hit.channel == "webchat"
        assert await _find(store, "4567") == ()


def _schema_2_chat(text: str):
    yield Query("INSERT INTO customers (display_name, created_at) VALUES (?, ?)", ("x", START))
    yield Query(
        "INSERT INTO conversations (customer_id, channel, status, started_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (1, "webchat", "closed", START, START),
    )
    yield Query(
        "INSERT INTO messages (conversation_id, speaker, text, at) VALUES (?, ?, ?, ?)",
        (1, "customer", text, START),
    )


# ---------------------------------------------------------------- filters as index words (SQLite)


def test_day_blocks_cover_a_date_range_exactly_with_few_words():
    import random

    rng = random.Random(7)
    for _ in range(300):
        first = rng.randrange(20_000, 21_000)
        last = first + rng.randrange(0, 400)
        blocks = operations_search.day_blocks(first, last)
        covered = []
        for block in blocks:
            level, index = (int(part) for part in block[1:].split("x"))
            covered.extend(range(index * 4**level, (index + 1) * 4**level))
        assert covered == list(range(first, last + 1))
        assert len(blocks) <= 6 * operations_search.DAY_LEVELS


async def test_a_short_date_range_is_exact_to_the_second(store: Store, clock: FakeClock):
    calls = [await _call(store, clock, [("caller", 0, "refund")], day=day) for day in range(4)]
    since, until = START + 1 * DAY, START + 3 * DAY  # mid-day boundaries (START is not midnight)
    assert _ids(await _find(store, "refund", since=since, until=until)) == {
        calls[1].conversation_id,
        calls[2].conversation_id,
    }
    assert await _find(store, "refund", since=since + 1, until=since + 2) == ()
    assert _ids(await _find(store, "refund", since=since, until=since + 1)) == {
        calls[1].conversation_id
    }


async def test_retagging_keeps_the_full_text_index_consistent(store: Store, clock: FakeClock):
    chat = await _chat(store, clock, ["refund now", "and a second refund"])
    for queue in ("billing", "sales", "billing"):
        await store.update_conversation(chat.id, queue=queue, agent=f"agent-{queue}")
    assert len(await _find(store, "refund", queue="billing", agent="agent-billing")) == 2
    assert await _find(store, "refund", queue="sales") == ()
    if store.dialect == "sqlite":
        await store._transaction(_fts_integrity_check())


def _fts_integrity_check():
    # FTS5 compares its index with the content table (search_items.body, .tags).
    yield Query("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)")
