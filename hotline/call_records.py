"""Each call's life in the conversation store, and on the agents' pages.

``HotlineServer`` calls these plain methods from its SIP and IVR callbacks:

- ``call_started``: the caller becomes a customer (found by the phone number of
  ``P-Asserted-Identity`` or ``From``, normalised to E.164) with a voice
  conversation in status ``ivr``;
- ``ivr_outcome``: the IVR's dialogue (prompts and what the caller said, with
  confidences and offsets into the recording) becomes messages, its events call
  events, and the conversation gets intent, queue and recording;
- ``queued`` / ``call_ended``: status changes (``queued``, then ``closed`` or
  ``abandoned`` when the caller hangs up before an agent answered);
- ``recording_closed``: once the media core has closed the call's recording, it
  is registered (``recordings.registry``), which queues its transcription.

Agents' pages hear of each step through the bridge's hub (``call.event``).
One call's writes run in order on one chain of tasks, so a slow or failing store
delays only that call's records, never media or signalling; a store error is
logged with the call-id and the call goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.hub import AGENTS, Hub, agent_topic
from conversations import (
    Conversation,
    ConversationFilter,
    Customer,
    Recording,
    Store,
    StoreError,
    normalize_phone,
)
from hotline.logs import call_log
from recordings.registry import register_file
from sip.address import NameAddress
from sip.errors import RemoteProtocolError

__all__ = ["CallRecords", "RecordingOptions", "caller_identity"]

# What of an IVR outcome the call's "ivr.outcome" event and the agents' pages carry.
_SUMMARY_KEYS = (
    "intent", "confidence", "queue", "priority", "method", "attempts", "decision_latency_ms",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordingOptions:
    """How a closed recording is registered: under which root, by which node, queued or not."""

    root: Path
    node: str
    transcribe: bool = True
    max_attempts: int = 3


def caller_identity(
    from_header: str, asserted: str | None, default_country_code: str = "1"
) -> tuple[str, str, str | None]:
    """``(kind, value, display_name)`` of the customer behind an INVITE.

    The network-asserted identity wins over ``From`` (RFC 3325 §9.1: a trusted trunk
    sets it, while ``From`` is whatever the phone says). A URI without a phone
    number (``sip:alice@example.org``) is an ``account`` identity.
    """
    for raw in (asserted, from_header):
        if not raw:
            continue
        try:
            address = NameAddress.parse(raw.split(",")[0])
        except RemoteProtocolError:
            continue
        try:
            return (
                "phone",
                normalize_phone(str(address.uri), default_country_code),
                (address.display_name),
            )
        except ValueError:
            uri = address.uri
            if uri.user:
                return "account", f"{uri.user}@{uri.host}".lower(), address.display_name
    return "account", "anonymous@invalid", None


class CallRecords:
    """Writes calls into the store in order, one chain of tasks per call."""

    def __init__(self, store: Store, hub: Hub | None, default_country_code: str = "1") -> None:
        self.store = store
        self.hub = hub
        self.default_country_code = default_country_code
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._conversations: dict[str, int] = {}
        self.errors = 0

    # -- what the server tells us --------------------------------------------------

    def call_started(self, call_id: str, from_header: str, asserted: str | None) -> None:
        """An inbound call was answered: find the customer, open the conversation."""
        kind, value, display_name = caller_identity(
            from_header, asserted, self.default_country_code
        )

        async def write() -> None:
            customer = await self.store.customer_for(kind, value, display_name)
            conversation = await self.store.open_conversation(
                customer.id, "voice", status="ivr", call_id=call_id
            )
            self._conversations[call_id] = conversation.id
            self._publish(call_id, "started", {"customer_id": customer.id, kind: value})

        self._then(call_id, write)

    def ivr_outcome(self, call_id: str, outcome: dict[str, Any], recording: str | None) -> None:
        """The IVR finished with the caller: its dialogue, decision and events."""

        async def write() -> None:
            conversation_id = self._conversations.get(call_id)
            if conversation_id is None:
                return
            dialogue = outcome.get("dialogue") or []
            events = outcome.get("events") or []
            # The session's clock (the loop's) starts with the call, as the recording
            # does on answer; wall-clock times are the loop's shifted to time.time().
            start = events[0][0] if events else (dialogue[0]["at"] if dialogue else 0.0)
            to_wall = time.time() - asyncio.get_running_loop().time()
            for line in dialogue:
                await self.store.add_message(
                    conversation_id,
                    line["speaker"],
                    line["text"],
                    at=line["at"] + to_wall,
                    offset_ms=max(0, round((line["at"] - start) * 1000.0)),
                    confidence=line["confidence"],
                )
            for at, kind, detail in events:
                self.store.record_event(
                    conversation_id, f"ivr.{kind}", {"detail": detail, "t_s": at - start}
                )
            summary = {key: outcome.get(key) for key in _SUMMARY_KEYS}
            self.store.record_event(conversation_id, "ivr.outcome", summary)
            await self._update(
                call_id, intent=outcome.get("intent"), queue=outcome.get("queue"),
                recording=recording,
            )  # fmt: skip
            self._publish(call_id, "ivr_done", summary)

        self._then(call_id, write)

    def queued(self, call_id: str, queue: str, intent: str | None, priority: int) -> None:
        """The IVR transferred the call to ``queue``."""

        async def write() -> None:
            await self._update(call_id, status="queued", queue=queue, intent=intent)
            self._publish(call_id, "queued", {"queue": queue, "priority": priority})

        self._then(call_id, write)

    def offered(self, call_id: str, agent: str, queue: str, context: dict[str, Any]) -> None:
        """The call rings ``agent``: status ``ringing``, and the agent's screen pop.

        The pop carries the whole IVR dialogue and the customer's earlier
        conversations on every channel, read from the store.
        """

        async def write() -> None:
            conversation_id = self._conversations.get(call_id)
            conversation = await self._update(call_id, status="ringing")
            self._event(call_id, "routing.offered", {"agent": agent, "queue": queue})
            history: list[dict[str, Any]] = []
            transcript: list[dict[str, Any]] = []
            customer = None
            if conversation is not None:
                customer = await self.store.get_customer(conversation.customer_id)
                earlier = await self.store.list_conversations(
                    ConversationFilter(customer_id=conversation.customer_id, limit=11)
                )
                history = [_history_row(c) for c in earlier if c.id != conversation_id][:10]
                transcript = [
                    {"speaker": m.speaker, "text": m.text, "offset_ms": m.offset_ms,
                     "confidence": m.confidence}
                    for m in await self.store.messages(conversation.id)
                ]  # fmt: skip
            if self.hub is not None:
                self.hub.publish(
                    agent_topic(agent),
                    {
                        "type": "screen_pop", "call_id": call_id,
                        "conversation_id": conversation_id, "queue": queue,
                        "intent": context.get("intent"),
                        "confidence": context.get("confidence"),
                        "customer": _customer_row(customer, context),
                        "transcript": list(context.get("transcript") or []),
                        "dialogue": transcript, "history": history,
                    },
                )  # fmt: skip

        self._then(call_id, write)

    def connected(self, call_id: str, agent: str, waited_s: float) -> None:
        """An agent took the call."""

        async def write() -> None:
            await self._update(call_id, status="connected", agent=agent)
            self._event(call_id, "routing.connected", {"agent": agent, "waited_s": waited_s})
            self._publish(call_id, "connected", {"agent": agent, "waited_s": waited_s})

        self._then(call_id, write)

    def requeued(self, call_id: str, queue: str) -> None:
        """The call moved to another queue (overflow or a transfer)."""

        async def write() -> None:
            await self._update(call_id, status="queued", queue=queue)
            self._publish(call_id, "queued", {"queue": queue})

        self._then(call_id, write)

    def routing_event(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        """Something routing did with the call (missed, overflowed, transferred)."""

        async def write() -> None:
            self._event(call_id, f"routing.{kind}", data)
            self._publish(call_id, kind, data)

        self._then(call_id, write)

    def call_ended(self, call_id: str, *, answered_by_agent: bool) -> None:
        """The call is over; a caller who never reached an agent abandoned it."""
        status = "closed" if answered_by_agent else "abandoned"

        async def write() -> None:
            conversation = await self._update(call_id, status=status)
            self._conversations.pop(call_id, None)
            if conversation is not None:
                self._publish(call_id, "ended", {"status": status})

        self._then(call_id, write, last=True)

    def recording_closed(
        self,
        call_id: str,
        file: Path,
        started_at: float,
        options: RecordingOptions,
        then: Callable[[Recording], None] | None = None,
    ) -> None:
        """The call's recording is complete on disk: register it (after the call's other writes).

        ``then`` gets the registered recording (the server wakes the transcription runner).
        """

        async def write() -> None:
            conversation_id = self._conversations.get(call_id)
            if conversation_id is None:  # call_ended has forgotten it: ask the store
                conversation = await self.store.conversation_for_call(call_id)
                if conversation is None:
                    return
                conversation_id = conversation.id
            try:
                recording = await register_file(
                    self.store, conversation_id, call_id, file, root=options.root,
                    started_at=started_at, node=options.node, transcribe=options.transcribe,
                    max_attempts=options.max_attempts,
                )  # fmt: skip
            except FileNotFoundError:
                call_log("hotline.call_records", call_id).warning(
                    "recording %s was never written; not registered", file
                )
                return
            call_log("hotline.call_records", call_id).info(
                "recording %s registered (%.1f s)%s", recording.path, recording.duration_s,
                ", transcription queued" if options.transcribe else "",
            )  # fmt: skip
            if then is not None:
                then(recording)

        self._then(call_id, write)

    async def close(self) -> None:
        """Wait for every call's pending writes."""
        chains = list(self._chains.values())
        if chains:
            await asyncio.gather(*chains, return_exceptions=True)

    def conversation_id(self, call_id: str) -> int | None:
        """The conversation of a live call, once the store has opened it."""
        return self._conversations.get(call_id)

    # -- plumbing -------------------------------------------------------------------

    async def _update(self, call_id: str, **fields: Any) -> Conversation | None:
        conversation_id = self._conversations.get(call_id)
        if conversation_id is None:
            return None
        return await self.store.update_conversation(conversation_id, **fields)

    def _event(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        conversation_id = self._conversations.get(call_id)
        if conversation_id is not None:
            self.store.record_event(conversation_id, kind, data)

    def _publish(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        if self.hub is not None:
            self.hub.publish(
                AGENTS,
                {
                    "type": "call.event",
                    "call_id": call_id,
                    "conversation_id": self._conversations.get(call_id),
                    "kind": kind,
                    "data": data,
                    "at": time.time(),
                },
            )

    def _then(
        self, call_id: str, write: Callable[[], Awaitable[None]], *, last: bool = False
    ) -> None:
        previous = self._chains.get(call_id)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])  # its own errors were logged there
            try:
                await write()
            except (StoreError, ValueError) as exc:
                self.errors += 1
                call_log("hotline.call_records", call_id).error("conversation store: %s", exc)
            finally:
                if last and self._chains.get(call_id) is task:
                    del self._chains[call_id]

        task = asyncio.get_running_loop().create_task(run())
        self._chains[call_id] = task


def _history_row(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id, "channel": conversation.channel, "status": conversation.status,
        "intent": conversation.intent, "queue": conversation.queue, "agent": conversation.agent,
        "started_at": conversation.started_at,
    }  # fmt: skip


def _customer_row(customer: Customer | None, context: dict[str, Any]) -> dict[str, Any]:
    if customer is None:
        return {
            "display_name": context.get("display_name"),
            "identities": [
                {"kind": context.get("customer_kind"), "value": context.get("customer")}
            ],
        }
    return {
        "id": customer.id,
        "display_name": customer.display_name or context.get("customer"),
        "identities": [{"kind": i.kind, "value": i.value} for i in customer.identities],
    }
