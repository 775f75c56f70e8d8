"""hotline.call_records: a call's life, as the conversation store and agents see it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bridge.hub import AGENTS, Hub
from conversations import open_store
from hotline.call_records import CallRecords, caller_identity


@pytest.mark.parametrize(
    ("from_header", "asserted", "expected"),
    [
        ('"Ann" <sip:+15551230001@10.0.0.1>;tag=1', None, ("phone", "+15551230001", "Ann")),
        ("<sip:5551230001@trunk;user=phone>;tag=2", None, ("phone", "+15551230001", None)),
        # RFC 3325: the trunk's asserted identity wins over what the phone put in From.
        ("<sip:anonymous@anonymous.invalid>;tag=3", "<tel:+44-20-7946-0018>",
         ("phone", "+442079460018", None)),
        ("<sip:Alice@Example.org>;tag=4", None, ("account", "alice@example.org", None)),
        ("not an address", "also <broken", ("account", "anonymous@invalid", None)),
    ],
)  # fmt: skip
def test_the_caller_is_known_by_the_number_the_network_asserts_else_from(
    from_header: str, asserted: str | None, expected: tuple[str, str, str | None]
) -> None:
    assert caller_identity(from_header, asserted) == expected


OUTCOME = {
    "intent": "refill", "confidence": 0.91, "queue": "pharmacy", "priority": 0,
    "method": "speech", "attempts": 1, "decision_latency_ms": 450.0,
    "events": [[100.0, "start", ""], [104.5, "final", "'i need a refill' 0.91"]],
    "dialogue": [
        {"at": 100.0, "speaker": "ivr", "text": "How can I help?", "confidence": None},
        {"at": 104.5, "speaker": "customer", "text": "i need a refill", "confidence": 0.91},
    ],
}  # fmt: skip


async def test_a_queued_call_that_hangs_up_is_stored_in_order_and_announced(
    tmp_path: Path,
) -> None:
    hub = Hub()
    heard = hub.subscribe([AGENTS])
    async with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        records = CallRecords(store, hub)
        records.call_started("c1@host", '"Ann" <sip:+15551230001@host>;tag=9', None)
        records.queued("c1@host", "pharmacy", "refill", 0)
        records.ivr_outcome("c1@host", OUTCOME, "/var/recordings/c1.wav")
        records.call_ended("c1@host", answered_by_agent=False)
        await records.close()

        conversation = await store.conversation_for_call("c1@host")
        assert conversation is not None
        assert (conversation.channel, conversation.status) == ("voice", "abandoned")
        assert (conversation.intent, conversation.queue) == ("refill", "pharmacy")
        assert conversation.recording == "/var/recordings/c1.wav"
        customer = await store.find_customer("phone", "+15551230001")
        assert customer is not None and customer.id == conversation.customer_id
        assert customer.display_name == "Ann"
        messages = await store.messages(conversation.id)
        assert [(m.speaker, m.text, m.offset_ms) for m in messages] == [
            ("ivr", "How can I help?", 0), ("customer", "i need a refill", 4500),
        ]  # fmt: skip
        assert messages[1].confidence == pytest.approx(0.91)
        kinds = [e.kind for e in await store.events(conversation.id)]
        assert kinds == ["ivr.start", "ivr.final", "ivr.outcome"]
    announced = [await asyncio.wait_for(heard.get(), 1.0) for _ in range(4)]
    assert [(e["type"], e["kind"]) for e in announced] == [
        ("call.event", "started"), ("call.event", "queued"),
        ("call.event", "ivr_done"), ("call.event", "ended"),
    ]  # fmt: skip
    assert {e["call_id"] for e in announced} == {"c1@host"}
    assert announced[0]["conversation_id"] == conversation.id
    assert records.errors == 0


async def test_a_store_error_is_counted_and_the_calls_other_writes_go_on(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        records = CallRecords(store, None)
        records.call_started("c2@host", "<sip:+15551230002@host>", None)
        bad = dict(OUTCOME, dialogue=[{"at": 1.0, "speaker": "robot", "text": "x",
                                        "confidence": None}])  # fmt: skip
        records.ivr_outcome("c2@host", bad, None)
        records.call_ended("c2@host", answered_by_agent=True)
        await records.close()
        conversation = await store.conversation_for_call("c2@host")
        assert conversation is not None and conversation.status == "closed"
        assert records.errors == 1


async def test_a_closed_recording_is_registered_after_the_calls_end(tmp_path: Path) -> None:
    from hotline.call_records import RecordingOptions
    from media_core.recording import WavRecorder

    root = tmp_path / "recordings"
    file = root / "2027-01-15" / "c1@host.wav"
    file.parent.mkdir(parents=True)
    with WavRecorder(file) as recorder:
        for _ in range(100):  # 2 s of 20 ms ticks
            recorder.write(np.zeros(160, np.int16), np.zeros(160, np.int16))
    registered = []
    async with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        records = CallRecords(store, None)
        records.call_started("c1@host", "<sip:+15551230001@host>;tag=9", None)
        records.call_ended("c1@host", answered_by_agent=True)  # forgets the conversation
        options = RecordingOptions(root, "node-a", transcribe=True, max_attempts=2)
        records.recording_closed("c1@host", file, 1_800_000_000.0, options, registered.append)
        records.recording_closed("c9@host", root / "missing.wav", 1.0, options)  # no such call
        records.call_started("c2@host", "<sip:+15551230002@host>;tag=9", None)
        records.recording_closed("c2@host", root / "never-written.wav", 1.0, options)
        await records.close()
        (recording,) = registered
        assert (recording.call_id, recording.path, recording.duration_s) == (
            "c1@host", "2027-01-15/c1@host.wav", 2.0,
        )  # fmt: skip
        assert (recording.node, recording.ended_at) == ("node-a", 1_800_000_002.0)
        job = await store.transcription_job(recording.id)
        assert job is not None and (job.status, job.max_attempts) == ("pending", 2)
        other = await store.conversation_for_call("c2@host")
        assert other is not None and await store.recordings_of(other.id) == []
        assert records.errors == 0
