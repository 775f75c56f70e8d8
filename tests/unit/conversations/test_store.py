"""The conversation store's specification, run on SQLite and on PostgreSQL.

Every test gets an empty, started store (``store``), on a fake wall clock
(``clock``). Names read as the rule they check.
"""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest

from conversations import (
    Conflict,
    ConversationFilter,
    Identity,
    IdentityTaken,
    InvalidValue,
    NotFound,
    Store,
    StoreClosed,
    StoreError,
    StoreOverloaded,
    UserExists,
    open_store,
)
from conversations.migrations import LATEST_VERSION, migrate
from conversations.operations import Query
from tests.unit.conversations.conftest import START, FakeClock

# ---------------------------------------------------------------- customers and identities


async def test_a_customer_is_created_once_and_found_by_any_spelling_of_the_number(store: Store):
    ann = await store.customer_for("phone", '"Ann" <sip:+15551234567@pbx;user=phone>', "Ann")
    assert ann.identities == (Identity("phone", "+15551234567"),)
    assert ann.display_name == "Ann" and ann.created_at == START and ann.merged_into is None
    for spelling in ("tel:+1-555-123-4567", "555 123 4567", "<sip:0015551234567@gw>"):
        assert await store.customer_for("phone", spelling) == ann
        assert await store.find_customer("phone", spelling) == ann
    assert await store.get_customer(ann.id) == ann


async def test_unknown_identities_and_ids_find_nobody(store: Store):
    assert await store.find_customer("email", "nobody@example.com") is None
    assert await store.get_customer(12345) is None


async def test_a_found_customer_without_a_name_gets_one_but_a_name_is_never_overwritten(
    store: Store,
):
    first = await store.customer_for("webchat", "visitor-1")
    assert first.display_name is None
    named = await store.customer_for("webchat", "visitor-1", "Bea")
    assert (named.id, named.display_name) == (first.id, "Bea")
    again = await store.customer_for("webchat", "visitor-1", "Someone Else")
    assert again.display_name == "Bea"
    assert (await store.get_customer(first.id)).display_name == "Bea"


async def test_identities_are_added_normalized_and_adding_one_twice_changes_nothing(store: Store):
    ann = await store.customer_for("phone", "+15551234567")
    ann = await store.add_identity(ann.id, "email", "  Ann@Example.COM ")
    ann = await store.add_identity(ann.id, "account", " ACC-7 ")
    assert await store.add_identity(ann.id, "email", "ann@example.com") == ann
    assert ann.identities == (
        Identity("account", "ACC-7"),
        Identity("email", "ann@example.com"),
        Identity("phone", "+15551234567"),
    )
    assert await store.find_customer("email", "ANN@example.com") == ann


async def test_an_identity_belongs_to_one_customer_only(store: Store):
    ann = await store.customer_for("email", "ann@example.com")
    bob = await store.customer_for("phone", "+15557654321")
    with pytest.raises(IdentityTaken) as taken:
        await store.add_identity(bob.id, "email", "ANN@example.com")
    assert (taken.value.kind, taken.value.value, taken.value.customer_id) == (
        "email",
        "ann@example.com",
        ann.id,
    )
    assert (await store.get_customer(bob.id)).identities == (Identity("phone", "+15557654321"),)
    with pytest.raises(NotFound):
        await store.add_identity(999, "email", "x@example.com")


async def test_concurrent_lookups_of_a_new_identity_create_one_customer(store: Store):
    found = await asyncio.gather(*(store.customer_for("phone", "5551230000") for _ in range(20)))
    assert len({customer.id for customer in found}) == 1


async def test_merging_moves_identities_and_conversations_to_the_kept_customer(store: Store):
    phone = await store.customer_for("phone", "+15551234567")
    chat = await store.customer_for("webchat", "visitor-9", "Ann")
    call = await store.open_conversation(phone.id, "voice", call_id="call-1")
    chat_conversation = await store.open_conversation(chat.id, "webchat")
    kept = await store.merge_customers(chat.id, phone.id)
    assert kept.id == chat.id and kept.display_name == "Ann"
    assert set(kept.identities) == {
        Identity("phone", "+15551234567"),
        Identity("webchat", "visitor-9"),
    }
    assert await store.get_customer(phone.id) == kept  # the old id leads to the survivor
    assert await store.find_customer("phone", "555-123-4567") == kept
    history = await store.list_conversations(ConversationFilter(customer_id=chat.id))
    assert [c.id for c in history] == [chat_conversation.id, call.id]
    assert all(c.customer_id == chat.id for c in history)
    # The absorbed id still names the whole history.
    by_old_id = await store.list_conversations(ConversationFilter(customer_id=phone.id))
    assert by_old_id == history


async def test_the_kept_customer_takes_the_absorbed_name_only_when_it_has_none(store: Store):
    unnamed = await store.customer_for("phone", "+15551234567")
    named = await store.customer_for("email", "cy@example.com", "Cy")
    assert (await store.merge_customers(unnamed.id, named.id)).display_name == "Cy"
    other = await store.customer_for("email", "dee@example.com", "Dee")
    assert (await store.merge_customers(unnamed.id, other.id)).display_name == "Cy"


async def test_merges_chain_and_repeat_without_harm(store: Store):
    a, b, c = [await store.customer_for("account", name) for name in ("a", "b", "c")]
    await store.merge_customers(b.id, a.id)
    await store.merge_customers(c.id, b.id)
    survivor = await store.get_customer(a.id)
    assert survivor.id == c.id
    assert {i.value for i in survivor.identities} == {"a", "b", "c"}
    assert await store.merge_customers(c.id, a.id) == survivor  # already one customer
    assert await store.merge_customers(a.id, c.id) == survivor  # either way round
    conversation = await store.open_conversation(a.id, "webchat")  # an absorbed id is fine
    assert conversation.customer_id == c.id


async def test_merging_a_customer_into_itself_or_an_unknown_one_is_refused(store: Store):
    ann = await store.customer_for("account", "ann")
    with pytest.raises(InvalidValue, match="itself"):
        await store.merge_customers(ann.id, ann.id)
    with pytest.raises(NotFound):
        await store.merge_customers(ann.id, 999)
    with pytest.raises(NotFound):
        await store.merge_customers(999, ann.id)


# ---------------------------------------------------------------- conversations


async def test_a_voice_call_goes_from_ivr_to_closed(store: Store, clock: FakeClock):
    ann = await store.customer_for("phone", "+15551234567")
    opened = await store.open_conversation(ann.id, "voice", call_id="a84b4c76e66710")
    assert (opened.status, opened.channel, opened.customer_id) == ("ivr", "voice", ann.id)
    assert opened.started_at == opened.updated_at == START and opened.ended_at is None
    assert (opened.intent, opened.queue, opened.agent, opened.recording) == (None,) * 4
    clock.advance(5)
    queued = await store.update_conversation(
        opened.id, status="queued", intent="chest_pain", queue="emergency"
    )
    assert (queued.status, queued.intent, queued.queue) == ("queued", "chest_pain", "emergency")
    assert queued.updated_at == START + 5 and queued.ended_at is None
    clock.advance(5)
    connected = await store.update_conversation(opened.id, status="connected", agent="alice")
    assert connected.intent == "chest_pain"  # fields not given are kept
    clock.advance(60)
    closed = await store.update_conversation(
        opened.id, status="closed", recording="2027/01/15/a84b4c76e66710.wav"
    )
    assert closed.ended_at == START + 70 and closed.agent == "alice"
    assert await store.get_conversation(opened.id) == closed
    assert await store.conversation_for_call("a84b4c76e66710") == closed
    assert await store.conversation_for_call("unknown") is None


async def test_ended_at_is_set_once_and_cleared_when_a_conversation_reopens(
    store: Store, clock: FakeClock
):
    ann = await store.customer_for("webchat", "v1")
    chat = await store.open_conversation(ann.id, "webchat", status="queued")
    clock.advance(10)
    abandoned = await store.update_conversation(chat.id, status="abandoned")
    assert abandoned.ended_at == START + 10
    clock.advance(10)
    assert (await store.update_conversation(chat.id, status="closed")).ended_at == START + 10
    reopened = await store.update_conversation(chat.id, status="connected")
    assert reopened.ended_at is None
    opened_closed = await store.open_conversation(ann.id, "webchat", status="abandoned")
    assert opened_closed.ended_at == opened_closed.started_at


async def test_a_call_id_has_one_conversation(store: Store):
    ann = await store.customer_for("account", "ann")
    first = await store.open_conversation(ann.id, "voice", call_id="c1")
    with pytest.raises(Conflict, match="c1"):
        await store.open_conversation(ann.id, "voice", call_id="c1")
    assert await store.conversation_for_call("c1") == first


async def test_changes_to_unknown_conversations_or_customers_are_not_found(store: Store):
    with pytest.raises(NotFound):
        await store.open_conversation(999, "voice")
    with pytest.raises(NotFound):
        await store.update_conversation(999, status="closed")
    assert await store.get_conversation(999) is None


async def test_conversations_are_listed_newest_first_with_every_filter(
    store: Store, clock: FakeClock
):
    ann = await store.customer_for("account", "ann")
    bob = await store.customer_for("account", "bob")
    made = []
    for index, (who, channel, queue) in enumerate(
        [
            (ann, "voice", "emergency"),
            (bob, "webchat", "billing"),
            (ann, "webchat", "billing"),
            (bob, "voice", "pharmacy"),
            (ann, "voice", "billing"),
        ]
    ):
        clock.now = START + 100 * index
        conversation = await store.open_conversation(who.id, channel)
        made.append(
            await store.update_conversation(
                conversation.id, queue=queue, agent="alice" if index % 2 else "bob",
                intent=f"intent-{index % 3}", status="closed" if index < 2 else "connected",
            )
        )  # fmt: skip

    async def ids(**fields) -> list[int]:
        return [c.id for c in await store.list_conversations(ConversationFilter(**fields))]

    every = [c.id for c in reversed(made)]
    assert await ids() == every
    assert await store.list_conversations() == await store.list_conversations(ConversationFilter())
    assert await ids(customer_id=ann.id) == [made[4].id, made[2].id, made[0].id]
    assert await ids(channel="webchat") == [made[2].id, made[1].id]
    assert await ids(status="closed") == [made[1].id, made[0].id]
    assert await ids(queue="billing") == [made[4].id, made[2].id, made[1].id]
    assert await ids(agent="alice") == [made[3].id, made[1].id]
    assert await ids(intent="intent-0") == [made[3].id, made[0].id]
    assert await ids(since=START + 100, until=START + 300) == [made[2].id, made[1].id]
    assert await ids(customer_id=ann.id, channel="voice", queue="billing") == [made[4].id]
    assert await ids(status="ringing") == []
    assert await ids(customer_id=999) == []


async def test_pages_follow_each_other_without_gaps_or_repeats(store: Store):
    ann = await store.customer_for("account", "ann")
    opened = [(await store.open_conversation(ann.id, "webchat")).id for _ in range(7)]
    seen: list[int] = []
    before = None
    while True:
        page = await store.list_conversations(ConversationFilter(limit=3, before_id=before))
        if not page:
            break
        assert len(page) <= 3
        seen += [c.id for c in page]
        before = page[-1].id
    assert seen == sorted(opened, reverse=True)


# ---------------------------------------------------------------- messages


async def test_messages_come_back_in_time_order_with_their_recording_offsets(
    store: Store, clock: FakeClock
):
    ann = await store.customer_for("phone", "+15551234567")
    call = await store.open_conversation(ann.id, "voice")
    clock.advance(30)
    # The post-call transcript arrives after the live chat lines but happened before.
    late = await store.add_message(call.id, "agent", "How can I help?")
    ivr = await store.add_message(call.id, "ivr", "Please say your problem.", at=START + 1)
    said = await store.add_message(
        call.id, "customer", "my chest hurts", at=START + 4, offset_ms=4000, confidence=0.87
    )
    tie = await store.add_message(call.id, "system", "transferred", at=START + 4)
    assert late.at == START + 30 and late.offset_ms is None and late.confidence is None
    assert (said.offset_ms, said.confidence) == (4000, 0.87)
    assert await store.messages(call.id) == [ivr, said, tie, late]
    assert (await store.get_conversation(call.id)).updated_at == START + 30
    assert await store.messages(999) == []


async def test_messages_keep_any_text_exactly(store: Store):
    ann = await store.customer_for("account", "ann")
    chat = await store.open_conversation(ann.id, "webchat")
    texts = ["", "Grüße 👋 — «quoted» 'single' \"double\"", "line\nbreak\ttab", "x" * 10_000,
             "'; DROP TABLE messages; --", "?", "$1"]  # fmt: skip
    for text in texts:
        await store.add_message(chat.id, "customer", text)
    assert [m.text for m in await store.messages(chat.id)] == texts


async def test_a_message_for_an_unknown_conversation_is_not_found(store: Store):
    with pytest.raises(NotFound):
        await store.add_message(999, "customer", "hello")


# ---------------------------------------------------------------- events


async def test_record_event_returns_a_future_at_once_that_resolves_after_commit(
    store: Store, store_url: str
):
    assert not inspect.iscoroutinefunction(store.record_event)
    ann = await store.customer_for("phone", "+15551234567")
    call = await store.open_conversation(ann.id, "voice")
    future = store.record_event(call.id, "dtmf", {"digit": "5", "duration_ms": 160})
    assert isinstance(future, asyncio.Future) and not future.done()
    assert await future is None
    # Acknowledged means committed: another connection sees it now.
    other = open_store(store_url)
    await other.start()
    try:
        [event] = await other.events(call.id)
    finally:
        await other.close()
    assert (event.kind, event.data, event.conversation_id) == (
        "dtmf",
        {"digit": "5", "duration_ms": 160},
        call.id,
    )


async def test_events_are_written_in_batches_and_read_in_time_order(store: Store):
    ann = await store.customer_for("phone", "+15551234567")
    call = await store.open_conversation(ann.id, "voice")
    before = store.stats()
    futures = [
        store.record_event(call.id, "rtp_stats", {"seq": n, "loss": [n / 10, None, True]},
                           at=START + (n % 100) / 10)
        for n in range(3000)
    ]  # fmt: skip
    assert store.stats()["pending_writes"] == 3000 - before["pending_writes"]
    await asyncio.gather(*futures)
    after = store.stats()
    assert after["events_written"] - before["events_written"] == 3000
    assert after["batches"] - before["batches"] < 30  # thousands per transaction, not one each
    assert after["pending_writes"] == 0 and after["write_lag_ms"] == 0.0
    written = await store.events(call.id)
    assert len(written) == 3000
    assert [e.at for e in written] == sorted(e.at for e in written)
    by_seq = {e.data["seq"]: e for e in written}
    assert by_seq[42].data == {"seq": 42, "loss": [4.2, None, True]}
    assert by_seq[42].at == START + 4.2


async def test_an_event_for_an_unknown_conversation_fails_alone(store: Store, caplog):
    ann = await store.customer_for("account", "ann")
    chat = await store.open_conversation(ann.id, "webchat")
    good = [store.record_event(chat.id, "typing", {"n": n}) for n in range(5)]
    bad = store.record_event(999, "typing", {})
    message = asyncio.ensure_future(store.add_message(chat.id, "customer", "still here"))
    await asyncio.gather(*good, message)
    with pytest.raises(NotFound, match="999"):
        await bad
    assert len(await store.events(chat.id)) == 5
    assert [m.text for m in await store.messages(chat.id)] == ["still here"]
    assert store.stats()["failed_writes"] == 1
    assert "1 events not written" in caplog.text


async def test_a_failing_write_does_not_undo_the_others_in_its_batch(store: Store):
    ann = await store.customer_for("account", "ann")
    chat = await store.open_conversation(ann.id, "webchat")
    results = await asyncio.gather(
        store.add_message(chat.id, "customer", "one"),
        store.add_user("alice", {"agent"}, "hash"),
        store.add_user("alice", {"qa"}, "hash"),  # fails in the same batch
        store.add_message(chat.id, "agent", "two"),
        return_exceptions=True,
    )
    assert isinstance(results[2], UserExists)
    assert [m.text for m in await store.messages(chat.id)] == ["one", "two"]
    assert (await store.get_user("alice")).roles == {"agent"}


async def test_close_commits_every_queued_event(store_url: str):
    store = open_store(store_url)
    await store.start()
    ann = await store.customer_for("account", "ann")
    chat = await store.open_conversation(ann.id, "webchat")
    futures = [store.record_event(chat.id, "tick", {"n": n}) for n in range(500)]
    await store.close()  # nobody awaited the futures
    assert all(f.done() and f.exception() is None for f in futures)
    reopened = open_store(store_url)
    await reopened.start()
    try:
        assert len(await reopened.events(chat.id)) == 500
    finally:
        await reopened.close()


async def test_events_beyond_the_pending_limit_are_refused_not_queued(store_url: str):
    store = open_store(store_url, max_pending_events=10)
    await store.start()
    try:
        ann = await store.customer_for("account", "ann")
        chat = await store.open_conversation(ann.id, "webchat")
        futures = [store.record_event(chat.id, "tick", {"n": n}) for n in range(15)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[:10] == [None] * 10
        assert all(isinstance(r, StoreOverloaded) for r in results[10:])
        assert [e.data["n"] for e in await store.events(chat.id)] == list(range(10))
        await store.record_event(chat.id, "tick", {"n": 15})  # room again once committed
    finally:
        await store.close()


# ---------------------------------------------------------------- users, tokens, sessions, audit


async def test_users_have_roles_a_password_hash_and_an_agent_state(store: Store):
    alice = await store.add_user("alice", ["agent", "qa"], "$argon2id$v=19$a")
    assert (alice.name, alice.roles, alice.agent_state, alice.disabled) == (
        "alice",
        frozenset({"agent", "qa"}),
        "offline",
        False,
    )
    assert alice.created_at == START
    await store.add_user("bob", {"admin"}, "$argon2id$v=19$b")
    assert [u.name for u in await store.list_users()] == ["alice", "bob"]
    with pytest.raises(UserExists, match="alice"):
        await store.add_user("alice", {"agent"}, "other")
    await store.set_password("alice", "$argon2id$v=19$new")
    assert (await store.set_agent_state("alice", "available")).agent_state == "available"
    assert (await store.set_roles("alice", ["agent"])).roles == {"agent"}
    assert await store.get_user("alice") == alice.__class__(
        alice.id, "alice", frozenset({"agent"}), "$argon2id$v=19$new", "available", START, False
    )
    assert await store.get_user("nobody") is None
    for change in (
        store.set_password("nobody", "h"),
        store.set_agent_state("nobody", "away"),
        store.set_user_disabled("nobody", True),
    ):
        with pytest.raises(NotFound, match="nobody"):
            await change


async def test_api_tokens_are_found_by_hash_and_stay_listed_when_revoked(store: Store):
    token = await store.add_token("webchat-site", {"chat:write", "conversations:read"}, "h1")
    assert token.scopes == {"chat:write", "conversations:read"} and not token.revoked
    assert await store.token_by_hash("h1") == token
    assert await store.token_by_hash("h2") is None
    with pytest.raises(Conflict):
        await store.add_token("again", {"chat:write"}, "h1")
    await store.revoke_token(token.id)
    await store.revoke_token(token.id)
    assert (await store.token_by_hash("h1")).revoked
    assert [t.revoked for t in await store.list_tokens()] == [True]
    with pytest.raises(NotFound):
        await store.revoke_token(999)


async def test_a_session_lasts_until_it_expires_is_deleted_or_its_user_disabled(
    store: Store, clock: FakeClock
):
    alice = await store.add_user("alice", {"agent"}, "hash")
    await store.add_session("s1", "alice", expires_at=START + 3600)
    assert await store.get_session("s1") == alice
    assert await store.get_session("unknown") is None
    clock.advance(3600)
    assert await store.get_session("s1") is None  # expired
    await store.add_session("s2", "alice", expires_at=clock.now + 60)
    await store.delete_session("s2")
    await store.delete_session("s2")
    assert await store.get_session("s2") is None
    await store.add_session("s3", "alice", expires_at=clock.now + 60)
    await store.set_user_disabled("alice", True)
    assert await store.get_session("s3") is None
    await store.set_user_disabled("alice", False)
    assert await store.get_session("s3") is None  # disabling logged it out for good
    with pytest.raises(NotFound):
        await store.add_session("s4", "nobody", expires_at=clock.now + 60)
    await store.add_session("s5", "alice", expires_at=clock.now + 60)
    with pytest.raises(Conflict):
        await store.add_session("s5", "alice", expires_at=clock.now + 60)


async def test_the_audit_log_is_newest_first_and_filters_by_target_and_actor(
    store: Store, clock: FakeClock
):
    written = []
    for n, (actor, action, target) in enumerate(
        [("alice", "read", "conversation/1"), ("bob", "read", "conversation/2"),
         ("alice", "merge", "customer/3"), ("alice", "read", "conversation/2")]
    ):  # fmt: skip
        clock.now = START + n
        written.append(await store.audit(actor, action, target, {"n": n, "ip": "127.0.0.1"}))
    assert written[0].at == START and written[0].detail == {"n": 0, "ip": "127.0.0.1"}
    assert await store.audit_log() == written[::-1]
    assert await store.audit_log(target="conversation/2") == [written[3], written[1]]
    assert await store.audit_log(actor="alice", limit=2) == [written[3], written[2]]
    assert await store.audit_log(before_id=written[2].id) == [written[1], written[0]]
    login = await store.audit("alice", "login", None)
    assert login.detail == {} and login.target is None


# ---------------------------------------------------------------- migrations


async def test_migrations_run_once_and_a_restart_keeps_everything(store_url: str):
    store = open_store(store_url)
    await store.start()
    assert await store.schema_version() == LATEST_VERSION
    ann = await store.customer_for("email", "ann@example.com")
    await store.close()
    for _ in range(2):
        store = open_store(store_url)
        await store.start()
        try:
            assert await store.schema_version() == LATEST_VERSION
            assert await store._transaction(migrate(store.dialect)) == []  # nothing left to do
            assert await store.find_customer("email", "ann@example.com") == ann
        finally:
            await store.close()


async def test_an_older_schema_is_upgraded_and_keeps_its_data(store_url: str):
    old = open_store(store_url)
    await old._open()
    assert await old._transaction(migrate(old.dialect, target=1)) == [1]
    await old._transaction(_insert_customer())
    await old._close()
    store = open_store(store_url)
    await store.start()
    try:
        assert await store.schema_version() == LATEST_VERSION
        assert (await store.get_customer(1)).display_name == "from v1"
        await store.add_user("alice", {"admin"}, "hash")  # a table of version 2
    finally:
        await store.close()


def _insert_customer():
    yield Query("INSERT INTO customers (display_name, created_at) VALUES (?, ?)", ("from v1", 1.0))


async def test_a_schema_newer_than_the_code_is_refused(store_url: str):
    store = open_store(store_url)
    await store.start()
    await store.close()
    raw = open_store(store_url)
    await raw._open()
    await raw._transaction(_future_version())
    await raw._close()
    newer = open_store(store_url)
    with pytest.raises(StoreError, match="schema version 99, newer"):
        await newer.start()
    with pytest.raises(StoreClosed):
        await newer.get_customer(1)


def _future_version():
    yield Query(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
        (99, "from the future", 1.0),
    )


# ---------------------------------------------------------------- bad input


BAD_CALLS = [
    ("customer_for", ("fax", "123"), InvalidValue, "kind"),
    ("customer_for", ("phone", "sip:alice@example.com"), InvalidValue, "no phone number"),
    ("customer_for", ("email", "not-an-address"), InvalidValue, "e-mail"),
    ("customer_for", ("webchat", "   "), InvalidValue, "empty"),
    ("customer_for", ("phone", 5551234567), InvalidValue, "string"),
    ("customer_for", ("account", "a", 42), InvalidValue, "display_name"),
    ("get_customer", ("1",), InvalidValue, "customer_id"),
    ("get_customer", (True,), InvalidValue, "customer_id"),
    ("get_customer", (0,), InvalidValue, "positive"),
    ("open_conversation", (1, "sms"), InvalidValue, "channel"),
    ("open_conversation", (1, "voice", "talking"), InvalidValue, "status"),
    ("update_conversation", (1,), InvalidValue, "status", {"status": "done"}),
    ("update_conversation", (1,), InvalidValue, "queue", {"queue": ""}),
    ("list_conversations", (ConversationFilter(limit=0),), InvalidValue, "limit"),
    ("list_conversations", (ConversationFilter(limit=5000),), InvalidValue, "limit"),
    ("list_conversations", (ConversationFilter(since=math.nan),), InvalidValue, "since"),
    ("list_conversations", ({"status": "closed"},), InvalidValue, "ConversationFilter"),
    ("add_message", (1, "robot", "hi"), InvalidValue, "speaker"),
    ("add_message", (1, "customer", None), InvalidValue, "text"),
    ("add_message", (1, "customer", "x" * 70_000), InvalidValue, "longer"),
    ("add_message", (1, "customer", "nul\x00"), InvalidValue, "NUL"),
    ("add_message", (1, "customer", "hi"), InvalidValue, "confidence", {"confidence": 1.5}),
    ("add_message", (1, "customer", "hi"), InvalidValue, "offset_ms", {"offset_ms": -1}),
    ("add_message", (1, "customer", "hi"), InvalidValue, "at", {"at": "yesterday"}),
    ("add_user", ("alice", {"root"}, "h"), InvalidValue, "roles"),
    ("add_user", ("alice", set(), "h"), InvalidValue, "at least one"),
    ("add_user", ("alice", "agent", "h"), InvalidValue, "set of strings"),
    ("add_user", ("al ice", {"agent"}, "h"), InvalidValue, "white space"),
    ("add_user", ("alice", {"agent"}, ""), InvalidValue, "password_hash"),
    ("set_user_disabled", ("alice", "yes"), InvalidValue, "disabled"),
    ("add_token", ("site", {"chat write"}, "h"), InvalidValue, "white space"),
    ("add_session", ("s", "alice", math.inf), InvalidValue, "expires_at"),
    ("audit", ("alice", "read", "x", {"when": object()}), InvalidValue, "JSON"),
    ("audit", ("alice", "read", "x", ["not", "a", "dict"]), InvalidValue, "dict"),
    ("audit_log", (), InvalidValue, "limit", {"limit": -1}),
]


@pytest.mark.parametrize(
    "method, args, error, match, kwargs",
    [(*case, {}) if len(case) == 4 else case for case in BAD_CALLS],
    ids=[f"{case[0]}-{case[3]}" for case in BAD_CALLS],
)
async def test_bad_arguments_get_the_named_error_and_the_store_carries_on(
    store: Store, method, args, error, match, kwargs
):
    with pytest.raises(error, match=match):
        await getattr(store, method)(*args, **kwargs)
    assert (await store.customer_for("account", "after")).identities[0].value == "after"


@pytest.mark.parametrize(
    "args",
    [("1", "kind", {}), (1, "", {}), (1, "kind", "not a dict"), (1, "kind", {"x": math.nan}),
     (1, "kind", {"x": b"bytes"}), (1, "kind", {}, -5.0)],
    ids=["id-str", "kind-empty", "data-str", "data-nan", "data-bytes", "at-negative"],
)  # fmt: skip
async def test_record_event_raises_for_bad_arguments_at_the_call(store: Store, args):
    with pytest.raises(InvalidValue):
        store.record_event(*args)
    assert store.stats()["pending_writes"] == 0


async def test_a_store_must_be_started_and_cannot_be_used_after_close(store_url: str):
    store = open_store(store_url)
    with pytest.raises(StoreClosed):
        await store.get_customer(1)
    with pytest.raises(StoreClosed):
        store.record_event(1, "x", {})
    await store.start()
    ann = await store.customer_for("account", "ann")
    chat = await store.open_conversation(ann.id, "webchat")
    assert await store.ping()
    await store.close()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.add_message(chat.id, "customer", "late")
    with pytest.raises(StoreClosed):
        await store.record_event(chat.id, "late", {})
    with pytest.raises(StoreClosed):
        await store.start()


# ---------------------------------------------------------------- opening


async def test_an_unknown_url_scheme_is_refused_by_name():
    with pytest.raises(InvalidValue, match="mysql://db"):
        open_store("mysql://db")


async def test_an_unreachable_postgresql_server_is_a_store_error_without_the_password():
    store = open_store("postgresql://hotline:s3cret@127.0.0.1:1/hotline")
    with pytest.raises(StoreError, match="cannot connect") as error:
        await store.start()
    assert "s3cret" not in str(error.value) and "hotline:***@" in str(error.value)


async def test_a_sqlite_file_that_cannot_be_created_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    store = open_store(f"sqlite:///{tmp_path / 'file' / 'hotline.db'}")
    with pytest.raises(StoreError, match="file"):
        await store.start()


async def test_an_in_memory_sqlite_store_works_for_one_process():
    async with open_store("sqlite:///:memory:") as store:
        ann = await store.customer_for("account", "ann")
        assert await store.get_customer(ann.id) == ann
