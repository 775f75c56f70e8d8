"""Routing wired to live calls: the ACD (``routing.Acd``) rings agents' phones.

``HotlineServer`` hands a caller here when the IVR transfers it to a queue. The
ACD decides which agent to offer it to; this module turns its actions into
SIP and media:

- ``Offer``: an INVITE from our B2BUA to the agent's registered softphone
  (or a ring on the browser agent page), carrying the context
  (``Call-Info`` with the conversation's URL, RFC 3261 §20.9, and
  ``X-Hotline-*`` headers with intent, queue, customer and a short
  transcript), and at the same moment a screen pop with the whole IVR
  transcript and the customer's history on ``/ws/agent``;
- ``CancelOffer``: CANCEL (or BYE when it raced an answer) to that agent's leg;
- ``Connected``: hold music stops and the two legs are bridged in the tick,
  and (``recordings.live_transcript``) both legs stream through the recognizer
  to the agent's page (``hotline.live_transcript``) until the call ends, is
  transferred or the agent's leg goes away;
- ``Announce``: the caller's place in the queue and the estimated wait, spoken
  over the hold music.

The agent's final answer (a reject, busy, Do Not Disturb) and the caller's or
the agent's hang-up come back as ACD inputs. Agents become available when
their softphone registers (or their page's phone is switched on) and offline
when the last way to reach them goes away. One timer task serves the ACD's
deadlines for every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.hub import AGENTS, agent_topic
from hotline.config import Config
from hotline.live_transcript import LIVE_SESSIONS_PER_WORKER, LiveTranscript, conversation_context
from hotline.logs import call_log
from routing import (
    Abandoned,
    Acd,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    Announce,
    CancelOffer,
    Connected,
    Missed,
    Offer,
    Overflowed,
    QueueSpec,
    Strategy,
)
from sip.errors import RemoteProtocolError
from sip.offer_answer import build_offer, process_answer
from sip.peer import Peer
from sip.sdp import SessionDescription
from sip.ua_events import TransferRequested
from sip.uri import SipUri

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from hotline.server import Call, HotlineServer
    from media_core.media_events import MediaEvent

log = logging.getLogger("hotline.contact_center")

TRANSCRIPT_HEADER_CHARS = 200  # a SIP header is no place for a whole conversation
PRESENCE_SWEEP_S = 1.0  # how often registrations that expired are noticed
# Final responses that mean "not now" rather than "not reachable" (RFC 3261 §21).
_DECLINE_REASONS = {486: "busy", 600: "busy", 603: "rejected", 480: "unavailable"}


@dataclass(slots=True, eq=False)
class Routed:
    """One caller the ACD is placing, from the queue until the agent is done."""

    item: str  # the caller leg's Call-ID
    caller: Call
    queue: str
    context: dict[str, Any]
    offers: dict[str, Call | None] = field(default_factory=dict)  # agent -> SIP leg | browser
    agent: str | None = None
    agent_leg: Call | None = None
    browser_stream: int | None = None


def acd_specs(
    config: Config, flow_queues: tuple[str, ...]
) -> tuple[list[QueueSpec], list[AgentSpec]]:
    """The ACD's queues (configured ones, plus the flow's with defaults) and agents."""
    queues = [
        QueueSpec(
            name=q.name,
            priority=q.priority,
            required_skills=dict(q.required_skills),
            strategy=Strategy(q.strategy),
            ring_timeout_s=q.ring_timeout_s,
            max_wait_s=q.max_wait_s,
            overflow_to=q.overflow_to,
            wrap_up_s=q.wrap_up_s,
            announce_every_s=q.announce_every_s,
        )
        for q in config.routing.queues
    ]
    named = {q.name for q in queues}
    wanted = set(flow_queues) | {config.routing.chat_queue}
    wanted |= {q.overflow_to for q in config.routing.queues if q.overflow_to}
    wanted |= {name for agent in config.agents for name in agent.queues}
    queues += [QueueSpec(name=name) for name in sorted(wanted - named)]
    # Every agent also has a queue of their own, for transfers to that person.
    queues += [personal_queue(agent.username) for agent in config.agents]
    agents = [
        AgentSpec(
            name=a.username,
            skills=dict(a.skills),
            queues=(*a.queues, personal_queue(a.username).name),
            max_calls=a.max_calls,
            max_chats=a.max_chats,
            wrap_up_s=a.wrap_up_s,
            autopause_on_miss=a.autopause_on_miss,
        )
        for a in config.agents
    ]
    return queues, agents


def personal_queue(agent: str) -> QueueSpec:
    """The queue that rings only ``agent`` (a transfer to a person)."""
    return QueueSpec(name=f"@{agent}", priority=100, announce_every_s=None)


def context_headers(context: dict[str, Any], conversation_url: str | None) -> list[tuple[str, str]]:
    """The INVITE headers that tell an agent's softphone who calls and why."""
    headers = []
    if conversation_url:
        headers.append(("Call-Info", f"<{conversation_url}>;purpose=info"))
    for name, key in (
        ("X-Hotline-Intent", "intent"),
        ("X-Hotline-Queue", "queue"),
        ("X-Hotline-Customer", "customer"),
    ):
        if context.get(key):
            headers.append((name, _header_text(str(context[key]), 100)))
    if context.get("confidence") is not None:
        headers.append(("X-Hotline-Confidence", f"{float(context['confidence']):.2f}"))
    said = " / ".join(context.get("transcript") or [])
    if said:
        headers.append(("X-Hotline-Transcript", _header_text(said, TRANSCRIPT_HEADER_CHARS)))
    return headers


def _header_text(text: str, limit: int) -> str:
    """One line of printable text (RFC 3261 §25.1 TEXT-UTF8), cut at ``limit``."""
    clean = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


class ContactCenter:
    """The ACD and the agents' legs of one ``HotlineServer``."""

    def __init__(self, server: HotlineServer, flow_queues: tuple[str, ...]) -> None:
        self.server = server
        queues, agents = acd_specs(server.config, flow_queues)
        self.acd = Acd(queues, agents, self._now())
        self.agents = {a.name for a in agents}
        self.queue_names = {q.name for q in queues if not q.name.startswith("@")}
        self.routed: dict[str, Routed] = {}  # ACD item -> its caller and agent
        self._item_of: dict[str, str] = {}  # caller leg's Call-ID -> ACD item
        self.chat_queue = server.config.routing.chat_queue
        self.chats: dict[str, str | None] = {}  # ACD item of a waiting chat -> agent offered
        self._manual_offline: set[str] = set()  # agents who logged off while still registered
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.live: LiveTranscript | None = None  # the agents' live transcripts, when on

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the one timer task of the ACD, and the live transcripts when configured."""
        self.live = _live_transcript(self.server)
        self._task = asyncio.get_running_loop().create_task(self._run_timers())

    async def close(self) -> None:
        """Stop the live transcripts and the timer task."""
        if self.live is not None:
            self.live.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run_timers(self) -> None:
        next_sweep = 0.0
        while True:
            now = self._now()
            if now >= next_sweep:
                self._sweep_presence(now)
                next_sweep = now + PRESENCE_SWEEP_S
            self._apply(self.acd.on_timer(now))
            deadline = min(d for d in (self.acd.next_deadline(), next_sweep) if d is not None)
            self._wake.clear()
            # Not wait_for: on 3.11 it returns when the wake-up and a cancel (close) race,
            # and the cancel is lost; asyncio.timeout tells its own expiry from a cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - self._now())):
                    await self._wake.wait()

    # --------------------------------------------------------- from the server

    def enqueue(self, caller: Call, queue: str, priority: int, context: dict[str, Any]) -> None:
        """The IVR transferred ``caller`` to ``queue``."""
        item = caller.leg.call_id
        self.routed[item] = Routed(item, caller, queue, context)
        self._item_of[item] = item
        self._apply(self.acd.enqueue(item, queue, self._now(), priority=priority))

    def route_target(self, user: str | None) -> str | None:
        """The queue a call to ``sip:USER@us`` from an agent waits in, if USER is one."""
        if user in self.queue_names:
            return user
        if user in self.agents:
            return personal_queue(user).name
        return None

    def enqueue_consult(self, call: Call, queue: str, from_agent: str) -> None:
        """An agent called a colleague or a queue through us (a consultation).

        The colleague is told about the caller the agent is talking to, so the
        context travels with an attended transfer.
        """
        talking = next((r for r in self.routed.values() if r.agent == from_agent), None)
        context = dict(talking.context) if talking is not None else {"transcript": []}
        context |= {"consult_from": from_agent, "queue": queue.lstrip("@")}
        self.enqueue(call, queue, 50, context)

    def _routed_for(self, caller: Call) -> Routed | None:
        item = self._item_of.get(caller.leg.call_id)
        return self.routed.get(item) if item is not None else None

    def reached_agent(self, caller: Call) -> bool:
        """Whether an agent took this caller (else a hang-up abandons the call)."""
        routed = self._routed_for(caller)
        return routed is not None and routed.agent is not None

    def presence_changed(self, agent: str) -> None:
        """A REGISTER or the agent's page changed how ``agent`` can be reached."""
        if agent in self.agents:
            self._update_presence(agent, self._now())

    def agent_answered(self, call: Call) -> None:
        """Our INVITE to an agent got a 2xx: open its media, then tell the ACD."""
        self.server._spawn(self._connect_sip_agent(call))

    def leg_ended(self, call: Call, status_code: int | None, reason: str) -> None:
        """A caller's or an agent's leg ended (the server cleans up its media after)."""
        now = self._now()
        if call.offer_for is not None:
            item, agent = call.offer_for
            routed = self.routed.get(item)
            if routed is None:
                return
            if routed.agent_leg is call:  # the agent hung up on the caller
                self.server.hangup(routed.caller)
                self._forget(routed)
                self._apply(self.acd.finished(item, now))
            elif routed.offers.get(agent) is call:  # refused or unreachable while ringing
                del routed.offers[agent]
                why = _DECLINE_REASONS.get(status_code or 0, "unreachable")
                if status_code == 480 and "disturb" in reason.lower():
                    why = "dnd"
                call_log("hotline.routing", item).info(
                    "%s declined the offer: %s (%s)", agent, why, status_code
                )
                self._withdrawn(agent, routed, why)
                self._apply(self.acd.declined(item, agent, now, reason=why))
            return
        routed = self._routed_for(call)
        if routed is None:
            return
        if routed.agent_leg is not None:
            self.server.hangup(routed.agent_leg)
        elif routed.agent is not None and self.server.browser_phones is not None:
            self.server.browser_phones.hangup(routed.item)
        self._apply(self.acd.left(routed.item, now))  # withdraws the offers still ringing
        self._forget(routed)

    def live_media_event(self, event: MediaEvent) -> bool:
        """A media event of a leg whose speech is transcribed live; False if none's."""
        return self.live is not None and self.live.on_media_event(event)

    def live_audio(self, stream_ids: list[int], frames: NDArray[np.int16]) -> None:
        """One tick's tapped audio (``MediaEngine.on_audio``), for the live transcripts."""
        if self.live is not None:
            self.live.on_audio(stream_ids, frames)

    def _live_start(self, routed: Routed, agent_stream: int) -> None:
        """The caller talks to ``routed.agent`` now: their words go to the agent's page."""
        caller = routed.caller
        if self.live is None or routed.agent is None or caller.stream_id is None:
            return
        if routed.context.get("consult_from"):
            return  # two agents talking about a caller: not the customer's conversation
        self.live.start(caller.leg.call_id, routed.agent, caller.stream_id, agent_stream)

    def _live_stop(self, routed: Routed) -> None:
        if self.live is not None:
            self.live.stop(routed.caller.leg.call_id)

    def _forget(self, routed: Routed) -> None:
        self._live_stop(routed)
        self.routed.pop(routed.item, None)
        self._item_of.pop(routed.caller.leg.call_id, None)

    # ------------------------------------------------------------ transfers

    def transfer_requested(self, call: Call, event: TransferRequested) -> None:
        """An agent's softphone sent REFER in its call with a caller (RFC 3515).

        Blind (``Refer-To: <sip:bob@us>`` or ``<sip:QUEUE@us>``): the caller waits
        for that person or queue again, with the context. Attended (the Refer-To
        carries Replaces naming the agent's consultation call with us, RFC 3891):
        the caller is bridged to the colleague of that consultation and both of
        the agent's legs end.
        """
        server, now = self.server, self._now()
        routed = next((r for r in self.routed.values() if r.agent_leg is call), None)
        clog = call_log("hotline.routing", call.leg.call_id)

        def report(status: int, reason: str) -> None:
            server.endpoint.apply(
                server.ua.notify_transfer(call.leg, status, reason, server.endpoint.now)
            )

        if routed is None:
            report(603, "Declined")  # not a call with a caller we routed
            return
        if event.replaces is not None:
            self._attended(routed, call, event, report)
            return
        queue = self.route_target(event.target.user)
        if queue is None:
            clog.info("blind transfer to unknown %s refused", event.target)
            report(404, "Not Found")
            return
        agent = routed.agent
        clog.info("%s transfers the caller to %s (blind)", agent, queue)
        report(200, "OK")  # blind: the caller is now ours to place
        self._live_stop(routed)
        routed.agent, routed.agent_leg = None, None
        routed.queue = queue
        routed.context |= {"queue": queue.lstrip("@"), "transferred_by": agent}
        caller_stream = routed.caller.stream_id
        if caller_stream is not None:
            server.media.media_tick.leave_room(caller_stream)
            server.media.media_tick.set_source(caller_stream, server._hold_music)
        call.offer_for = None  # its BYE no longer concerns the caller
        server.hangup(call)
        self._event(routed, "transferred", {"from": agent, "to": queue, "kind": "blind"})
        self._apply(self.acd.transfer(routed.item, queue, now))

    def _attended(self, routed: Routed, call: Call, event: TransferRequested, report: Any) -> None:
        server = self.server
        replaces = event.replaces
        assert replaces is not None
        leg = server.ua.leg_for_dialog(replaces.call_id, replaces.local_tag, replaces.remote_tag)
        consult_call = server.calls.get(leg.leg_id) if leg is not None else None
        consult = self._routed_for(consult_call) if consult_call is not None else None
        if consult is None or consult.agent_leg is None or consult.agent is None:
            report(481, "Call/Transaction Does Not Exist")  # RFC 3891 §3
            return
        assert consult_call is not None
        agent, colleague = routed.agent, consult.agent
        call_log("hotline.routing", routed.caller.leg.call_id).info(
            "%s transfers the caller to %s (attended)", agent, colleague
        )
        tick = server.media.media_tick
        new_leg = consult.agent_leg
        for stream in (routed.caller.stream_id, new_leg.stream_id, consult_call.stream_id):
            if stream is not None:
                tick.leave_room(stream)
        if routed.caller.stream_id is not None and new_leg.stream_id is not None:
            tick.bridge(routed.caller.stream_id, new_leg.stream_id)
        report(200, "OK")
        # The consultation's ACD item now stands for the caller talking to the colleague;
        # the caller's own item is done with the first agent, who goes to wrap-up.
        self._forget(routed)
        self._forget(consult)
        merged = Routed(consult.item, routed.caller, consult.queue, routed.context,
                        agent=colleague, agent_leg=new_leg)  # fmt: skip
        merged.context |= {"transferred_by": agent}
        self.routed[merged.item] = merged
        self._item_of[routed.caller.leg.call_id] = merged.item
        new_leg.offer_for = (merged.item, colleague)
        if new_leg.stream_id is not None:
            self._live_start(merged, new_leg.stream_id)
        for old in (call, consult_call):
            old.offer_for = None
            server.hangup(old)
        self._event(merged, "transferred", {"from": agent, "to": colleague, "kind": "attended"})
        records = server.records
        if records is not None:
            records.connected(routed.caller.leg.call_id, colleague, 0.0)
        self._apply(self.acd.finished(routed.item, self._now()))

    # ------------------------------------------------------------ ACD actions

    # ----------------------------------------------------------------- chats

    def chat_waiting(self, conversation_id: int) -> None:
        """A web chat waits in the chat queue; the ACD offers it like a call."""
        item = chat_item(conversation_id)
        if item not in self.chats:
            self.chats[item] = None
            self._apply(self.acd.enqueue(item, self.chat_queue, self._now(), kind="chat"))

    def chat_taken(self, conversation_id: int, agent: str) -> None:
        """An agent took the chat: the one offered it answers; anyone else ends the offer."""
        item = chat_item(conversation_id)
        if item not in self.chats:
            return
        offered = self.chats[item] == agent
        if offered:
            self._apply(self.acd.answered(item, agent, self._now()))
        else:
            del self.chats[item]
            self._apply(self.acd.left(item, self._now()))

    def chat_ended(self, conversation_id: int) -> None:
        """The chat was closed: the agent's chat slot frees."""
        item = chat_item(conversation_id)
        self.chats.pop(item, None)
        self._apply(self.acd.finished(item, self._now()))

    def _chat_action(self, action: Any) -> None:
        conversation_id = int(action.item.removeprefix("chat:"))
        if isinstance(action, Offer):
            self.chats[action.item] = action.agent
            self._publish_agent(action.agent, {"type": "chat.offer",
                "conversation_id": conversation_id, "queue": action.queue})  # fmt: skip
        elif isinstance(action, CancelOffer):
            if self.chats.get(action.item) == action.agent:
                self.chats[action.item] = None
            self._publish_agent(action.agent, {"type": "chat.offer.cancel",
                "conversation_id": conversation_id, "reason": action.reason})  # fmt: skip
        elif isinstance(action, (Abandoned, Connected)):
            if isinstance(action, Abandoned):
                self.chats.pop(action.item, None)

    def _apply(self, actions: list[Any]) -> None:
        for action in actions:
            if str(getattr(action, "item", "")).startswith("chat:"):
                self._chat_action(action)
                continue
            routed = self.routed.get(action.item) if hasattr(action, "item") else None
            if isinstance(action, Offer):
                self._offer(routed, action)
            elif isinstance(action, CancelOffer):
                self._cancel_offer(routed, action)
            elif isinstance(action, Connected):
                self._connected(routed, action)
            elif isinstance(action, Announce):
                self._announce(routed, action)
            elif isinstance(action, Overflowed):
                self._overflowed(routed, action)
            elif isinstance(action, Missed):
                call_log("hotline.routing", action.item).info("%s missed the call", action.agent)
                self._event(routed, "missed", {"agent": action.agent})
            elif isinstance(action, Abandoned):
                call_log("hotline.routing", action.item).info(
                    "abandoned in %s after %.1f s", action.queue, action.waited_s
                )
            elif isinstance(action, AgentStateChanged):
                self._agent_state_changed(action)
        self._wake.set()

    def _offer(self, routed: Routed | None, offer: Offer) -> None:
        clog = call_log("hotline.routing", offer.item)
        if routed is None:
            self._apply(self.acd.declined(offer.item, offer.agent, self._now(), "gone"))
            return
        phones = self.server.browser_phones
        if phones is not None and phones.ready(offer.agent):
            routed.offers[offer.agent] = None
            self.server._spawn(phones.ring(offer.agent, offer.item, routed.context))
        else:
            leg = self._invite_agent(routed, offer.agent)
            if leg is None:
                clog.info("%s cannot be reached: no registration", offer.agent)
                self._apply(self.acd.declined(offer.item, offer.agent, self._now(), "unreachable"))
                return
            routed.offers[offer.agent] = leg
        clog.info("offering to %s from %s (ring until +%.0f s)", offer.agent, offer.queue,
                  offer.deadline - self._now())  # fmt: skip
        records = self.server.records
        if records is not None:
            records.offered(routed.caller.leg.call_id, offer.agent, offer.queue, routed.context)

    def _invite_agent(self, routed: Routed, agent: str) -> Call | None:
        server = self.server
        aor = f"sip:{agent}@{server.domain}"
        now = server.endpoint.now
        bindings = server.registration.registrar.lookup(aor, now)
        if not bindings:
            return None
        binding = bindings[0]
        transport, host, port = binding.source
        try:
            rtp_port = server.media.allocate_port()
        except RuntimeError:
            return None
        offer = build_offer(server.address, rtp_port, server.capabilities, session_id=rtp_port)
        caller = routed.context.get("customer") or "anonymous"
        user = "".join(c for c in caller if c.isalnum() or c == "+") or "anonymous"
        leg, outputs = server.ua.invite(
            SipUri.parse(binding.contact_uri),
            Peer(transport, host, port),  # RFC 3581: where it registered from
            now,
            from_uri=f'"{_header_text(caller, 40)}" <sip:{user}@{server.domain}>',
            sdp=bytes(offer),
            to_uri=f"<{aor}>",
            headers=context_headers(routed.context, self._conversation_url(routed)),
        )
        call = server.track_agent_leg(leg, rtp_port, offer, (routed.item, agent))
        server.endpoint.apply(outputs)
        return call

    def _cancel_offer(self, routed: Routed | None, cancel: CancelOffer) -> None:
        if routed is None:
            return
        call_log("hotline.routing", cancel.item).info(
            "offer to %s withdrawn: %s", cancel.agent, cancel.reason
        )
        if cancel.agent not in routed.offers:
            return
        leg = routed.offers.pop(cancel.agent)
        if leg is None:
            phones = self.server.browser_phones
            if phones is not None:
                phones.cancel(cancel.agent, cancel.item, cancel.reason)  # tells the page too
            return
        self.server.hangup(leg)  # CANCEL while it rings (§9.1), BYE if it raced an answer
        self._withdrawn(cancel.agent, routed, cancel.reason)

    def _withdrawn(self, agent: str, routed: Routed, reason: str) -> None:
        """Tell the agent's page that the call no longer rings for them."""
        self._publish_agent(agent, {"type": "call.cancel", "call_id": routed.caller.leg.call_id,
                                    "reason": reason})  # fmt: skip

    async def _connect_sip_agent(self, call: Call) -> None:
        assert call.offer_for is not None and call.local_offer is not None
        item, agent = call.offer_for
        clog = call_log("hotline.routing", item)
        try:
            media = process_answer(call.local_offer, SessionDescription.parse(call.leg.remote_sdp))
        except RemoteProtocolError as exc:
            # RFC 3264: the INVITE succeeded, so an unusable answer ends it with BYE.
            clog.info("%s answered with unusable SDP: %s", agent, exc.reason)
            self.server.hangup(call)
            return
        try:
            opened = await self.server.open_agent_media(call, media)
        except OSError as exc:
            clog.warning("RTP for %s failed: %s", agent, exc)
            self.server.hangup(call)
            return
        routed = self.routed.get(item)
        if not opened or routed is None or routed.offers.get(agent) is not call:
            self.server.hangup(call)  # the offer was withdrawn while media opened
            return
        self._apply(self.acd.answered(item, agent, self._now()))

    def browser_answered(self, agent: str, item: str, stream_id: int) -> None:
        """The agent page answered (``BrowserPhones.on_answered``)."""
        routed = self.routed.get(item)
        if routed is None or agent not in routed.offers:
            phones = self.server.browser_phones
            if phones is not None:
                phones.hangup(item)
            return
        routed.browser_stream = stream_id
        self._apply(self.acd.answered(item, agent, self._now()))

    def browser_rejected(self, agent: str, item: str, reason: str) -> None:
        """The agent page rejected the call (``BrowserPhones.on_rejected``)."""
        routed = self.routed.get(item)
        if routed is not None and routed.offers.pop(agent, "absent") is None:
            self._apply(self.acd.declined(item, agent, self._now(), reason=reason))

    def browser_ended(self, agent: str, item: str) -> None:
        """The agent hung up in the page, or the page's connection failed."""
        routed = self.routed.get(item)
        if routed is None:
            return
        if routed.agent == agent and routed.agent_leg is None:
            self.server.hangup(routed.caller)
            self._forget(routed)
            self._apply(self.acd.finished(item, self._now()))
        elif routed.offers.pop(agent, "absent") is None:
            self._apply(self.acd.declined(item, agent, self._now(), reason="unreachable"))

    def _connected(self, routed: Routed | None, connected: Connected) -> None:
        if routed is None:
            return
        routed.agent = connected.agent
        leg = routed.offers.pop(connected.agent, None)
        routed.agent_leg = leg
        caller = routed.caller
        stream = leg.stream_id if leg is not None else routed.browser_stream
        tick = self.server.media.media_tick
        if caller.stream_id is None or stream is None:
            return
        tick.set_source(caller.stream_id, None)  # no more hold music
        tick.stop_prompt(caller.stream_id)
        tick.bridge(caller.stream_id, stream)
        call_log("hotline.routing", connected.item).info(
            "connected to %s after %.1f s in %s", connected.agent, connected.waited_s,
            connected.queue,
        )  # fmt: skip
        self._live_start(routed, stream)
        records = self.server.records
        if records is not None:
            records.connected(caller.leg.call_id, connected.agent, connected.waited_s)

    def _overflowed(self, routed: Routed | None, overflow: Overflowed) -> None:
        call_log("hotline.routing", overflow.item).info(
            "overflow from %s to %s", overflow.from_queue, overflow.to_queue
        )
        if routed is not None:
            routed.queue = overflow.to_queue
            routed.caller.queue = overflow.to_queue
            routed.context["queue"] = overflow.to_queue
        self._event(routed, "overflowed", {"from": overflow.from_queue, "to": overflow.to_queue})
        records = self.server.records
        if records is not None and routed is not None:
            records.requeued(routed.caller.leg.call_id, overflow.to_queue)

    def _announce(self, routed: Routed | None, announce: Announce) -> None:
        prompts = self.server.prompt_library
        if routed is None or prompts is None or routed.caller.stream_id is None:
            return
        text = announcement(announce.position, announce.estimated_wait_s)
        stream_id = routed.caller.stream_id

        async def speak() -> None:
            pcm = await prompts.aget(text)
            if self.routed.get(announce.item) is routed and routed.agent is None:
                self.server.media.media_tick.play(stream_id, pcm)

        self.server._spawn(speak())

    def _agent_state_changed(self, change: AgentStateChanged) -> None:
        log.info("agent %s is %s%s", change.agent, change.state,
                 f" ({change.reason})" if change.reason else "")  # fmt: skip
        self._publish_agents({"type": "agent.state", "agent": change.agent,
                              "state": str(change.state), "reason": change.reason})  # fmt: skip

    # ------------------------------------------------------------- presence

    def set_agent_state(self, agent: str, state: str, reason: str | None = None) -> None:
        """An agent (page, REST API) chose a state: available, paused or offline.

        Raises:
            KeyError: no such agent in the routing configuration.
            ValueError: a state agents cannot choose.
        """
        if agent not in self.agents:
            raise KeyError(agent)
        wanted = AgentState(state)
        if wanted not in (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.OFFLINE):
            raise ValueError(f"agents cannot set {state!r}")
        if wanted is AgentState.OFFLINE:
            self._manual_offline.add(agent)
        else:
            self._manual_offline.discard(agent)
            if wanted is AgentState.AVAILABLE and not self._reachable(agent):
                raise ValueError(f"{agent} has no registered phone and no browser phone")
        self._apply(self.acd.set_state(agent, wanted, self._now(), reason=reason))

    def _sweep_presence(self, now: float) -> None:
        """Registrations also expire without a REGISTER: check every agent now and then."""
        for agent in self.agents:
            self._update_presence(agent, now)

    def _update_presence(self, agent: str, now: float) -> None:
        state = self.acd.agent(agent).state
        reachable = self._reachable(agent)
        if reachable and state is AgentState.OFFLINE and agent not in self._manual_offline:
            self._apply(self.acd.set_state(agent, AgentState.AVAILABLE, now, "registered"))
        elif not reachable and state in (AgentState.AVAILABLE, AgentState.PAUSED):
            self._apply(self.acd.set_state(agent, AgentState.OFFLINE, now, "unregistered"))

    def _reachable(self, agent: str) -> bool:
        server = self.server
        phones = server.browser_phones
        if phones is not None and phones.ready(agent):
            return True
        aor = f"sip:{agent}@{server.domain}"
        return bool(server.registration.registrar.lookup(aor, server.endpoint.now))

    # -------------------------------------------------------------- reports

    def queues(self) -> list[dict[str, Any]]:
        """The queues now (``Live.queues``), without the agents' personal ones."""
        rows = self.acd.queue_status()
        return [row for row in rows if not str(row["name"]).startswith("@")]

    def agents_status(self) -> list[dict[str, Any]]:
        """Every agent's state now."""
        return self.acd.agent_status()

    # -------------------------------------------------------------- helpers

    def _conversation_url(self, routed: Routed) -> str | None:
        records = self.server.records
        # A consultation links to the conversation of the caller it is about.
        call_id = routed.context.get("call_id") or routed.caller.leg.call_id
        conversation = records.conversation_id(call_id) if records is not None else None
        base = self.server.http_base_url()
        return f"{base}/api/conversations/{conversation}" if conversation and base else None

    def _event(self, routed: Routed | None, kind: str, data: dict[str, Any]) -> None:
        records = self.server.records
        if routed is not None and records is not None:
            records.routing_event(routed.caller.leg.call_id, kind, data)

    def _publish_agent(self, agent: str, event: dict[str, Any]) -> None:
        hub = self.server.hub
        if hub is not None:
            hub.publish(agent_topic(agent), event)

    def _publish_agents(self, event: dict[str, Any]) -> None:
        hub = self.server.hub
        if hub is not None:
            hub.publish(AGENTS, event)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


def _live_transcript(server: HotlineServer) -> LiveTranscript | None:
    """The live transcripts of agent calls, if configured and possible."""
    if not server.config.recordings.live_transcript:
        return None
    if server.asr is None or server.hub is None:
        log.info("live transcript off: it needs the IVR's recognizer and the agents' pages")
        return None
    return LiveTranscript(
        server.media.media_tick,
        server.asr,
        server.hub.publish,
        context=conversation_context(server.flow),
        max_sessions=server.config.asr.workers * LIVE_SESSIONS_PER_WORKER,
        topic_of=agent_topic,
        clock=ContactCenter._now,
    )


def chat_item(conversation_id: int) -> str:
    """The ACD item of a web chat."""
    return f"chat:{conversation_id}"


def announcement(position: int, estimated_wait_s: float) -> str:
    """What a waiting caller hears: their place and a rounded wait."""
    place = "You are next in line." if position <= 1 else f"You are number {position} in line."
    minutes = max(1, round(estimated_wait_s / 60.0))
    wait = "about one minute" if minutes == 1 else f"about {minutes} minutes"
    return f"{place} The expected wait is {wait}. Thank you for holding."


__all__ = ["ContactCenter", "acd_specs", "announcement", "context_headers", "personal_queue"]
